"""Server-side time of the usage pages with 50 features x N identities of "seen" rows.

PostgreSQL only (the scale target is a PostgreSQL deployment). In its own schema (dropped
afterwards, unless --keep), it creates one environment with 50 features, N identities
(default 1,000,000) and a "seen" row for every identity and feature (50 x N rows, written
with ``generate_series`` in SQL, not the ORM), plus 90 days of hourly counts and of served
states per day (``flag_values_daily``: one state per standard feature, three per
multivariate one). Then it times, in-process with the Flask test client (median of --repeat
requests):

- the Features list (usage column: 30-day chart, total, last evaluated, for 50 features);
- a Feature page (chart and per-environment table);
- the Identity page of a random identity ("Seen by this identity": 50 rows);
- the Features list's stale filters: "unused" (hour rows) and "constant" (the served states
  per day, not the seen rows), with how many features each lists.

Last line: ``usage pages worst: N.N ms`` (the worst of them all). Target: < 100 ms.

    python bench/usage_pages.py [--identities 1000000] [--repeat 15] [--keep]
    python bench/usage_pages.py --schema fp_bench_usage_xxxxxx  # time a kept schema again

A 1M fill takes minutes on a small machine: ``--keep`` it once, then time it again (after a
code change) with ``--schema``, which adds missing tables and fills only what is empty.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import (  # noqa: E402
    Environment,
    Feature,
    FeatureState,
    Organisation,
    Project,
    ProjectRole,
    User,
)

POSTGRES = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
FEATURES = 50
EMAIL, PASSWORD = "bench@example.com", "bench-password"

# Every identity sees every feature; a tenth of the features are multivariate (variants
# a/b/control by identity), the others serve one value. Times spread over the last 30 days.
SEEN = """
INSERT INTO flag_seen (identity_id, feature_id, variant, environment_id, enabled,
                       first_seen_at, last_seen_at, value_type, value_text)
SELECT i.id, f.id,
       CASE WHEN f.type = 'MULTIVARIATE' THEN (ARRAY['a', 'b', 'control'])[1 + i.id % 3]
            ELSE '' END,
       :env, true,
       now() at time zone 'utc' - interval '40 days',
       now() at time zone 'utc' - (i.id % 720) * interval '1 hour',
       'string',
       CASE WHEN f.type = 'MULTIVARIATE' THEN 'v' || (i.id % 3)::text ELSE 'on' END
FROM identities i CROSS JOIN features f
WHERE i.environment_id = :env AND f.project_id = :project AND i.id BETWEEN :lo AND :hi
"""
IDENTITIES = """
INSERT INTO identities (environment_id, identifier, identifier_hash, identifier_prefix,
                        created_at, last_seen_at)
SELECT :env, 'user-' || lpad(n::text, 8, '0'),
       encode(sha256(convert_to('user-' || lpad(n::text, 8, '0'), 'UTF8')), 'hex'),
       'user-' || lpad(n::text, 8, '0'),
       now() at time zone 'utc', now() at time zone 'utc'
FROM generate_series(1, :n) AS n
"""
COUNTS = """
INSERT INTO flag_usage (environment_id, feature_id, hour, count)
SELECT :env, f.id, date_trunc('hour', now() at time zone 'utc') - h * interval '1 hour',
       (f.id * 7 + h) % 500
FROM features f CROSS JOIN generate_series(0, 90 * 24 - 1) AS h
WHERE f.project_id = :project AND (f.id * 7 + h) % 500 > 0
"""
DAILY = """
INSERT INTO flag_usage_daily (environment_id, feature_id, day, count, last_hour)
SELECT environment_id, feature_id, date_trunc('day', hour), sum(count), max(hour)
FROM flag_usage WHERE environment_id = :env GROUP BY 1, 2, 3
"""

# The served states the seen rows above imply, per day for 90 days (the writer's rollup):
# standard features "on", multivariate ones v0/v1/v2; keys as models.usage.state_key.
VALUES_DAILY = """
INSERT INTO flag_values_daily (environment_id, feature_id, day, state_key, enabled, value_type,
                               value_text, count, first_at, last_at)
SELECT :env, f.id, t.day,
       left(encode(sha256(convert_to('1|string|' || s.v, 'UTF8')), 'hex'), 32),
       true, 'string', s.v,
       greatest(1, :n / 30 / CASE WHEN f.type = 'MULTIVARIATE' THEN 3 ELSE 1 END),
       t.day, least(now() at time zone 'utc', t.day + interval '23 hours 59 minutes')
FROM features f
CROSS JOIN LATERAL (
    SELECT date_trunc('day', now() at time zone 'utc') - d * interval '1 day' AS day
    FROM generate_series(0, 89) AS d
) t
CROSS JOIN LATERAL unnest(CASE WHEN f.type = 'MULTIVARIATE' THEN ARRAY['v0', 'v1', 'v2']
                               ELSE ARRAY['on'] END) AS s(v)
