"""Instructions an identify spends recording usage, counted by callgrind (valgrind): counted,
not timed, so a busy shared machine does not move them.

Three runs of the identify request (the bench/sdk_api.py one, through the WSGI app, SQLite):
``record_served`` with recording on, the same with recording off (finding no buffer), and a
whole identify with recording off. Only the measured calls are counted (callgrind collects
inside ``functools.reduce``, which wraps them), after a warm-up, with the garbage collector
paused so a collection does not land in one run only. Prints the instructions per request
and last ``identify recording cost: N.NN %`` (goal: under 3 %).

    python bench/usage_instructions.py [--requests 100]   # needs valgrind; a few minutes
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sdk_api import ROOT, TRAITS, prepare  # noqa: E402


def child(mode: str, what: str, requests: int, key: str) -> None:
    """Under callgrind: warm up, then make ``requests`` identify calls, collecting either the
    whole request or only ``record_served`` (each inside a ``functools.reduce``)."""
    from webapp import create_app
    from webapp.services import usage

    app = create_app({"USAGE_RECORDING": mode == "on", "USAGE_FLUSH_INTERVAL": 3600})
    body = json.dumps({"identifier": "user-00042", "traits": [
        {"trait_key": k, "trait_value": v} for k, v in TRAITS.items()]}).encode()

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        assert status.startswith("200"), status

    def identify() -> None:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/identities/", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1", "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)), "HTTP_X_ENVIRONMENT_KEY": key,
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "REMOTE_ADDR": "127.0.0.1", "wsgi.version": (1, 0),
        }
        for _ in app(environ, start_response):
            pass

    measuring = False
    record_served = usage.record_served

    def counted(*args: object) -> None:
        if measuring:
            functools.reduce(lambda _, __: record_served(*args), (0,), None)
        else:
            record_served(*args)

    if what == "recording":
        usage.record_served = counted  # the blueprint calls it through the module
    for _ in range(50):
        identify()
    gc.collect()
    gc.disable()
    measuring = True
    if what == "recording":
        for _ in range(requests):
            identify()
    else:
        functools.reduce(lambda _, __: identify(), range(requests), None)


def count(mode: str, what: str, requests: int, env: dict[str, str], key: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        output = subprocess.run(
            ["valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
             f"--callgrind-out-file={tmp}/callgrind.out", sys.executable, __file__,
             "--child", mode, what, str(requests), key],
            cwd=ROOT, env={**env, "PYTHONHASHSEED": "0"}, check=True, capture_output=True,
            text=True).stderr  # fmt: skip
    collected = int(re.search(r"Collected : (\d+)", output).group(1))
    return collected / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, what, requests, key = args.child
        child(mode, what, int(requests), key)
        return
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind not found (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        env, key = prepare(f"sqlite:///{Path(tmp) / 'bench.sqlite'}", Path(tmp))
        on = count("on", "recording", args.requests, env, key)
        off = count("off", "recording", args.requests, env, key)
        whole = count("off", "whole", args.requests, env, key)
    print(f"record_served, recording on:    {on:>12,.0f} instructions per identify")
    print(f"record_served, recording off:   {off:>12,.0f} instructions per identify")
    print(f"whole identify, recording off:  {whole:>12,.0f} instructions (WSGI app, SQLite)")
    print(f"identify recording cost: {(on - off) / whole * 100:.2f} %")


if __name__ == "__main__":
    main()
