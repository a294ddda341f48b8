"""Segment membership at scale: SQL translation vs a plain Python scan, on PostgreSQL.

Fills a dedicated schema with N identities (default 1,000,000) and five traits each using
COPY, times ``count_members`` and the first page of ``member_ids`` for five typical
segments, then a Python scan (load traits, evaluate each identity with the evaluation
module) over a sample, extrapolated to N. The schema is dropped afterwards unless
``--keep`` is given; ``--reuse SCHEMA`` measures an already loaded schema again (it is
never dropped) and ``--explain`` prints EXPLAIN ANALYZE of each SQL count.

    .venv/bin/python bench/segments.py                      # full size
    .venv/bin/python bench/segments.py --identities 20000   # smoke run
    .venv/bin/python bench/segments.py --keep               # prints the schema it kept
    .venv/bin/python bench/segments.py --reuse bench_segments_1a2b3c4d --explain
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.evaluation import SegmentInput  # noqa: E402
from webapp.evaluation.segments import CompiledSegment, Subject  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import (  # noqa: E402
    Environment,
    Identity,
    Organisation,
    Project,
    Trait,
    decode_value,  # noqa: E402
)
from webapp.services.segments import sql_membership  # noqa: E402


def _all(*conditions: tuple[str, str, str | None], kind: str = "ALL") -> list[dict[str, Any]]:
    rules = [
        {"type": "ANY", "rules": [], "conditions": [
            {"property_": p, "operator": o, "value": v}]}
        for p, o, v in conditions
    ]  # fmt: skip
    return [{"type": kind, "rules": rules, "conditions": []}]


SEGMENTS: dict[str, list[dict[str, Any]]] = {
    "plan = pro": _all(("plan", "EQUAL", "pro")),
    "plan = pro AND country IN DE,FR": _all(("plan", "EQUAL", "pro"), ("country", "IN", "DE,FR")),
    "30 <= age < 40": _all(("age", "GREATER_THAN_INCLUSIVE", "30"), ("age", "LESS_THAN", "40")),
    "beta AND NOT country = US": [{"type": "ALL", "conditions": [
        {"property_": "beta", "operator": "EQUAL", "value": "true"}], "rules": [
        {"type": "NONE", "rules": [], "conditions": [
            {"property_": "country", "operator": "EQUAL", "value": "US"}]}]}],
    "score > 900 OR plan = team": _all(("score", "GREATER_THAN", "900"), ("plan", "EQUAL", "team"),
                                       kind="ANY"),
}  # fmt: skip
PLANS = ["free"] * 6 + ["pro"] * 3 + ["team"]
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "ES", "IT", "PL"]


def progress(label: str, done: int, total: int) -> None:
    width = 40
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{label:<12} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def fill(environment_id: int, count: int, seed: int = 7) -> None:
    """COPY ``count`` identities with plan, country, age, score and beta traits."""
    rng = random.Random(seed)
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        first_id = 1
        chunk = 50_000
        with cursor.copy(
            "COPY identities (id, environment_id, identifier, identifier_hash, identifier_prefix,"
            " created_at, last_seen_at) FROM STDIN"
        ) as copy:
            for n in range(count):
                ident = f"user-{n:07d}"
                copy.write_row((first_id + n, environment_id, ident, uuid.uuid4().hex + "0" * 32,
                                ident, "2026-01-01", "2026-01-01"))  # fmt: skip
                if n % chunk == 0:
                    progress("identities", n, count)
        progress("identities", count, count)
        trait_id = 1
        with cursor.copy(
            "COPY traits (id, identity_id, environment_id, key, value_type, value_text,"
            " value_prefix, value_num, created_at, updated_at) FROM STDIN"
        ) as copy:
            for n in range(count):
                for key, kind, value, number in _traits(rng):
                    copy.write_row((trait_id, first_id + n, environment_id, key, kind, value,
                                    value, number, "2026-01-01", "2026-01-01"))  # fmt: skip
                    trait_id += 1
                if n % chunk == 0:
                    progress("traits", n, count)
        progress("traits", count, count)
        cursor.execute("SELECT setval('identities_id_seq', %s)", (count + 1,))
        cursor.execute("SELECT setval('traits_id_seq', %s)", (trait_id + 1,))
        raw.commit()
        # What autovacuum does to a freshly filled table (PostgreSQL 13+ vacuums after
        # inserts too): statistics, and the visibility map index-only scans rely on.
        raw.driver_connection.autocommit = True
        for table in ("identities", "traits"):
            vacuum(cursor, table)
        raw.driver_connection.autocommit = False
    finally:
        raw.close()


def vacuum(cursor: Any, table: str, attempts: int = 10) -> None:
    """VACUUM ANALYZE until the table's pages are all-visible (other sessions' snapshots
    on a shared server can hold that back for a while)."""
    share = 0.0
    for _ in range(attempts):
        cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute(
            "SELECT relallvisible::float / greatest(relpages, 1) FROM pg_class"
            " WHERE oid = %s::regclass", (table,))  # fmt: skip
        share = cursor.fetchone()[0]
        if share >= 0.99:
            return
        time.sleep(3)
    print(f"warning: only {share:.0%} of {table} is all-visible", file=sys.stderr)


def _traits(rng: random.Random) -> list[tuple[str, str, str, float | None]]:
    age = rng.randint(16, 80)
    score = rng.randint(0, 1000)
    rows = [
        ("plan", "string", rng.choice(PLANS), None),
        ("country", "string", rng.choice(COUNTRIES), None),
        ("age", "integer", str(age), float(age)),
        # Sent as text by many SDKs: a numeric-looking string compares as a number.
        ("score", "string", str(score), float(score)),
    ]
    if rng.random() < 0.5:
        rows.append(("beta", "boolean", "true" if rng.random() < 0.4 else "false", None))
    return rows


def python_scan(environment_id: int, env: Environment, rules: Any, key: str, sample: int) -> float:
    """Time loading traits and evaluating ``sample`` identities; return seconds per identity."""
    start = time.perf_counter()
    ids = list(db.session.scalars(
        select(Identity.id).where(Identity.environment_id == environment_id)
        .order_by(Identity.id).limit(sample)))  # fmt: skip
    identifiers = dict(db.session.execute(
        select(Identity.id, Identity.identifier).where(Identity.id.in_(ids))).all())  # fmt: skip
    traits: dict[int, dict[str, Any]] = {i: {} for i in ids}
    rows = db.session.execute(
        select(Trait.identity_id, Trait.key, Trait.value_type, Trait.value_text).where(
            Trait.environment_id == environment_id, Trait.identity_id.in_(ids)))  # fmt: skip
    for identity_id, trait_key, kind, value in rows:
        traits[identity_id][trait_key] = decode_value(kind, value)
    parsed = sql_membership.rules_from_document(rules)
    segment = CompiledSegment(SegmentInput(key=key, name="", rules=parsed), 0)
    matched = sum(
        1 for i in ids
        if segment.matches(Subject(identifiers[i], f"{env.client_key}_{identifiers[i]}",
                                   traits[i], env.client_key, env.name))
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    del matched
    return elapsed / max(len(ids), 1)


def run(url: str, count: int, sample: int, options: argparse.Namespace) -> None:
    schema = options.reuse or f"bench_segments_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    if not options.reuse:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"{url}?options=-csearch_path%3D{schema}",
            "SECRET_KEY": "bench", "TESTING": True})  # fmt: skip
        with app.app_context():
            if options.reuse:
                env = db.session.scalars(select(Environment).order_by(Environment.id)).one()
                count = db.session.scalar(select(func.count()).select_from(Identity)) or 0
            else:
                db.create_all()
                project = Project(name="Bench", organisation=Organisation(name="Bench"))
                env = Environment(project=project, name="Production")
                db.session.add(env)
                db.session.commit()
                environment_id = env.id
                # No transaction may stay open during the fill: VACUUM could not mark
                # pages all-visible behind its snapshot.
                db.session.commit()
                fill(environment_id, count)
            measure(env, count, min(sample, count), options.explain)
            db.session.remove()
            db.engine.dispose()
    finally:
        if options.keep or options.reuse:
            print(f"schema kept: {schema} (reuse with --reuse {schema})", file=sys.stderr)
        else:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def explain(membership: sql_membership.Membership) -> None:
    """Print EXPLAIN ANALYZE of every statement ``count_prepared`` runs."""
    connection = db.session.connection()
    sql_membership.tune(membership.scope)
    for query in sql_membership.count_queries(membership):
        compiled = query.compile(dialect=db.engine.dialect,
                                 compile_kwargs={"literal_binds": True})  # fmt: skip
        sql = str(compiled).replace("%", "%%")
        rows = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        print("\n".join(f"    {row[0]}" for row in rows))


def measure(env: Environment, count: int, sample: int, show_plans: bool = False) -> None:
    sql_total = python_total = 0.0
    print(f"{count:,} identities; Python scan timed on {sample:,} and extrapolated")
    for name, rules in SEGMENTS.items():
        db.session.commit()
        start = time.perf_counter()
        members = sql_membership.count_members(env.id, rules, "1")
        counted = time.perf_counter() - start
        db.session.commit()
        start = time.perf_counter()
        page = sql_membership.member_ids(env.id, rules, "1", limit=50)
        paged = time.perf_counter() - start
        db.session.commit()
        per_identity = python_scan(env.id, env, rules, "1", sample)
        scan = per_identity * count
        sql_total += counted
        python_total += scan
        print(f"{name:<34} members {members:>9,}  sql count {counted * 1000:8.1f} ms  "
              f"first page ({len(page)}) {paged * 1000:7.1f} ms  "
              f"python scan ~{scan:8.2f} s (extrapolated)")  # fmt: skip
        if show_plans:
            explain(sql_membership.prepare(env.id, rules, "1"))
            db.session.commit()
    print(f"segment count sql/python speedup: {python_total / sql_total:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=1_000_000)
    parser.add_argument("--python-sample", type=int, default=50_000)
    parser.add_argument("--database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/test")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the loaded schema")
    parser.add_argument("--reuse", metavar="SCHEMA", help="measure a schema kept by --keep")
    parser.add_argument("--explain", action="store_true", help="print each count's plan")
    args = parser.parse_args()
    run(args.database_url, args.identities, args.python_sample, args)


if __name__ == "__main__":
    main()
