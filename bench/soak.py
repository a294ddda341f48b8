"""Soak test: mixed SDK and dashboard traffic on gunicorn + PostgreSQL, then consistency checks.

Creates a schema, migrates and seeds it (``flask seed-demo`` plus two editors), starts
gunicorn with the README's production settings (sync workers) and runs, for ``--seconds``:
``--threads`` SDK clients (identify with trait changes on identities each thread owns,
writes to identities all threads share, flag reads, transient identifies) and two editors
(toggle and remove identity overrides, save one segment's rules). Then it checks: no 5xx or
connection errors, every last acknowledged trait write is in the database, every acknowledged
dashboard change is in the audit log, no acknowledged segment save was overwritten, the
environment revision moved once per acknowledged change, and worker memory grew < 10% after
warm-up. Prints a summary and, last, ``soak: N requests, E errors, L lost``.

    .venv/bin/python bench/soak.py [--seconds 60] [--threads 16] [--workers 4] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sdk_api import free_port, keeping_demo_logins  # noqa: E402
from bench.soak_traffic import TRANSIENT_KEY, DashboardClient, SdkClient, Stats  # noqa: E402
from webapp.models import encode_value  # noqa: E402

BIN = Path(sys.executable).parent
DEFAULT_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
IDENTITIES = 500
MEMORY_LIMIT = 0.10


def flask(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([str(BIN / "flask"), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def prepare(base_url: str, schema: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Migrate and seed the schema; return gunicorn's environment and the editors' logins."""
    url = f"{base_url}?options=-csearch_path%3D{schema}"
    env = {**os.environ, "FLASK_APP": "wsgi.py", "DATABASE_URL": url,
           "SECRET_KEY": "soak-" + secrets.token_hex(8)}
    flask(env, "db", "upgrade")
    with keeping_demo_logins():  # seed-demo rewrites the developer's demo_logins.txt
        flask(env, "seed-demo")
    editors = []
    for n in (1, 2):
        email, password = f"soak-editor-{n}@example.com", secrets.token_urlsafe(12)
        flask({**env, "FLAGPOST_PASSWORD": password}, "create-user", email, "--role", "editor")
        editors.append((email, password))
    return env, editors


def targets_of(conn: psycopg.Connection) -> dict[str, Any]:
    """Pick the environment, the dashboard's identities/features and the segment to edit."""
    env_id, key = conn.execute(
        "SELECT id, client_key FROM environments WHERE name = 'Production'").fetchone()
    identities = [r[0] for r in conn.execute(
        "SELECT id FROM identities WHERE environment_id = %s ORDER BY identifier LIMIT 6",
        (env_id,))]
    features = conn.execute(
        "SELECT f.id, f.name FROM features f JOIN environments e ON e.project_id = f.project_id"
        " WHERE e.id = %s AND f.type = 'STANDARD' ORDER BY f.id LIMIT 4", (env_id,)).fetchall()
    segment_id = conn.execute("SELECT id FROM segments WHERE name = 'New signups'").fetchone()[0]
    return {"environment_id": env_id, "key": key, "identities": identities,
            "features": features, "segment_id": segment_id}


def counters(conn: psycopg.Connection, targets: dict[str, Any]) -> dict[str, int]:
    revision = conn.execute("SELECT revision FROM environments WHERE id = %s",
                            (targets["environment_id"],)).fetchone()[0]
    version = conn.execute("SELECT version FROM segments WHERE id = %s",
                           (targets["segment_id"],)).fetchone()[0]
    return {"revision": revision, "version": version}


