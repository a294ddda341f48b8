"""Real-time streams under load: 1,000 SDK streams held while the identify bench runs.

The app runs under gunicorn (2 sync workers, as in bench/sdk_api.py) and the stream server
under uvicorn, both on a seeded demo database (PostgreSQL by default, NOTIFY fan-out). A
separate process holds the streams. Identify throughput is measured in interleaved rounds
with the streams held and without them; in both kinds of round the environment changes at
the same cadence (a flag flipped through the dashboard's service), so the ratio isolates
what holding the streams costs. Each change's latency is the time from just before the
change's commit to each stream receiving its event.

Prints the latency p50/p99 over every stream and change and, last,
``identify with 1000 streams/without: N.NN`` (goal >= 0.9; latency p99 < 1 s).

    python bench/realtime.py [--streams 1000] [--seconds 20] [--rounds 4] [--sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sdk_api as identify_bench  # noqa: E402  (the identify bench's helpers)

ROOT = identify_bench.ROOT
BIN = identify_bench.BIN
CHANGE_EVERY_SECONDS = 1.0


# ---- the stream holder (its own process) ---------------------------------------------------


async def _hold_one(host: str, port: int, path: str, seen: dict[int, float],
                    opened: asyncio.Event, counter: list[int], total: int) -> None:  # fmt: skip
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as error:
        print(f"stream refused: {error}", file=sys.stderr, flush=True)
        return
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
                 .encode())  # fmt: skip
    await writer.drain()
    first = True
    try:
        status = await reader.readline()
        if b" 200 " not in status:
            print(f"stream refused: {status.decode().strip()}", file=sys.stderr, flush=True)
            return
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"id: "):
                now = time.time()
                revision = int(line[4:])
                if first:
                    first = False
                    counter[0] += 1
                    if counter[0] == total:
                        opened.set()
                else:
                    seen.setdefault(revision, now)  # per stream: the first arrival
    finally:
        writer.close()


async def _hold(host: str, port: int, path: str, total: int) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()
    threading.Thread(
        target=lambda: [
            loop.call_soon_threadsafe(commands.put_nowait, line.strip()) for line in sys.stdin
        ],
        daemon=True,  # fmt: skip
    ).start()
    arrivals: list[dict[int, float]] = []
    tasks: list[asyncio.Task[None]] = []
    while True:
        command = await commands.get()
        if command == "open":
            opened, counter = asyncio.Event(), [0]
            arrivals = [{} for _ in range(total)]
            for index in range(total):
                tasks.append(
                    asyncio.ensure_future(
                        _hold_one(host, port, path, arrivals[index], opened, counter, total)
                    )
                )
                if index % 100 == 99:
                    await asyncio.sleep(0.05)  # a client fleet connects over a moment
            try:
                await asyncio.wait_for(opened.wait(), 60)
            except TimeoutError:
                print(f"only {counter[0]} of {total} streams opened", file=sys.stderr, flush=True)
            print("opened", flush=True)
        elif command == "close":
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            tasks = []
            print(json.dumps(arrivals), flush=True)
        elif command == "quit":
            return


# ---- the bench ---------------------------------------------------------------------------


class Holder:
    """The stream-holding process, driven over stdin/stdout."""

    def __init__(self, port: int, key: str, total: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--hold", str(total), "--port", str(port), "--key", key],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip

    def send(self, command: str) -> str:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@contextmanager
def stream_server(env: dict[str, str], streams: int):
    port = identify_bench.free_port()
    # Room for a round's streams while the last round's are still being closed.
    variables = {**env, "FLAGPOST_STREAM_MAX_PER_KEY": str(3 * streams),
                 "FLAGPOST_STREAM_MAX_TOTAL": str(3 * streams)}  # fmt: skip
    process = subprocess.Popen(
        [str(BIN / "uvicorn"), "--factory", "webapp.realtime:create_from_environment",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--timeout-graceful-shutdown", "1"], cwd=ROOT, env=variables)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                identify_bench.socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


class Changer(threading.Thread):
    """Flip a flag of the benched environment every second, noting when each change began."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "SECRET_KEY")})
        from webapp import create_app

        self.app = create_app()
        self.started: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        from webapp.extensions import db
        from webapp.models import Environment, Feature, User
        from webapp.services.features import catalog

        with self.app.app_context():
            environment = db.session.query(Environment).filter_by(name="Production").one()
            feature = db.session.query(Feature).filter_by(project_id=environment.project_id) \
                .order_by(Feature.id).first()  # fmt: skip
            admin = db.session.query(User).filter(User.email.like("admin@%")).first()
            enabled = True
            while not self.stop.wait(CHANGE_EVERY_SECONDS):
                enabled = not enabled
                began = time.time()
                catalog.set_enabled(environment, feature.id, enabled, admin)
                db.session.refresh(environment)
                self.started[environment.revision] = began
            db.session.remove()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20, help="per side, over all rounds")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sqlite", action="store_true", help="SQLite (polling) instead")
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold:
        path = f"/sse/environments/{args.key}/stream"
        asyncio.run(_hold("127.0.0.1", args.port, path, args.hold))
        return
    body = json.dumps(
        {
            "identifier": "user-00042",
            "traits": [
                {"trait_key": k, "trait_value": v} for k, v in identify_bench.TRAITS.items()
            ],
        }
    ).encode()
    runner = identify_bench.run_wrk if shutil.which("wrk") else identify_bench.run_python
    seconds = max(1, round(args.seconds / args.rounds))
    print(
        f"{args.streams} streams; identify load: {runner.__name__[4:]}, {args.connections} "
        f"connections, {args.rounds} interleaved rounds of {seconds}s per side; a change "
        f"every {CHANGE_EVERY_SECONDS:g}s in every round; gunicorn -w 2 + uvicorn",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp, identify_bench.postgres_schema() as postgres:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite'}" if args.sqlite or not postgres \
            else postgres  # fmt: skip
        fan_out = "sqlite (polling)" if url.startswith("sqlite") else "postgresql (NOTIFY)"
        print(f"database: {fan_out}")
        env, key = identify_bench.prepare(url, Path(tmp))
        changer = Changer(env)
        with identify_bench.gunicorn("wsgi:app", env) as app_port, \
                stream_server(env, args.streams) as stream_port:  # fmt: skip
            identify_bench.warm(app_port, key, body)
            holder = Holder(stream_port, key, args.streams)
            changer.start()
            rounds: dict[bool, list[dict[str, float]]] = {True: [], False: []}
            arrivals: list[dict[str, float]] = []
            try:
                for index in range(args.rounds):
                    for with_streams in (False, True) if index % 2 == 0 else (True, False):
                        if with_streams:
                            holder.send("open")
                        rounds[with_streams].append(
                            runner(app_port, key, body, seconds, args.connections)
                        )
                        if with_streams:
                            arrivals.extend(json.loads(holder.send("close")))
            finally:
                changer.stop.set()
                changer.join(timeout=10)
                holder.close()
    latencies = [
        (arrived - changer.started[int(revision)]) * 1000
        for stream in arrivals
        for revision, arrived in stream.items()
        if int(revision) in changer.started
    ]
    for label, with_streams in (("identify without streams", False),
                                (f"identify with {args.streams} streams", True)):  # fmt: skip
        figures = sorted(rounds[with_streams], key=lambda f: f["rps"])[args.rounds // 2]
        identify_bench.report(label, figures)
    if latencies:
        print(
            f"change-to-client latency over {len(latencies)} deliveries: "
            f"p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms"
        )
    else:
        print("change-to-client latency: no change was delivered")
    ratios = [w["rps"] / wo["rps"] for w, wo in zip(rounds[True], rounds[False], strict=True)]
    ratio = statistics.median(ratios)
    print(f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"identify with {args.streams} streams/without: {ratio:.2f}")


if __name__ == "__main__":
    main()
