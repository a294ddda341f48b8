"""The official Flagsmith SDK (6.x), unchanged, with events on and its events URL set to
Flagpost's API URL: exposures from get_experiment_flag() and goal events from track_event()
arrive, are stored once per identity, and show on the experiment page."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from flagsmith import EventProcessorConfig, Flagsmith
from sqlalchemy import select

from tests.conftest import dispose_engines, eventually, served_app
from tests.factories import (
    experiments_make_world,
    features_make_identity_override,
    make_identity,
)
from tests.live import serve
from webapp.extensions import db
from webapp.models import Environment, Feature, Identity
from webapp.models.experiment import ExperimentArm, ExperimentExposure
from webapp.services import environments, revisions
from webapp.services.experiments.event_buffer import app_buffer

# Database behaviour (ingest over HTTP into each database): SQLite and PostgreSQL.
pytestmark = [pytest.mark.databases("sqlite", "postgres"), pytest.mark.xdist_group("live_sdk")]

IDENTITIES = 90


@contextmanager
def _live(database, request, tmp_path, segment):
    app = served_app(database, request, tmp_path / 'live.sqlite', SDK_CACHE_TTL=0)
    with app.app_context():
        world = experiments_make_world(segment_rules=segment)
        ids = {
            "client_key": world["environment"].client_key,
            "server_key": environments.create_server_key(
                world["environment"], "backend", world["editor"]
            ).key,
            "environment_id": world["environment"].id,
            "experiment_id": world["experiment"].id,
        }
        db.session.remove()
    try:
        with serve(app) as url:
            yield app, f"{url}/api/v1/", ids
    finally:
        dispose_engines(app)


@pytest.fixture
def live(database, request, tmp_path):
    with _live(database, request, tmp_path, segment=False) as served:
        yield served


@pytest.fixture
def live_segment(database, request, tmp_path):
    with _live(database, request, tmp_path, segment=True) as served:
        yield served


def sdk(api_url, key):
    # Flushed by its own timer every 50 ms: the SDK is used exactly as an application would.
    return Flagsmith(
        environment_key=key,
        api_url=api_url,
        enable_events=True,
        event_processor_config=EventProcessorConfig(
            events_api_url=api_url, flush_interval_seconds=0.05
        ),
    )


def counters(app, experiment_id):
    with app.app_context():
        rows = db.session.execute(
            select(ExperimentArm.variant, ExperimentArm.exposures, ExperimentArm.conversions)
            .where(ExperimentArm.experiment_id == experiment_id)
        ).all()  # fmt: skip
        return {variant: (exposed, converted) for variant, exposed, converted in rows}


def written(app, experiment_id, exposures, conversions):
    """Flush the server's buffer until the expected totals are stored (the SDK posts async)."""

    def check():
        with app.app_context():
            app_buffer().flush()
        found = counters(app, experiment_id).values()
        return (sum(e for e, _ in found), sum(c for _, c in found)) == (exposures, conversions)

    eventually(check, seconds=15, message="the SDK's events never all arrived")


