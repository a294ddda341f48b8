"""Benchmark: the experiment page and event ingest with many exposures stored (PostgreSQL).

Run as ``python bench/experiments.py postgresql://postgres@127.0.0.1:5432/test
[--features 50] [--identities 1000000]`` (defaults: 5 features × 100,000 identities, a few
seconds). In a schema of its own (dropped at the end) it creates ``--identities`` identities
and, for each of ``--features`` multivariate features, a running experiment where every
identity is exposed and one in ten converted (rows written by ``generate_series``, counters
by one GROUP BY, as ingest would have left them). It then times the experiment page (median
of 20 requests, logged in as a viewer) and the write of 10,000 new SDK events through the
event buffer. The last line is the page's median in milliseconds (goal: under 100).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.clock import utcnow  # noqa: E402
from webapp.config import normalise_database_url  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import (  # noqa: E402
    Environment,
    Feature,
    FeatureState,
    MultivariateAllocation,
    MultivariateOption,
    Organisation,
    Project,
    ProjectRole,
    User,
)
from webapp.services.experiments import lifecycle  # noqa: E402
from webapp.services.experiments.arms import option_key  # noqa: E402
from webapp.services.experiments.event_buffer import app_buffer  # noqa: E402
from webapp.services.experiments.events import FLAG_EXPOSURE_EVENT, SdkEvent  # noqa: E402

SCHEMA = "bench_experiments"


def _schema(url: str, action: str) -> None:
    engine = create_engine(normalise_database_url(url))
    with engine.begin() as connection:
        if action == "create":
            connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        else:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    engine.dispose()


def _world(features: int) -> tuple[Environment, list[int]]:
    project = Project(organisation=Organisation(name="Bench"), name="Bench")
    environment = Environment(project=project, name="Production")
    user = User(
        email="viewer@example.com",
        password_hash=generate_password_hash("password123", method="pbkdf2:sha256:1"),
    )
    user.roles.append(ProjectRole(project=project, role="viewer"))
    db.session.add_all([project, environment, user])
    db.session.flush()
    experiment_ids = []
    for index in range(features):
        feature = Feature(project=project, name=f"feature_{index}", type="MULTIVARIATE")
        state = FeatureState(feature=feature, environment=environment, enabled=True)
        state.value = "control-value"
        db.session.add_all([feature, state])
        for value in ("a", "b"):
            option = MultivariateOption(feature=feature, default_allocation=30.0)
            option.value = value
            state.allocations.append(MultivariateAllocation(option=option, percentage=30.0))
        db.session.flush()
        experiment = lifecycle.start_experiment(
            environment, feature, f"Experiment {index}", "purchase", None, None, utcnow()
        )
        experiment_ids.append(experiment.id)
    return environment, experiment_ids


def _fill(environment: Environment, experiment_ids: list[int], identities: int) -> None:
    connection = db.session.connection()
    connection.execute(text(
        "INSERT INTO identities (environment_id, identifier, identifier_hash, identifier_prefix,"
        " created_at, last_seen_at) SELECT :env, 'user-' || n, md5('user-' || n) || md5(n::text),"
        " 'user-' || n, now(), now() FROM generate_series(1, :n) AS n"
    ), {"env": environment.id, "n": identities})  # fmt: skip
    for experiment_id in experiment_ids:
        keys = ["control"] + [
            option_key(o) for o in db.session.get_one(Feature, _feature_of(experiment_id)).options
        ]
        connection.execute(text(
            "INSERT INTO experiment_exposures (experiment_id, identity_id, variant, first_seen_at)"
            " SELECT :e, id, (ARRAY[:k0, :k1, :k2])[1 + id % 3], now() FROM identities"
            " WHERE environment_id = :env"
        ), {"e": experiment_id, "env": environment.id,
            "k0": keys[0], "k1": keys[1], "k2": keys[2]})  # fmt: skip
        connection.execute(text(
            "INSERT INTO experiment_conversions (experiment_id, identity_id, variant, converted_at)"
            " SELECT experiment_id, identity_id, variant, now() FROM experiment_exposures"
            " WHERE experiment_id = :e AND identity_id % 10 = 0"
        ), {"e": experiment_id})  # fmt: skip
        connection.execute(text(
            "INSERT INTO experiment_arms (experiment_id, variant, exposures, conversions)"
            " SELECT x.experiment_id, x.variant, count(*), count(c.identity_id)"
            " FROM experiment_exposures x LEFT JOIN experiment_conversions c"
            " ON c.experiment_id = x.experiment_id AND c.identity_id = x.identity_id"
            " WHERE x.experiment_id = :e GROUP BY x.experiment_id, x.variant"
        ), {"e": experiment_id})  # fmt: skip
    db.session.commit()
    connection = db.session.connection()
    connection.execute(
        text("ANALYZE identities, experiment_exposures, experiment_conversions, experiment_arms")
    )
    db.session.commit()


def _feature_of(experiment_id: int) -> int:
    return int(db.session.execute(
        text("SELECT feature_id FROM experiments WHERE id = :e"), {"e": experiment_id}
    ).scalar_one())  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("--features", type=int, default=5)
    parser.add_argument("--identities", type=int, default=100_000)
    args = parser.parse_args()
    _schema(args.database_url, "create")
    url = f"{args.database_url}?options=-csearch_path%3D{SCHEMA}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench",
                      "WTF_CSRF_ENABLED": False, "EVENTS_FLUSH_SECONDS": 0})  # fmt: skip
    try:
        with app.app_context():
            db.create_all()
            started = time.perf_counter()
            environment, experiment_ids = _world(args.features)
            _fill(environment, experiment_ids, args.identities)
            rows = args.features * args.identities
            print(f"stored {rows:,} exposures in {time.perf_counter() - started:.1f} s")
            client = app.test_client()
            client.post("/login", data={"email": "viewer@example.com", "password": "password123"})
            page = f"/environments/{environment.id}/experiments/{experiment_ids[-1]}"
            timings = []
            for _ in range(20):
                started = time.perf_counter()
                assert client.get(page).status_code == 200
                timings.append((time.perf_counter() - started) * 1000)
            events = [SdkEvent(FLAG_EXPOSURE_EVENT, f"user-{n}", "feature_0", "control", None)
                      for n in range(args.identities + 1, args.identities + 10_001)]  # fmt: skip
            events[::2] = [SdkEvent("purchase", f"user-{n}", None, None, None)
                           for n in range(1, 5_001)]  # fmt: skip
            started = time.perf_counter()
            app_buffer().add(environment.id, events, utcnow())
            app_buffer().flush()
            ingest = len(events) / (time.perf_counter() - started)
            print(f"event flush: {ingest:,.0f} events/s (10,000 events)")
            print(f"experiment page median over {rows:,} exposures: "
                  f"{statistics.median(timings):.1f} ms")  # fmt: skip
            db.session.remove()
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
        _schema(args.database_url, "drop")


if __name__ == "__main__":
    main()
