"""Simultaneous first identifications create each identity exactly once and never fail."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from tests.api.conftest import build_sdk_environment
from tests.conftest import dispose_engines, make_test_app
from tests.live import serve
from webapp.extensions import db
from webapp.models import Identity, Trait

# Database behaviour (simultaneous writes): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

THREADS = 20
IDENTIFIERS = [f"racer-{index}" for index in range(10)]
RACE_POOL = {"pool_size": 5, "max_overflow": 10, "pool_pre_ping": True}


@pytest.fixture
def live_env(database, request, tmp_path):
    if database == "sqlite":
        app = make_test_app(f"sqlite:///{tmp_path / 'race.sqlite'}")
        with app.app_context():
            db.create_all()
    else:
        schema = request.getfixturevalue("postgres_schema")
        # SQLAlchemy's default pool (5 + 10), not the small test pool: the race needs as
        # many connections at once as it always had.
        app = make_test_app(schema.url, SQLALCHEMY_ENGINE_OPTIONS=RACE_POOL)
        if schema.created:
            schema.empty(app)
        else:
            schema.create(app)
    with app.app_context():
        client_key = build_sdk_environment().client_key
        db.session.commit()
        db.session.remove()
    with serve(app) as url:
        yield app, url, client_key
    dispose_engines(app)


def test_first_identifications__race__create_each_identity_once(live_env):
    app, url, key = live_env

    def identify_all(thread: int) -> list[int]:
        session = requests.Session()
        statuses = []
        for identifier in IDENTIFIERS:
            response = session.post(
                f"{url}/api/v1/identities/",
                timeout=30,
                headers={"X-Environment-Key": key},
                json={
                    "identifier": identifier,
                    "traits": [{"trait_key": "thread", "trait_value": thread}],
                },
            )
            statuses.append(response.status_code)
        return statuses

    with ThreadPoolExecutor(THREADS) as pool:
        statuses = [s for result in pool.map(identify_all, range(THREADS)) for s in result]

    assert statuses == [200] * (THREADS * len(IDENTIFIERS))
    with app.app_context():
        count = db.session.scalar(
            select(func.count(Identity.id)).where(Identity.identifier.in_(IDENTIFIERS))
        )
        traits = db.session.scalar(select(func.count(Trait.id)).where(Trait.key == "thread"))
    assert count == len(IDENTIFIERS)
    assert traits == len(IDENTIFIERS)  # one "thread" trait per identity, last writer wins
