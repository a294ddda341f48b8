"""Usage with the official Flagsmith SDK, unchanged, against a live server: variants in remote
and local evaluation, and SDK analytics (``enable_analytics=True``) reaching the pages."""

from __future__ import annotations

import random
from contextlib import ExitStack, contextmanager

import pytest
from flagsmith import Flagsmith
from sqlalchemy import func, select

from tests.conftest import dispose_engines, eventually, served_app
from tests.factories import make_user
from tests.live import serve, started_once
from webapp.extensions import db
from webapp.models import (
    Environment,
    Feature,
    FlagSeen,
    FlagUsage,
    FlagValuesDaily,
    Identity,
    ServerKey,
)
from webapp.services import demo, usage

GENERATED_IDENTITIES = 200

# Database behaviour (the SDK paths and the usage tables, over HTTP): on both databases.
pytestmark = [pytest.mark.databases("sqlite", "postgres"), pytest.mark.xdist_group("usage_live")]


@contextmanager
def _serve_demo(database, request, tmp_path_factory):
    path = tmp_path_factory.mktemp("usage-live") / "live.sqlite"
    app = served_app(database, request, path, SDK_CACHE_TTL=0)
    with app.app_context():
        demo.seed_demo()
        environment = db.session.scalar(select(Environment).where(Environment.name == "Production"))
        server_key = db.session.scalar(
            select(ServerKey.key).where(ServerKey.environment_id == environment.id)
        )
        make_user("usage-viewer@example.com", "viewer", environment.project)
        db.session.commit()
        keys = (environment.client_key, server_key, environment.id)
        db.session.remove()
    try:
        with serve(app) as url:
            yield app, f"{url}/api/v1/", keys
    finally:
        dispose_engines(app)


@pytest.fixture(scope="module")
def live_servers(request, tmp_path_factory):
    with ExitStack() as stack:
        yield started_once(stack, lambda database: _serve_demo(database, request, tmp_path_factory))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(request, live_servers):
    return live_servers(request.param)


def _identities(count):
    rng = random.Random(20261205)
    return [
        (f"variant-{index}-{rng.choice(demo.FIRST)}", {"age": rng.randint(18, 80)})
        for index in range(count)
    ]


def test_flag_variant__remote_and_local__agree_for_generated_identities(live):
    app, api_url, (client_key, server_key, _) = live
    remote = Flagsmith(environment_key=client_key, api_url=api_url)
    local = Flagsmith(
        environment_key=server_key,
        api_url=api_url,
        enable_local_evaluation=True,
        environment_refresh_interval_seconds=3600,
    )
    try:
        mismatches, variants = [], []
        for identifier, traits in _identities(GENERATED_IDENTITIES):
            r = remote.get_identity_flags(identifier, traits).get_flag("checkout_button_color")
            loc = local.get_identity_flags(identifier, traits).get_flag("checkout_button_color")
            variants.append(r.variant)
            if (r.variant, r.value) != (loc.variant, loc.value):
                mismatches.append((identifier, (r.variant, r.value), (loc.variant, loc.value)))
        assert mismatches == []
        # Every option's key and "control" (the feature's own value) were served.
        assert "control" in variants
        assert len(set(variants)) == 3
        assert all(isinstance(v, str) and v for v in variants)
        # A standard feature has no variant, in both.
        flags = remote.get_identity_flags("variant-standard", {})
        assert flags.get_flag("dark_mode").variant is None
    finally:
        local.environment_data_polling_manager_thread.stop()


def _total(app, environment_id, name):
    with app.app_context():
        usage.flush()
        total = db.session.scalar(
            select(func.coalesce(func.sum(FlagUsage.count), 0))
            .join(Feature, Feature.id == FlagUsage.feature_id)
            .where(FlagUsage.environment_id == environment_id, Feature.name == name)
        )
        db.session.remove()
        return int(total)


def test_sdk_analytics__counts_arrive_and_show_on_the_features_page(live):
    app, api_url, (client_key, _, environment_id) = live
    before = _total(app, environment_id, "new_dashboard")
    client = Flagsmith(environment_key=client_key, api_url=api_url, enable_analytics=True)
    flags = client.get_environment_flags()  # remote: one evaluation of every flag
    for _ in range(7):
        flags.is_feature_enabled("new_dashboard")
    client._analytics_processor.flush()  # what the SDK does every 10 s, now
    # The SDK posts in the background: wait for its 7 plus the remote evaluation.
    eventually(lambda: _total(app, environment_id, "new_dashboard") == before + 8)
    page = app.test_client()
    page.post("/login", data={"email": "usage-viewer@example.com", "password": "password123"})
    html = page.get(f"/environments/{environment_id}/features").get_data(as_text=True)
    with app.app_context():
        feature_id = db.session.scalar(select(Feature.id).where(Feature.name == "new_dashboard"))
        db.session.remove()
    cell = html.split(f'id="usage-{feature_id}"', 1)[1].split("</td>", 1)[0]
    assert f'<span class="usage-total">{before + 8:,}</span>' in cell


def test_remote_identify__records_what_the_identity_saw(live):
    app, api_url, (client_key, _, environment_id) = live
    client = Flagsmith(environment_key=client_key, api_url=api_url)
    flag = client.get_identity_flags("seen-check", {"age": 30}).get_flag("checkout_button_color")
    with app.app_context():
        usage.flush()
        rows = db.session.execute(
            select(FlagSeen.variant, FlagSeen.value_type, FlagSeen.value_text)
            .join(Identity, Identity.id == FlagSeen.identity_id)
            .join(Feature, Feature.id == FlagSeen.feature_id)
            .where(Identity.identifier == "seen-check", Feature.name == "checkout_button_color")
        ).all()
        # The day's served states (the stale "constant" filter's rollup) hold it too.
        states = db.session.execute(
            select(FlagValuesDaily.value_type, FlagValuesDaily.value_text)
            .join(Feature, Feature.id == FlagValuesDaily.feature_id)
            .where(
                FlagValuesDaily.environment_id == environment_id,
                Feature.name == "checkout_button_color",
            )
        ).all()
        db.session.remove()
    assert rows == [(flag.variant, "string", flag.value)]
    assert ("string", flag.value) in states