def test_official_sdk__exposures_and_goals__arrive_and_show_on_the_page(live):
    app, api_url, ids = live
    client = sdk(api_url, ids["client_key"])
    try:
        # When: every identity gets the experiment flag, every third one converts (twice),
        # and events nobody can place are sent along
        seen = {}
        for index in range(IDENTITIES):
            identifier = f"shopper-{index}"
            flag = client.get_experiment_flag("checkout", identifier)
            assert flag.experiment is not None and flag.experiment.in_experiment is True
            assert flag.experiment.id == ids["experiment_id"]
            assert flag.experiment.name == "Button colour"
            seen[identifier] = flag.variant
            if index % 3 == 0:
                client.track_event("purchase", identifier=identifier, value=9.5)
                client.track_event("purchase", identifier=identifier)
        client.track_event("purchase", identifier="never-identified")
        client.track_event("signup", identifier="shopper-1")
        client.track_exposure_event("checkout", identifier="ghost", value="control")
        # Then
        written(app, ids["experiment_id"], IDENTITIES, IDENTITIES // 3)
    finally:
        client._event_processor.stop()
    expected = {}
    for index, variant in enumerate(seen.values()):
        exposed, converted = expected.get(variant, (0, 0))
        expected[variant] = (exposed + 1, converted + (index % 3 == 0))
    assert counters(app, ids["experiment_id"]) == expected
    assert len(expected) == 3 and "control" in expected  # every arm was served
    with app.app_context():
        stored = dict(db.session.execute(
            select(ExperimentExposure.identity_id, ExperimentExposure.variant)
        ).all())  # fmt: skip
        assert sorted(stored.values()) == sorted(seen.values())
    page = _page(app, ids)
    for variant, (exposed, converted) in expected.items():
        row = re.search(rf'data-variant="{variant}">(.*?)</tr>', page, re.S).group(1)
        assert re.search(rf'class="num exposures">{exposed}<', row)
        assert re.search(rf'class="num conversions">{converted}<', row)
        assert f"{converted / exposed * 100:.1f}%" in row
    assert "Not enough data yet" in page  # 90 identities over three arms: under 100 each


def test_official_sdk__segment_experiment__only_members_send_exposures(live_segment):
    app, api_url, ids = live_segment
    client = sdk(api_url, ids["client_key"])
    try:
        member = client.get_experiment_flag("checkout", "pro-1", traits={"plan": "pro"})
        outsider = client.get_experiment_flag("checkout", "free-1", traits={"plan": "free"})
        assert member.experiment.in_experiment is True and member.variant is not None
        assert outsider.experiment.in_experiment is False
        client.track_event("purchase", identifier="pro-1")
        client.track_event("purchase", identifier="free-1")
        written(app, ids["experiment_id"], 1, 1)
    finally:
        client._event_processor.stop()
    assert counters(app, ids["experiment_id"]) == {member.variant: (1, 1)}


def test_official_sdk__identity_override__is_not_in_the_experiment(live):
    app, api_url, ids = live
    with app.app_context():
        environment = db.session.get_one(Environment, ids["environment_id"])
        feature = db.session.scalar(select(Feature).where(Feature.name == "checkout"))
        features_make_identity_override(make_identity(environment, "qa"), feature, value="pink")
        revisions.bump_environment(environment.id)
        db.session.commit()
    client = sdk(api_url, ids["client_key"])
    try:
        flag = client.get_experiment_flag("checkout", "qa")
    finally:
        client._event_processor.stop()
    assert flag.value == "pink"
    assert flag.experiment is not None and flag.experiment.in_experiment is False
    assert flag.variant is None


def test_official_sdk__local_evaluation__sends_no_exposure_remote_does(live):
    """Flagsmith 6.x builds a locally evaluated flag without its experiment
    (``Flag.from_evaluation_result`` sets no ``experiment``), so with local evaluation
    ``get_experiment_flag()`` sends no exposure, against Flagsmith as against Flagpost; remote
    evaluation does. If a later SDK reads experiments from the environment document, this
    fails: Flagpost must then put its running experiments into the document."""
    app, api_url, ids = live
    identifiers = [f"shopper-{index}" for index in range(20)]
    # Flagpost knows all 20 identities (exposures of unknown ones are dropped); only
    # shopper-0 got its flag through get_experiment_flag().
    plain = Flagsmith(environment_key=ids["client_key"], api_url=api_url)
    for identifier in identifiers[1:]:
        plain.get_identity_flags(identifier)
    remote = sdk(api_url, ids["client_key"])
    try:
        exposed = remote.get_experiment_flag("checkout", "shopper-0")
    finally:
        remote._event_processor.stop()
    written(app, ids["experiment_id"], 1, 0)
    # One flush at stop(): the local client's events, goal included, travel in one batch.
    local = Flagsmith(
        environment_key=ids["server_key"],
        api_url=api_url,
        enable_local_evaluation=True,
        environment_refresh_interval_seconds=3600,
        enable_events=True,
        event_processor_config=EventProcessorConfig(
            events_api_url=api_url, flush_interval_seconds=3600
        ),
    )
    try:
        flags = {
            identifier: local.get_experiment_flag("checkout", identifier)
            for identifier in identifiers
        }
        # The goal proves the local client's events reach Flagpost (shopper-0 is exposed).
        local.track_event("purchase", identifier="shopper-0")
    finally:
        local._event_processor.stop()
        local.environment_data_polling_manager_thread.stop()
    # The document splits like the API (same value and variant) but carries no experiment.
    assert (flags["shopper-0"].value, flags["shopper-0"].variant) == (
        exposed.value, exposed.variant,
    )  # fmt: skip
    assert exposed.experiment is not None and exposed.experiment.in_experiment is True
    assert all(flag.enabled and flag.variant is not None for flag in flags.values())
    assert [flag.experiment for flag in flags.values()] == [None] * 20

    def goal_arrived():
        with app.app_context():
            app_buffer().flush()
        return sum(c for _, c in counters(app, ids["experiment_id"]).values()) == 1

    eventually(goal_arrived, seconds=15, message="the local client's goal event never arrived")
    assert counters(app, ids["experiment_id"]) == {exposed.variant: (1, 1)}
    with app.app_context():
        assert db.session.scalars(select(ExperimentExposure.identity_id)).all() == [
            db.session.scalar(select(Identity.id).where(Identity.identifier == "shopper-0"))
        ]


def _page(app, ids):
    web = app.test_client()
    response = web.post("/login", data={"email": "editor@example.com", "password": "password123"})
    assert response.status_code == 302
    response = web.get(f"/environments/{ids['environment_id']}/experiments/{ids['experiment_id']}")
    assert response.status_code == 200
    return response.get_data(as_text=True)
