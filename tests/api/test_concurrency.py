"""Simultaneous first identifications create each identity exactly once and never fail."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from tests.api.conftest import build_sdk_environment
from tests.conftest import make_test_app
from tests.live import serve
from webapp.extensions import db
from webapp.models import Identity, Trait

THREADS = 20
IDENTIFIERS = [f"racer-{index}" for index in range(10)]


@pytest.fixture
def live_env(database, request, tmp_path):
    if database == "sqlite":
        app = make_test_app(f"sqlite:///{tmp_path / 'race.sqlite'}")
        with app.app_context():
            db.create_all()
    else:
        schema = request.getfixturevalue("postgres_schema")
        app = make_test_app(schema.url)
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
    with app.app_context():
        db.engine.dispose()


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
