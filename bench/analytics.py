"""Usage analytics throughput: identify with usage recording on vs off, and analytics ingest
vs a bare Flask app, side by side in interleaved rounds (gunicorn, 2 sync workers each).

1. ``POST /api/v1/identities/`` (the bench/sdk_api.py request) on two servers of the same
   database, one with usage recording on (``FLAGPOST_USAGE_RECORDING=true``: counts and
   "seen" rows buffered and flushed every second), one with it off. Goal: ratio >= 0.95.
2. ``POST /api/v1/analytics/flags/`` with a 20-feature batch (what the official SDK posts
   every 10 s), against ``bench/analytics_bare.py`` answering the same path. Goal: >= 0.5.

The machine is shared and noisy (one run of 4 long rounds gave 0.76 to 1.07), so both
servers stay up and the bench runs many short rounds in pairs, A B then B A, and takes the
median of the per-pair ratios, printed with its quartiles and range. Each round also reads
the CPU time the workers spent per request (/proc), a second figure a neighbour's load
disturbs less than throughput (it excludes the PostgreSQL server's share).

Prints requests/s, p50/p99 and CPU per request per side, the per-pair ratios, whether the
counts reached the database, and last ``identify with analytics/without: N.NN`` then
``analytics ingest/bare throughput: N.NN`` (the worst database's median pair ratio).

    python bench/analytics.py [--rounds 16] [--round-seconds 1.5] [--connections 16]
                              [--no-postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sdk_api import (  # noqa: E402
    ROOT,
    TRAITS,
    gunicorn_process,
    postgres_schema,
    prepare,
    report,
)

IDENTIFY = "/api/v1/identities/"
ANALYTICS = "/api/v1/analytics/flags/"


def post(port: int, path: str, key: str, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", path, body=body, headers={
        "X-Environment-Key": key, "Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def run_load(port: int, path: str, key: str, body: bytes, seconds: float,
             connections: int) -> dict[str, float]:
    """Send the request from ``connections`` threads for ``seconds``; any non-200 aborts."""
    latencies: list[float] = []
    lock = threading.Lock()
    began = time.monotonic()
    stop = began + seconds

    def worker() -> None:
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            status = post(port, path, key, body)
            if status != 200:
                raise SystemExit(f"error response {status} from {path}")
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began  # the last requests end after ``stop``
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "requests": len(latencies),
            "p50": statistics.median(latencies),
            "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)]}


TICK = os.sysconf("SC_CLK_TCK")


def workers_cpu(master: subprocess.Popen) -> float:
    """Return the CPU seconds (user + system, all threads) the gunicorn workers used so far."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    total = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICK


class Side(NamedTuple):
    port: int
    master: subprocess.Popen


