"""Throughput of POST /api/v1/identities/ against a bare Flask endpoint, side by side.

Both run under gunicorn with the same settings (2 sync workers). The identify request is for
a known identity with 10 traits (unchanged after the first call) against the demo-sized
environment, on SQLite and on PostgreSQL. The load comes from wrk (Debian) when installed,
else from a Python client. Prints requests/s and p50/p99 for each, and last the worst ratio
``identify/bare throughput``. Target: >= 0.5, p99 under 25 ms.

    python bench/sdk_api.py [--seconds 15] [--rounds 5] [--connections 16] [--no-postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TRAITS = {"plan": "pro", "country": "DE", "age": 41, "app_version": "2.5.1",
          "beta_opt_in": True, "signup_days": 12, "email": "bench@acme.com",
          "locale": "de-DE", "score": 7.5, "team": "platform"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flask(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([str(BIN / "flask"), *args], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True)
    return result.stdout


@contextmanager
def keeping_demo_logins():
    """Restore instance/demo_logins.txt afterwards: seeding a bench database rewrites it,
    and it belongs to the developer's own database."""
    logins = ROOT / "instance" / "demo_logins.txt"
    saved = logins.read_bytes() if logins.exists() else None
    try:
        yield
    finally:
        if saved is None:
            logins.unlink(missing_ok=True)
        else:
            logins.write_bytes(saved)


def prepare(database_url: str, workdir: Path) -> tuple[dict[str, str], str]:
    """Migrate and seed a database; return the environment for gunicorn and a client key."""
    env = {**os.environ, "FLASK_APP": "wsgi.py", "DATABASE_URL": database_url,
           "SECRET_KEY": "bench-" + secrets.token_hex(8)}
    flask(env, "db", "upgrade")
    with keeping_demo_logins():
        flask(env, "seed-demo")
    script = ("from webapp import create_app\nfrom webapp.models import Environment\n"
              "from webapp.extensions import db\napp = create_app()\n"
              "with app.app_context():\n"
              "    e = db.session.query(Environment).filter_by(name='Production').one()\n"
              "    print(e.client_key)\n")
    key = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return env, key


@contextmanager
def gunicorn(app: str, env: dict[str, str]):
    """Run ``app`` under gunicorn (2 sync workers); yield its port."""
    with gunicorn_process(app, env) as (port, _):
        yield port


@contextmanager
def gunicorn_process(app: str, env: dict[str, str]):
    """Run ``app`` under gunicorn (2 sync workers); yield its port and the master process."""
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         app], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(port: int, key: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/api/v1/identities/", body=body, headers={
        "X-Environment-Key": key, "Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def run_wrk(port: int, key: str, body: bytes, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n'
                     f'wrk.headers["Content-Type"] = "application/json"\n'
                     f'wrk.headers["X-Environment-Key"] = "{key}"\n')
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name,
         f"http://127.0.0.1:{port}/api/v1/identities/"],
        check=True, capture_output=True, text=True).stdout
    os.unlink(script.name)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} error responses:\n{output}")

    def latency(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", output).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return {"rps": rps, "p50": latency("50"), "p99": latency("99")}


def run_python(port: int, key: str, body: bytes, seconds: int,
               connections: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            status, _ = post(port, key, body)
            if status != 200:
                raise SystemExit(f"error response {status}")
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
            "p99": latencies[int(len(latencies) * 0.99) - 1]}


def warm(port: int, key: str, body: bytes) -> None:
    status, data = post(port, key, body)  # the first identify stores the traits
    if status != 200:
        raise SystemExit(f"warm-up failed: {status} {data[:200]!r}")
    for _ in range(50):
        post(port, key, body)


def measure_pair(bare_port: int, identify_port: int, key: str, body: bytes,
                 args: argparse.Namespace,
                 ) -> tuple[dict[str, float], dict[str, float], list[float]]:
    """Alternate short rounds of bare and identify; return the median round of each and the
    per-round identify/bare ratios.

    The machine is shared: measuring one side after the other lets a noisy neighbour land
    on one side only. Each round measures both sides back to back (their order alternating
    from round to round), so each round's ratio compares like with like.
    """
    warm(bare_port, key, body)
    warm(identify_port, key, body)
    runner = run_wrk if shutil.which("wrk") else run_python
    seconds = max(1, round(args.seconds / args.rounds))
    rounds: dict[int, list[dict[str, float]]] = {bare_port: [], identify_port: []}
    for index in range(args.rounds):
        order = (bare_port, identify_port) if index % 2 == 0 else (identify_port, bare_port)
        for port in order:
            rounds[port].append(runner(port, key, body, seconds, args.connections))
    ratios = [i["rps"] / b["rps"] for b, i in zip(rounds[bare_port], rounds[identify_port],
                                                   strict=True)]  # fmt: skip

    def median(port: int) -> dict[str, float]:
        return sorted(rounds[port], key=lambda figures: figures["rps"])[len(rounds[port]) // 2]

    return median(bare_port), median(identify_port), ratios


def report(label: str, figures: dict[str, float]) -> None:
    print(f"{label:<28} {figures['rps']:>9.0f} req/s   p50 {figures['p50']:6.2f} ms   "
          f"p99 {figures['p99']:6.2f} ms", flush=True)


@contextmanager
def postgres_schema():
    """Yield a URL on a fresh schema (None when PostgreSQL is unreachable); drop it after."""
    schema = "fp_bench_" + secrets.token_hex(4)
    try:
        subprocess.run(["psql", POSTGRES, "-qc", f"CREATE SCHEMA {schema}"], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        yield None
        return
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        subprocess.run(["psql", POSTGRES, "-qc", f"DROP SCHEMA {schema} CASCADE"],
                       capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="per side, over all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per side")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    body = json.dumps({"identifier": "user-00042", "traits": [
        {"trait_key": k, "trait_value": v} for k, v in TRAITS.items()]}).encode()
    print(f"load generator: {'wrk' if shutil.which('wrk') else 'python threads'}, "
          f"{args.connections} connections, {args.rounds} interleaved rounds of "
          f"{max(1, round(args.seconds / args.rounds))}s per side (medians; the ratio is the "
          "median of the rounds' ratios); "
          "gunicorn -w 2 (sync)")
    with tempfile.TemporaryDirectory() as tmp, postgres_schema() as postgres:
        workdir = Path(tmp)
        databases = [("sqlite", f"sqlite:///{workdir / 'bench.sqlite'}")]
        if not args.no_postgres:
            if postgres is None:
                print("PostgreSQL unavailable: skipping it")
            else:
                databases.append(("postgresql", postgres))
        ratios = []
        for name, url in databases:
            env, key = prepare(url, workdir)
            # Both servers run at once (idle between their rounds), so rounds interleave.
            with gunicorn("bench.bare_app:app", env) as bare_port, \
                    gunicorn("wsgi:app", env) as identify_port:
                bare, identify, rounds = measure_pair(bare_port, identify_port, key, body, args)
            report(f"bare flask ({name} run)", bare)
            report(f"identify, {name}", identify)
            ratio = sorted(rounds)[len(rounds) // 2]
            ratios.append(ratio)
            print(f"identify/bare throughput on {name}: {ratio:.2f} (median of the rounds: "
                  f"{', '.join(f'{r:.2f}' for r in rounds)})", flush=True)
    print(f"identify/bare throughput: {min(ratios):.2f}")


if __name__ == "__main__":
    main()