WHERE f.project_id = :project
"""


def timed(label: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = fn()
    print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


def make_scope() -> tuple[int, int, int]:
    organisation = Organisation(name="Bench")
    project = Project(name="Bench", organisation=organisation)
    environment = Environment(project=project, name="Production")
    user = User(email=EMAIL, password_hash=generate_password_hash(PASSWORD, "pbkdf2:sha256:1000"))
    user.roles.append(ProjectRole(project=project, role="viewer"))
    db.session.add_all([project, environment, user])
    for index in range(FEATURES):
        kind = "MULTIVARIATE" if index % 10 == 0 else "STANDARD"
        feature = Feature(project=project, name=f"feature_{index:02d}", type=kind)
        state = FeatureState(feature=feature, environment=environment, enabled=True)
        state.value = "on"
        db.session.add_all([feature, state])
    db.session.commit()
    ids = project.id, environment.id, user.id
    db.session.close()
    return ids


def fill(project_id: int, environment_id: int, identities: int) -> None:
    params = {"env": environment_id, "project": project_id, "n": identities}
    with db.engine.begin() as conn:
        timed(f"{identities:,} identities", lambda: conn.execute(text(IDENTITIES), params))
        lo, hi = conn.execute(
            text("SELECT min(id), max(id) FROM identities WHERE environment_id = :env"), params
        ).one()
        timed("hourly counts (90 days)", lambda: conn.execute(text(COUNTS), params))
        timed("their day rows", lambda: conn.execute(text(DAILY), params))
        timed("served states per day", lambda: conn.execute(text(VALUES_DAILY), params))
    step = 100_000
    started = time.perf_counter()
    for start in range(lo, hi + 1, step):
        with db.engine.begin() as conn:
            conn.execute(text(SEEN), {**params, "lo": start, "hi": min(hi, start + step - 1)})
        done = min(hi, start + step - 1) - lo + 1
        print(
            f"\r  seen rows: {done * FEATURES:,} ({time.perf_counter() - started:.0f} s)",
            end="",
            flush=True,
        )
    print(flush=True)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        tables = ("identities", "flag_seen", "flag_usage", "flag_usage_daily", "flag_values_daily")
        for table in tables:
            statement = text(f"VACUUM ANALYZE {table}")
            timed(f"VACUUM ANALYZE {table}", lambda s=statement: conn.execute(s))
        size = conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size('flag_seen'))"))
        print(f"  flag_seen with its indexes: {size.scalar()}", flush=True)


def refill(project_id: int, environment_id: int) -> int:
    """Fill what a kept schema lacks (tables added since); return its identity count."""
    params = {"env": environment_id, "project": project_id}
    with db.engine.begin() as conn:
        params["n"] = conn.execute(
            text("SELECT count(*) FROM identities WHERE environment_id = :env"), params
        ).scalar_one()
        if not conn.execute(text("SELECT count(*) FROM flag_values_daily")).scalar_one():
            timed("served states per day", lambda: conn.execute(text(VALUES_DAILY), params))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE flag_values_daily"))
    return int(params["n"])


def median_ms(client: Any, url: str, repeat: int) -> float:
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code}")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the schema (prints its name)")
    parser.add_argument("--schema", help="time a schema kept by --keep again (implies --keep)")
    args = parser.parse_args()
    schema = args.schema or "fp_bench_usage_" + secrets.token_hex(3)
    args.keep = args.keep or bool(args.schema)
    admin = create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1))
    if not args.schema:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "WTF_CSRF_ENABLED": False,
            "USAGE_FLUSH_INTERVAL": None,
        }
    )
    try:
        with app.app_context():
            db.create_all()
            if args.schema:
                project_id, environment_id = db.session.execute(
                    text("SELECT project_id, id FROM environments ORDER BY id LIMIT 1")
                ).one()
                db.session.remove()
                args.identities = refill(project_id, environment_id)
            else:
                print(
                    f"filling {FEATURES} features x {args.identities:,} identities of seen rows",
                    flush=True,
                )
                project_id, environment_id, _ = make_scope()
                fill(project_id, environment_id, args.identities)
            feature_id = db.session.scalar(text("SELECT min(id) FROM features"))
            identity_id = db.session.scalar(
                text("SELECT id FROM identities WHERE environment_id = :e OFFSET :o LIMIT 1"),
                {"e": environment_id, "o": random.Random(7).randrange(args.identities)},
            )
            db.session.remove()
        client = app.test_client()
        client.post("/login", data={"email": EMAIL, "password": PASSWORD})
        base = f"/environments/{environment_id}"
        judged = {
            "Features list": f"{base}/features",
            "Feature page": f"{base}/features/{feature_id}",
            "Identity page": f"{base}/identities/{identity_id}",
            "stale filter: unused 30 days": f"{base}/features?stale=unused&days=30",
            "stale filter: constant 30 days": f"{base}/features?stale=constant&days=30",
        }
        worst = 0.0
        for label, page in judged.items():
            ms = median_ms(client, page, args.repeat)
            worst = max(worst, ms)
            listed = ""
            if "stale" in page:
                found = client.get(page).get_data(as_text=True).count('class="stale-evidence')
                listed = f", lists {found} features"
            print(f"{label:<34} {ms:8.1f} ms (median of {args.repeat}{listed})", flush=True)
        print(f"usage pages worst: {worst:.1f} ms")
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if args.keep:
            print(f"kept schema {schema}")
        else:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
