"""Server-side time of the Users page (and the Identity page) at 1k and at 1M identities.

Fills one database with two environments: a small one (1,000 identities) and a big one
(1,000,000 identities on PostgreSQL, 200,000 on SQLite), each identity with 8 traits, then
times pages in-process with the Flask test client (median of repeated requests):

- Users page, first page (sorted by identifier, with the total count);
- Users page, trait search ``plan = pro and age > 30``;
- Users page, a page deep in the keyset (90% of the way through);
- the total of that trait search, which the page loads by its own request afterwards;
- Identity page (``identities.detail``), when that endpoint exists.

It prints the medians and, last, ``users page 1M/1k time ratio: N.N`` (the worst ratio of
the three Users page measurements on the biggest database run; the total's own request is
printed with its ratio but not judged by it). Targets: every page under
100 ms at 1M, ratio at most 3. PostgreSQL runs in its own schema, dropped afterwards.

    python bench/pages.py [--pg-size 1000000] [--sqlite-size 200000] [--small 1000]
                          [--repeat 15] [--no-postgres] [--no-sqlite] [--explain]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import (  # noqa: E402
    Environment,
    Identity,
    Organisation,
    Project,
    ProjectRole,
    User,
)
from webapp.services.identities import search  # noqa: E402

POSTGRES = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = "fp_bench_pages"
SEARCH = "plan = pro and age > 30"
PLANS = ("free", "pro", "team", "enterprise")
COUNTRIES = ("DE", "FR", "US", "GB", "ES", "IT", "NL", "PL", "SE", "JP")
BASE_TIME = datetime(2024, 1, 1)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # naive UTC, as UTCDateTime stores it
EMAIL, PASSWORD = "bench@example.com", "bench-password"


# ----------------------------------------------------------------------------- data


def progress(label: str, done: int, total: int, started: float) -> None:
    """Draw a one-line progress bar on stderr."""
    width = 30
    filled = int(width * done / max(total, 1))
    rate = done / max(time.perf_counter() - started, 1e-9)
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(f"\r  {label:<28} [{bar}] {done:>9,}/{total:,}  {rate:,.0f}/s")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def identifier_for(i: int, n: int) -> str:
    # A permutation of 0..n-1, so identifier order differs from id (insertion) order.
    step = 7919 if math.gcd(7919, n) == 1 else 1
    return f"user{(i * step) % n:07d}@example{i % 50}.com"


def trait_rows(i: int, rng: random.Random) -> list[tuple[str, str, str, float | None]]:
    """Eight traits: (key, value_type, value_text, value_num)."""
    age = rng.randint(18, 80)
    days = rng.randint(0, 2000)
    score = round(rng.random() * 100, 2)
    beta = rng.random() < 0.3
    return [
        ("age", "integer", str(age), float(age)),
        ("beta_opt_in", "boolean", "true" if beta else "false", None),
        ("country", "string", COUNTRIES[i % len(COUNTRIES)], None),
        ("email", "string", f"person{i}@acme{i % 20}.com", None),
        ("locale", "string", "de-DE" if i % 3 else "en-US", None),
        ("plan", "string", PLANS[rng.randrange(len(PLANS))], None),
        ("score", "float", repr(score), score),
        ("signup_days", "integer", str(days), float(days)),
    ]


@dataclass
class Row:
    identity: tuple[Any, ...]
    traits: list[tuple[Any, ...]]


def generate(environment_id: int, first_id: int, n: int, seed: int) -> Iterator[Row]:
    """Yield identities (with explicit ids) and their traits."""
    rng = random.Random(seed)
    for i in range(n):
        identity_id = first_id + i
        identifier = identifier_for(i, n)
        created = BASE_TIME + timedelta(seconds=i)
        seen = created + timedelta(seconds=rng.randint(0, 10_000_000))
        digest = hashlib.sha256(identifier.encode()).hexdigest()
        stamp, seen_stamp = created.strftime(TIME_FORMAT), seen.strftime(TIME_FORMAT)
        identity = (
            identity_id,
            environment_id,
            identifier,
            digest,
            identifier[:100],
            stamp,
            seen_stamp,
        )
        traits = [
            (identity_id, environment_id, key, kind, value, value[:100], num, stamp, stamp)
            for key, kind, value, num in trait_rows(i, rng)
        ]
        yield Row(identity, traits)


IDENTITY_COLUMNS = (
    "id, environment_id, identifier, identifier_hash, identifier_prefix, created_at, last_seen_at"
)
TRAIT_COLUMNS = (
    "identity_id, environment_id, key, value_type, value_text, value_prefix, value_num, "
    "created_at, updated_at"
)


def _tsv(values: tuple[Any, ...]) -> str:
    return "\t".join("\\N" if v is None else str(v) for v in values) + "\n"


def fill_postgres(raw: Any, environment_id: int, first_id: int, n: int, label: str) -> None:
    """COPY identities and traits in blocks (one COPY per table per block)."""
    started = time.perf_counter()
    block = 50_000
    rows = generate(environment_id, first_id, n, seed=environment_id)
    done = 0
    with raw.cursor() as cur:
        while done < n:
            take = min(block, n - done)
            identities, traits = io.StringIO(), io.StringIO()
            for _ in range(take):
                row = next(rows)
                identities.write(_tsv(row.identity))
                traits.writelines(_tsv(t) for t in row.traits)
            with cur.copy(f"COPY identities ({IDENTITY_COLUMNS}) FROM STDIN") as copy:
                copy.write(identities.getvalue())
            with cur.copy(f"COPY traits ({TRAIT_COLUMNS}) FROM STDIN") as copy:
                copy.write(traits.getvalue())
            done += take
            progress(label, done, n, started)
    raw.commit()


def fill_sqlite(path: str, environment_id: int, first_id: int, n: int, label: str) -> None:
    """Multi-row inserts in large batches on one connection."""
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    block = 20_000
    rows = generate(environment_id, first_id, n, seed=environment_id)
    done = 0
    while done < n:
        take = min(block, n - done)
        batch = [next(rows) for _ in range(take)]
        conn.executemany(
            f"INSERT INTO identities ({IDENTITY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [r.identity for r in batch],
        )
        conn.executemany(
            f"INSERT INTO traits ({TRAIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [t for r in batch for t in r.traits],
        )
        conn.commit()
        done += take
        progress(label, done, n, started)
    conn.close()


# ----------------------------------------------------------------------------- setup


def make_scope(sizes: dict[str, int]) -> dict[str, int]:
    """Create the project, a viewer and one environment per size; return environment ids."""
    from werkzeug.security import generate_password_hash

    organisation = Organisation(name="Bench")
    project = Project(name="Bench", organisation=organisation)
    db.session.add(project)
    user = User(email=EMAIL, password_hash=generate_password_hash(PASSWORD, "pbkdf2:sha256:1000"))
    user.roles.append(ProjectRole(project=project, role="viewer"))
    db.session.add(user)
    environments = {label: Environment(project=project, name=label) for label in sizes}
    db.session.add_all(environments.values())
    db.session.commit()
    ids = {label: env.id for label, env in environments.items()}
    db.session.close()  # no open transaction may hold locks while the tables are altered
    return ids


def load(app: Any, sizes: dict[str, int], dialect: str, sqlite_path: str | None) -> dict[str, int]:
    """Create the schema and fill every environment; return environment ids by label."""
    with app.app_context():
        db.create_all()
        ids = make_scope(sizes)
        ddl = drop_secondary() if dialect == "postgresql" else []
        first_id = 1
        for label, n in sizes.items():
            name = f"{label} ({n:,} identities)"
            if dialect == "postgresql":
                raw = db.engine.raw_connection()
                try:
                    fill_postgres(raw.driver_connection, ids[label], first_id, n, name)
                finally:
                    raw.close()
            else:
                assert sqlite_path is not None
                db.engine.dispose()
                fill_sqlite(sqlite_path, ids[label], first_id, n, name)
            first_id += n
        recreate_secondary(ddl)
        finish_load(dialect, first_id)
    return ids


_SECONDARY = """
    SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
    WHERE conrelid IN ('identities'::regclass, 'traits'::regclass) AND contype IN ('u', 'f')
