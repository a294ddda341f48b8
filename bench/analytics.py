"""Usage analytics throughput: identify with usage recording on vs off, and analytics ingest
vs a bare Flask app, side by side in interleaved rounds (gunicorn, 2 sync workers each).

1. ``POST /api/v1/identities/`` (the bench/sdk_api.py request) on two servers of the same
   database, one with usage recording on (``FLAGPOST_USAGE_RECORDING=true``: counts and
   "seen" rows buffered and flushed every second), one with it off. Goal: ratio >= 0.95.
2. ``POST /api/v1/analytics/flags/`` with a 20-feature batch (what the official SDK posts
   every 10 s), against ``bench/analytics_bare.py`` answering the same path. Goal: >= 0.5.

Prints requests/s and p50/p99 per side, whether the counts reached the database, and last
``identify with analytics/without: N.NN`` then ``analytics ingest/bare throughput: N.NN``
(the worst database's median round ratio).

    python bench/analytics.py [--seconds 12] [--rounds 4] [--connections 16] [--no-postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sdk_api import ROOT, TRAITS, gunicorn, postgres_schema, prepare, report  # noqa: E402

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


def run_load(port: int, path: str, key: str, body: bytes, seconds: int,
             connections: int) -> dict[str, float]:
    """Send the request from ``connections`` threads for ``seconds``; any non-200 aborts."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

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
    latencies.sort()
    return {"rps": len(latencies) / seconds, "p50": statistics.median(latencies),
            "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)]}


def interleaved(base: int, other: int, path: str, key: str, body: bytes,
                args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float], list[float]]:
    """Alternate rounds of ``base`` and ``other`` (order swapping each round); return the
    median round of each side and the per-round other/base ratios."""
    for port in (base, other):
        for _ in range(30):
            post(port, path, key, body)
    seconds = max(1, round(args.seconds / args.rounds))
    rounds: dict[int, list[dict[str, float]]] = {base: [], other: []}
    for index in range(args.rounds):
        for port in (base, other) if index % 2 == 0 else (other, base):
            rounds[port].append(run_load(port, path, key, body, seconds, args.connections))
    ratios = [o["rps"] / b["rps"] for b, o in zip(rounds[base], rounds[other], strict=True)]

    def median(port: int) -> dict[str, float]:
        return sorted(rounds[port], key=lambda f: f["rps"])[len(rounds[port]) // 2]

    return median(base), median(other), ratios


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
    with gunicorn("wsgi:app", off) as off_port, gunicorn("wsgi:app", on) as on_port:
        without, with_usage, identify_ratios = interleaved(
            off_port, on_port, IDENTIFY, key, identify_body, args)
    with gunicorn("bench.analytics_bare:app", env) as bare_port, \
            gunicorn("wsgi:app", on) as ingest_port:
        bare, ingest, ingest_ratios = interleaved(
            bare_port, ingest_port, ANALYTICS, key, batch, args)
    # gunicorn stopped its workers with SIGTERM: their exit flushed the buffers.
    evaluations, seen = stored_counts(env)
    report(f"identify, usage off ({name})", without)
    report(f"identify, usage on ({name})", with_usage)
    report(f"bare flask ingest ({name})", bare)
    report(f"analytics ingest ({name})", ingest)
    identify_ratio = sorted(identify_ratios)[len(identify_ratios) // 2]
    ingest_ratio = sorted(ingest_ratios)[len(ingest_ratios) // 2]
    print(f"stored on {name}: {evaluations:,} evaluations counted, {seen:,} seen rows "
          "(one identity)", flush=True)
    print(f"identify with analytics/without on {name}: {identify_ratio:.2f} (rounds: "
          f"{', '.join(f'{r:.2f}' for r in identify_ratios)})", flush=True)
    print(f"analytics ingest/bare throughput on {name}: {ingest_ratio:.2f} (rounds: "
          f"{', '.join(f'{r:.2f}' for r in ingest_ratios)})", flush=True)
    return identify_ratio, ingest_ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12, help="per side, over all rounds")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per side")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"load generator: python threads, {args.connections} connections, {args.rounds} "
          f"interleaved rounds of {max(1, round(args.seconds / args.rounds))}s per side; "
          f"gunicorn -w 2 (sync); wrk {'found but not used' if shutil.which('wrk') else 'absent'}")
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