def interleaved(base: Side, other: Side, path: str, key: str, body: bytes,
                args: argparse.Namespace) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Run ``args.rounds`` pairs of short rounds, ``base`` then ``other`` and the next pair the
    other way round (A B B A ...), both servers up all along; return each side's rounds.

    The machine is shared and noisy: a neighbour's burst lasts seconds, so comparing two
    adjacent short rounds (and their median over many pairs) cancels most of it. Each round
    also records the CPU time the side's workers spent per request, which a neighbour
    disturbs less than throughput (it does not count the time the workers wait for a core).
    """
    for side in (base, other):
        for _ in range(30):
            post(side.port, path, key, body)
    rounds: dict[int, list[dict[str, float]]] = {base.port: [], other.port: []}
    for index in range(args.rounds):
        for side in (base, other) if index % 2 == 0 else (other, base):
            cpu = workers_cpu(side.master)
            figures = run_load(side.port, path, key, body, args.round_seconds, args.connections)
            figures["cpu_us"] = (workers_cpu(side.master) - cpu) / figures["requests"] * 1e6
            rounds[side.port].append(figures)
    return rounds[base.port], rounds[other.port]


def spread(ratios: list[float]) -> str:
    """Describe per-pair ratios: median, interquartile range, extremes."""
    low, _, high = statistics.quantiles(ratios, n=4, method="inclusive")
    return (f"{statistics.median(ratios):.3f} (quartiles {low:.3f}-{high:.3f}, "
            f"range {min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} pairs)")


def compare(label: str, base_label: str, other_label: str, base: list[dict[str, float]],
            other: list[dict[str, float]], name: str) -> float:
    """Print both sides and the per-pair ratios (throughput, CPU); return the median
    throughput ratio other/base."""
    for side_label, rounds in ((base_label, base), (other_label, other)):
        middle = sorted(rounds, key=lambda f: f["rps"])[len(rounds) // 2]
        report(f"{side_label} ({name})", middle)
        print(f"{'':28} CPU per request {statistics.median(f['cpu_us'] for f in rounds):7.0f} us"
              " (gunicorn workers, median round)", flush=True)
    throughput = [o["rps"] / b["rps"] for b, o in zip(base, other, strict=True)]
    cpu = [b["cpu_us"] / o["cpu_us"] for b, o in zip(base, other, strict=True)]
    print(f"{label} on {name}, throughput per pair: {spread(throughput)}", flush=True)
    print(f"{label} on {name}, workers' CPU per request, the inverse ratio (1.00: same cost) "
          f"per pair: {spread(cpu)}", flush=True)
    print(f"    throughput pairs: {', '.join(f'{r:.2f}' for r in throughput)}", flush=True)
    return statistics.median(throughput)


def feature_names(env: dict[str, str]) -> list[str]:
    script = ("from webapp import create_app\nfrom webapp.models import Feature\n"
              "from webapp.extensions import db\napp = create_app()\n"
              "with app.app_context():\n"
              "    features = db.session.query(Feature).order_by(Feature.id)\n"
              "    print(','.join(f.name for f in features))\n")
    output = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return output.split(",")


def stored_counts(env: dict[str, str]) -> tuple[int, int]:
    """Return (evaluations counted, seen rows) in the bench database."""
    script = ("from sqlalchemy import func, select\nfrom webapp import create_app\n"
              "from webapp.models import FlagSeen, FlagUsage\n"
              "from webapp.extensions import db\napp = create_app()\n"
              "with app.app_context():\n"
              "    print(db.session.scalar(select(func.coalesce(func.sum(FlagUsage.count), 0))),"
              " db.session.scalar(select(func.count()).select_from(FlagSeen)))\n")
    output = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True).stdout.strip().splitlines()[-1]
    evaluations, seen = output.split()
    return int(evaluations), int(seen)


def one_database(name: str, url: str, workdir: Path, args: argparse.Namespace
                 ) -> tuple[float, float]:
    env, key = prepare(url, workdir)
    on = {**env, "FLAGPOST_USAGE_RECORDING": "true"}
    off = {**env, "FLAGPOST_USAGE_RECORDING": "false"}
    identify_body = json.dumps({"identifier": "user-00042", "traits": [
        {"trait_key": k, "trait_value": v} for k, v in TRAITS.items()]}).encode()
    batch = json.dumps({name: 3 for name in feature_names(env)[:20]}).encode()
    with gunicorn_process("wsgi:app", off) as without, gunicorn_process("wsgi:app", on) as with_:
        identify_off, identify_on = interleaved(
            Side(*without), Side(*with_), IDENTIFY, key, identify_body, args)
    with gunicorn_process("bench.analytics_bare:app", env) as bare_side, \
            gunicorn_process("wsgi:app", on) as ingest_side:
        bare, ingest = interleaved(Side(*bare_side), Side(*ingest_side), ANALYTICS, key, batch,
                                   args)
    # gunicorn stopped its workers with SIGTERM: their exit flushed the buffers.
    evaluations, seen = stored_counts(env)
    identify_ratio = compare("identify with analytics/without", "identify, usage off",
                             "identify, usage on", identify_off, identify_on, name)
    ingest_ratio = compare("analytics ingest/bare", "bare flask ingest", "analytics ingest",
                           bare, ingest, name)
    print(f"stored on {name}: {evaluations:,} evaluations counted, {seen:,} seen rows "
          "(one identity)", flush=True)
    return identify_ratio, ingest_ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16, help="pairs of interleaved rounds")
    parser.add_argument("--round-seconds", type=float, default=1.5, help="length of one round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"load generator: python threads, {args.connections} connections; {args.rounds} pairs "
          f"of {args.round_seconds:g}s rounds (A B, B A, ...), both servers up; gunicorn -w 2 "
          f"(sync); wrk {'found but not used' if shutil.which('wrk') else 'absent'}")
    results = []
    with tempfile.TemporaryDirectory() as tmp, postgres_schema() as postgres:
        workdir = Path(tmp)
        databases = [("sqlite", f"sqlite:///{workdir / 'bench.sqlite'}")]
        if not args.no_postgres:
            if postgres is None:
                print("PostgreSQL unavailable: skipping it")
            else:
                databases.append(("postgresql", postgres))
        for name, url in databases:
            results.append(one_database(name, url, workdir, args))
    print(f"identify with analytics/without: {min(r[0] for r in results):.2f}")
    print(f"analytics ingest/bare throughput: {min(r[1] for r in results):.2f}")


if __name__ == "__main__":
    main()