"""
_INDEXES = """
    SELECT indexname, indexdef FROM pg_indexes
    WHERE schemaname = current_schema() AND tablename IN ('identities', 'traits')
      AND indexname NOT IN (SELECT conname FROM pg_constraint)
"""


def drop_secondary() -> list[str]:
    """Drop indexes, unique and foreign keys of the two big tables (COPY runs far faster).

    :return: the DDL that recreates them.
    """
    ddl: list[str] = []
    with db.engine.begin() as conn:
        for name, table, definition in conn.execute(text(_SECONDARY)).all():
            conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
            ddl.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for name, definition in conn.execute(text(_INDEXES)).all():
            conn.execute(text(f'DROP INDEX "{name}"'))
            ddl.insert(0, definition)
    return ddl


def recreate_secondary(ddl: list[str]) -> None:
    if not ddl:
        return
    started = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        for i, statement in enumerate(ddl, 1):
            conn.execute(text(statement))
            progress("indexes and constraints", i, len(ddl), started)


def finish_load(dialect: str, next_id: int) -> None:
    """Fix the id sequence and vacuum/analyze, as autovacuum would on a live database."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if dialect == "postgresql":
            conn.execute(text(f"SELECT setval('identities_id_seq', {next_id})"))
            conn.execute(text("VACUUM ANALYZE identities"))
            conn.execute(text("VACUUM ANALYZE traits"))
        else:
            conn.execute(text("ANALYZE"))