def start_gunicorn(env: dict[str, str], workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "--error-logfile", str(log), "wsgi:app"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(worker_pids(process.pid)) == workers:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return process, port
            except OSError:
                pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def worker_pids(master: int) -> list[int]:
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return sorted(int(pid) for pid in text.split())


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_traffic(args: argparse.Namespace, port: int, targets: dict[str, Any],
                editors: list[tuple[str, str]], master: int) -> dict[str, Any]:
    base, stats = f"http://127.0.0.1:{port}", Stats()
    per_thread = IDENTITIES // args.threads
    sdk = [SdkClient(i, base, targets["key"],
                     [f"soak-{i}-{n}" for n in range(per_thread)], stats, seed=i)
           for i in range(args.threads)]
    pair = threading.Barrier(len(editors))
    dash = [DashboardClient(base, targets["environment_id"], login, targets, stats, pair)
            for login in editors]
    stop, start = threading.Event(), threading.Barrier(len(sdk) + len(dash) + 1, timeout=60)
    crashes: list[str] = []

    def guarded(client: Any) -> None:
        try:
            client.run(stop, start)
        except Exception as exc:  # a crashed client fails the soak, loudly
            crashes.append(f"{type(client).__name__}: {exc!r}")
            start.abort()

    threads = [threading.Thread(target=guarded, args=(c,), daemon=True) for c in [*sdk, *dash]]
    for thread in threads:
        thread.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        stop.set()
        raise SystemExit(f"a client failed before the run: {crashes}") from None
    began = time.monotonic()
    warm_at = min(10.0, args.seconds / 3)
    time.sleep(warm_at)
    warm = {pid: rss_kb(pid) for pid in worker_pids(master)}
    time.sleep(max(0.0, args.seconds - warm_at))
    end = {pid: rss_kb(pid) for pid in worker_pids(master)}
    stop.set()
    for thread in threads:
        thread.join()
    return {"stats": stats, "elapsed": time.monotonic() - began, "sdk": sdk, "dash": dash,
            "warm": warm, "end": end, "crashes": crashes}


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # graceful: workers finish their requests
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def lost_traits(conn: psycopg.Connection, env_id: int, run: dict[str, Any]) -> list[str]:
    """Compare every last acknowledged write with the database; return the mismatches."""
    rows = conn.execute(
        "SELECT i.identifier, t.key, t.value_type, t.value_text FROM traits t"
        " JOIN identities i ON i.id = t.identity_id"
        " WHERE i.environment_id = %s AND i.identifier LIKE 'soak-%%'", (env_id,)).fetchall()
    stored = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    lost = []
    for client in run["sdk"]:
        for (identifier, key), value in client.ledger.last.items():
            want = None if value is None else encode_value(value)
            if stored.get((identifier, key)) != want:
                lost.append(f"{identifier}/{key}: acked {want}, db {stored.get((identifier, key))}")
    acked_shared: dict[tuple[str, str], set[Any]] = {}
    for client in run["sdk"]:
        for item, values in client.ledger.shared.items():
            acked_shared.setdefault(item, set()).update(values)
    for (identifier, key), values in acked_shared.items():
        got = stored.get((identifier, key))
        if got is None or got[1] not in values:
            lost.append(f"{identifier}/{key}: db {got} is none of the acknowledged values")
    lost += [f"{i}/{k}: a transient trait was stored" for i, k in stored if k == TRANSIENT_KEY]
    return lost


def leaked_transients(conn: psycopg.Connection, run: dict[str, Any]) -> int:
    names = [i for c in run["sdk"] for i in c.ledger.transient_identifiers]
    return conn.execute("SELECT count(*) FROM identities WHERE identifier = ANY(%s)",
                        (names,)).fetchone()[0]


def missing_audit(conn: psycopg.Connection, targets: dict[str, Any],
                  run: dict[str, Any]) -> list[str]:
    """Acknowledged dashboard changes without their audit event (by object and action)."""
    found = {(r[0], int(r[1]), int(r[2])): r[3] for r in conn.execute(
        "SELECT action, identity_id, object_id, count(*) FROM audit_events"
        " WHERE object_type = 'identity_override' AND actor_label LIKE 'soak-editor-%%'"
        " GROUP BY action, identity_id, object_id")}
    acked: dict[tuple[str, int, int], int] = {}
    for client in run["dash"]:
        for item, n in client.ledger.overrides.items():
            acked[item] = acked.get(item, 0) + n
    missing = [f"override {k}: {n} acked, {found.get(k, 0)} audited"
               for k, n in acked.items() if found.get(k, 0) < n]
    saves = sum(len(c.ledger.segment_saves) for c in run["dash"])
    audited = conn.execute(
        "SELECT count(*) FROM audit_events WHERE object_type = 'segment' AND action = 'update'"
        " AND object_id = %s", (str(targets["segment_id"]),)).fetchone()[0]
    if audited < saves:
        missing.append(f"segment: {saves} saves acked, {audited} audited")
    return missing


def lost_saves(conn: psycopg.Connection, targets: dict[str, Any], before: dict[str, int],
               run: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Acknowledged segment saves overwritten by a concurrent save of the same version.

    :return: one entry per lost save, and the supporting evidence (version, final state).
    """
    saves = sorted(s for c in run["dash"] for s in c.ledger.segment_saves)
    seen: set[int] = set()
    lost = []
    for version, description in saves:
        if version in seen:
            lost.append(f"segment save {description!r} from version {version} was acked, but "
                        "another acked save had already used that version (lost update)")
        seen.add(version)
    after = counters(conn, targets)
    evidence = []
    if after["version"] - before["version"] != len(saves):
        evidence.append(f"segment version moved {after['version'] - before['version']} for "
                        f"{len(saves)} acked saves")
    description = conn.execute("SELECT description FROM segments WHERE id = %s",
                               (targets["segment_id"],)).fetchone()[0]
    if saves and description != saves[-1][1]:
        evidence.append(f"segment description {description!r} is not the last acked save")
    return lost, evidence


def lost_overrides(run: dict[str, Any]) -> list[str]:
    """Lockstep rounds where both editors' changes from one override version were acked."""
    first, second = (client.ledger.rounds for client in run["dash"])
    lost = []
    for key in sorted(first.keys() & second.keys()):
        (version, result, met), (version_b, result_b, met_b) = first[key], second[key]
        if key[0] == "override" and version is not None and version == version_b \
                and result == result_b == "ok" and abs(met - met_b) < 1:
            lost.append(f"override round {key[1]}: both toggles of version {version} were "
                        "acknowledged (one silently undid the other)")
    return lost


def revision_gap(conn: psycopg.Connection, targets: dict[str, Any], before: dict[str, int],
                 run: dict[str, Any]) -> str | None:
    """Each acknowledged change bumps the revision; a shortfall means lost bumps."""
    changes = sum(sum(c.ledger.overrides.values()) + len(c.ledger.segment_saves)
                  for c in run["dash"])
    moved = counters(conn, targets)["revision"] - before["revision"]
    if moved < changes:
        return (f"environment revision moved {moved} for {changes} acked changes: concurrent "
                "bumps were lost, so two states share a revision (stale snapshot caches)")
    return None


def summary(run: dict[str, Any]) -> tuple[int, int]:
    stats, elapsed = run["stats"], run["elapsed"]
    print(f"{'kind':<24}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}  statuses")
    for kind in sorted(stats.latency):
        lat = sorted(stats.latency[kind])
        p99 = lat[max(0, int(len(lat) * 0.99) - 1)]
        codes = " ".join(f"{s}:{n}" for s, n in sorted(stats.statuses[kind].items()))
        print(f"{kind:<24}{len(lat):>9}{len(lat) / elapsed:>8.1f}"
              f"{statistics.median(lat):>9.1f}{p99:>9.1f}  {codes}")
    total = sum(len(v) for v in stats.latency.values())
    errors = stats.count(lambda s: s == 0 or s >= 500)
    sdk_4xx = sum(n for k, by in stats.statuses.items() if k.startswith("sdk")
                  for s, n in by.items() if 400 <= s < 500)
    unexpected = sum(c.ledger.unexpected for c in run["dash"]) + sdk_4xx
    rejected = sum(c.ledger.rejected for c in run["dash"])
    print(f"total {total} requests in {elapsed:.1f}s ({total / elapsed:.0f} req/s); "
          f"{rejected} dashboard changes cleanly rejected as conflicts; "
          f"{unexpected} unexpected 4xx")
    for failure in stats.failures[:8]:
        print("  sample failure:", failure)
    return total, errors + unexpected


def memory_problem(run: dict[str, Any]) -> str | None:
    warm, end = run["warm"], run["end"]
    for pid in sorted(warm):
        if pid in end:
            growth = (end[pid] - warm[pid]) / warm[pid]
            print(f"worker {pid}: RSS warm {warm[pid] / 1024:.1f} MiB, end "
                  f"{end[pid] / 1024:.1f} MiB, growth {growth:+.1%}")
    if set(warm) != set(end) or not warm:
        return f"workers changed during the run (warm {sorted(warm)}, end {sorted(end)})"
    worst = max((end[p] - warm[p]) / warm[p] for p in warm)
    return f"worker memory grew {worst:.1%} (limit {MEMORY_LIMIT:.0%})" \
        if worst >= MEMORY_LIMIT else None


def check(conn: psycopg.Connection, targets: dict[str, Any], before: dict[str, int],
          run: dict[str, Any], log: Path) -> int:
    total, errors = summary(run)
    lost = lost_traits(conn, targets["environment_id"], run)
    missing = missing_audit(conn, targets, run)
    overwritten, evidence = lost_saves(conn, targets, before, run)
    overwritten += lost_overrides(run)
    failures = [*run["crashes"], *lost[:10], *missing[:10], *overwritten, *evidence]
    leaked = leaked_transients(conn, run)
    if leaked:
        failures.append(f"{leaked} transient identities were stored")
    for problem in (revision_gap(conn, targets, before, run), memory_problem(run)):
        if problem:
            failures.append(problem)
    tracebacks = log.read_text().count("Traceback")
    if tracebacks:
        failures.append(f"{tracebacks} tracebacks in the gunicorn log: {exceptions_in(log)}")
    acked = sum(len(c.ledger.last) for c in run["sdk"])
    shared = {item for c in run["sdk"] for item in c.ledger.shared}
    print(f"checked {acked} last trait writes, {len(shared)} shared traits, "
          f"{sum(sum(c.ledger.overrides.values()) for c in run['dash'])} override changes, "
          f"{sum(len(c.ledger.segment_saves) for c in run['dash'])} segment saves, "
          f"{len(run['dash'][0].ledger.rounds)} lockstep rounds")
    for failure in failures:
        print("FAIL:", failure)
    print(f"soak: {total} requests, {errors} errors, "
          f"{len(lost) + len(missing) + len(overwritten)} lost")
    return 1 if failures or errors else 0


def exceptions_in(log: Path) -> str:
    """Name the distinct exceptions of a log (the last line of each traceback), with counts."""
    found = Counter(re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception|Violation)\b.*)$",
                               log.read_text(), re.M))
    return "; ".join(f"{n}x {line[:240]}" for line, n in found.most_common(5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()
    schema = "fp_soak_" + secrets.token_hex(4)
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    process = None
    try:
        env, editors = prepare(args.database_url, schema)
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            targets = targets_of(conn)
            before = counters(conn, targets)
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "gunicorn.log"
            process, port = start_gunicorn(env, args.workers, log)
            print(f"gunicorn -w {args.workers} (sync) on port {port}, schema {schema}; "
                  f"{args.threads} SDK threads + {len(editors)} editors for {args.seconds:g}s",
                  flush=True)
            run = run_traffic(args, port, targets, editors, process.pid)
            stop_gunicorn(process)
            with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
                status = check(conn, targets, before, run, log)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if args.keep:
            print(f"kept schema {schema}")
        else:
            with psycopg.connect(args.database_url, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    sys.exit(status)


if __name__ == "__main__":
    main()