# ----------------------------------------------------------------------------- timing


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm caches and compiled statements
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def deep_cursor(environment_id: int, n: int) -> str:
    """The keyset cursor 90% of the way through the identifier order (OFFSET only here)."""
    row = db.session.execute(
        select(Identity.id, Identity.identifier_prefix)
        .where(Identity.environment_id == environment_id)
        .order_by(Identity.identifier_prefix, Identity.id)
        .offset(int(n * 0.9))
        .limit(1)
    ).one()
    return search.encode_cursor("identifier", row.identifier_prefix, row.id)


def get_ok(client: Any, url: str, **kwargs: Any) -> Callable[[], None]:
    def call() -> None:
        response = client.get(url, **kwargs)
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")

    return call


def measure(app: Any, ids: dict[str, int], sizes: dict[str, int], repeat: int) -> dict[str, Any]:
    """Time every page in every environment; return {label: {page: ms}}."""
    results: dict[str, Any] = {}
    with app.app_context():
        client = app.test_client()
        login = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 302, "bench login failed"
        for label, environment_id in ids.items():
            base = f"/environments/{environment_id}/users"
            pages = {
                "users: first page": get_ok(client, base),
                f"users: search {SEARCH}": get_ok(client, base, query_string={"q": SEARCH}),
                "users: deep keyset page": get_ok(
                    client, base, query_string={"after": deep_cursor(environment_id, sizes[label])}
                ),
                # The page loads its total by this second request; timed on its own line.
                f"total of {SEARCH} (own request)": get_ok(
                    client, f"{base}/count", query_string={"q": SEARCH}
                ),
            }
            if "identities.detail" in app.view_functions:
                some = db.session.scalar(
                    select(Identity.id).where(Identity.environment_id == environment_id).limit(1)
                )
                pages["identity page"] = get_ok(
                    client, f"/environments/{environment_id}/identities/{some}"
                )
            results[label] = {name: median_ms(fn, repeat) for name, fn in pages.items()}
            db.session.remove()
    return results


def explain(app: Any, environment_id: int) -> None:
    """Time and EXPLAIN ANALYZE every statement the search page runs (PostgreSQL)."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def remember(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, params))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", remember)
        try:
            search.search_identities(environment_id, SEARCH, trait_columns=["age"])
        finally:
            event.remove(db.engine, "before_cursor_execute", remember)
        for statement, params in seen:
            plan = (
                db.session.connection()
                .exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                .all()
            )
            print("--- " + " ".join(statement.split())[:160])
            print("\n".join(line for (line,) in plan))
        db.session.rollback()


# ----------------------------------------------------------------------------- runs


def run(
    name: str,
    url: str,
    sizes: dict[str, int],
    args: argparse.Namespace,
    sqlite_path: str | None = None,
) -> dict[str, Any]:
    print(f"== {name}: " + ", ".join(f"{label} = {n:,}" for label, n in sizes.items()))
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
            "TESTING": False,
        }
    )
    started = time.perf_counter()
    if args.reuse and url.startswith("postgresql"):
        with app.app_context():
            names = db.session.execute(select(Environment.name, Environment.id)).all()
            ids = {name: environment_id for name, environment_id in names}
    else:
        dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
        ids = load(app, sizes, dialect, sqlite_path)
    print(f"  loaded in {time.perf_counter() - started:.0f} s")
    results = measure(app, ids, sizes, args.repeat)
    if args.explain and url.startswith("postgresql"):
        explain(app, ids["big"])
    with app.app_context():
        db.engine.dispose()
    for label, pages in results.items():
        for page, ms in pages.items():
            print(f"  {name:<10} {label:<5} {sizes[label]:>9,}  {page:<44} {ms:8.1f} ms")
    if "identity page" not in next(iter(results.values())):
        print("  identity page: identities.detail does not exist; not measured")
    return {"name": name, "sizes": sizes, "results": results}


def postgres_run(args: argparse.Namespace) -> dict[str, Any]:
    admin_url = POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    if not args.reuse:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    separator = "&" if "?" in admin_url else "?"
    url = f"{admin_url}{separator}options=-csearch_path%3D{SCHEMA}"
    try:
        return run("postgresql", url, {"small": args.small, "big": args.pg_size}, args)
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        admin.dispose()


def sqlite_run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        path = os.path.join(workdir, "bench.db")
        sizes = {"small": args.small, "big": args.sqlite_size}
        return run("sqlite", f"sqlite:///{path}", sizes, args, sqlite_path=path)


def ratio(run_result: dict[str, Any]) -> float:
    small, big = run_result["results"]["small"], run_result["results"]["big"]
    users = [page for page in small if page.startswith("users")]
    return max(big[page] / small[page] for page in users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-size", type=int, default=1_000_000)
    parser.add_argument("--sqlite-size", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--explain", action="store_true", help="print PostgreSQL plans")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept schema (no load)")
    args = parser.parse_args()
    runs = []
    if not args.no_sqlite:
        runs.append(sqlite_run(args))
    if not args.no_postgres:
        runs.append(postgres_run(args))
    if not runs:
        raise SystemExit("nothing to run")
    biggest = max(runs, key=lambda r: r["sizes"]["big"])
    worst = max(ms for r in runs for pages in r["results"].values() for ms in pages.values())
    big_worst = max(biggest["results"]["big"].values())
    print(
        f"slowest page at {biggest['sizes']['big']:,} ({biggest['name']}): {big_worst:.1f} ms"
        f" (slowest of all runs: {worst:.1f} ms)"
    )
    small, big = biggest["results"]["small"], biggest["results"]["big"]
    for page in (p for p in small if not p.startswith("users")):
        print(f"{page} 1M/1k time ratio: {big[page] / small[page]:.1f} (not judged)")
    print(f"users page 1M/1k time ratio: {ratio(biggest):.1f}")


if __name__ == "__main__":
    main()
