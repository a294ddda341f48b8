"""The official Flagsmith SDK and the OpenFeature provider, unchanged, against a live server."""

from __future__ import annotations

import random
from contextlib import ExitStack, contextmanager

import pytest
from flagsmith import Flagsmith
from openfeature import api as openfeature_api
from openfeature.evaluation_context import EvaluationContext
from openfeature_flagsmith.provider import FlagsmithProvider
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from tests.conftest import dispose_engines, served_app
from tests.factories import FAST_HASH
from tests.live import serve, started_once
from webapp.extensions import db
from webapp.models import Environment, Identity, ServerKey
from webapp.services import demo

GENERATED_IDENTITIES = 300


# Database behaviour (the SDK read path, over HTTP): on SQLite and on PostgreSQL, one live
# server each for the whole module (kept on one xdist worker by its group).
pytestmark = pytest.mark.xdist_group("real_clients")


@contextmanager
def _serve_demo(database, request, tmp_path_factory):
    """The demo data served over HTTP, on SQLite (temp file) or PostgreSQL."""
    path = tmp_path_factory.mktemp("live") / "live.sqlite"
    app = served_app(database, request, path, SDK_CACHE_TTL=0)
    with app.app_context(), pytest.MonkeyPatch.context() as patch:
        # Nobody logs in here: the demo users get the factories' quick password hash
        # instead of scrypt (about 0.3 s each on CI's loaded cores).
        patch.setattr(
            demo,
            "generate_password_hash",
            lambda password: generate_password_hash(password, method=FAST_HASH),
        )
        demo.seed_demo()
        environment = db.session.scalar(select(Environment).where(Environment.name == "Production"))
        keys = (
            environment.client_key,
            db.session.scalar(
                select(ServerKey.key).where(ServerKey.environment_id == environment.id)
            ),
        )
        db.session.remove()
    try:
        with serve(app) as url:
            yield app, f"{url}/api/v1/", keys
    finally:
        dispose_engines(app)


@pytest.fixture(scope="module")
def live_servers(request, tmp_path_factory):
    """One seeded live server per database for the whole module, started on first use
    (whatever order the tests of the two databases run in, each is seeded once)."""
    with ExitStack() as stack:
        yield started_once(stack, lambda database: _serve_demo(database, request, tmp_path_factory))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(request, live_servers):
    return live_servers(request.param)


def _flags(flags_object):
    return {flag.feature_name: (flag.enabled, flag.value) for flag in flags_object.all_flags()}


def _generated_identities(count):
    rng = random.Random(20261122)
    people = [
        (f"gen-{index}-{rng.choice(demo.FIRST)}", demo._identity_traits(rng, index))
        for index in range(count)
    ]
    # The demo's identity overrides sit on the first identities; include them.
    people += [(f"user-{index:05d}", demo._identity_traits(rng, index)) for index in range(5)]
    return people


def test_remote_and_local_evaluation__agree_for_generated_identities(live):
    app, api_url, (client_key, server_key) = live
    remote = Flagsmith(environment_key=client_key, api_url=api_url)
    local = Flagsmith(
        environment_key=server_key,
        api_url=api_url,
        enable_local_evaluation=True,
        environment_refresh_interval_seconds=3600,
    )
    try:
        mismatches = []
        variety = set()
        for identifier, traits in _generated_identities(GENERATED_IDENTITIES):
            remote_flags = _flags(remote.get_identity_flags(identifier, traits))
            local_flags = _flags(local.get_identity_flags(identifier, traits))
            variety.add(remote_flags["checkout_button_color"])
            if remote_flags != local_flags:
                mismatches.append(
                    (
                        identifier,
                        {
                            name: (remote_flags.get(name), local_flags.get(name))
                            for name in remote_flags.keys() | local_flags.keys()
                            if remote_flags.get(name) != local_flags.get(name)
                        },
                    )
                )
        assert mismatches == []
        assert len(variety) == 3  # all multivariate options were served
    finally:
        local.environment_data_polling_manager_thread.stop()


def test_remote__identity_flags_with_traits__are_stored_and_segmented(live):
    app, api_url, (client_key, _) = live
    client = Flagsmith(environment_key=client_key, api_url=api_url)
    flags = client.get_identity_flags("remote-pro", traits={"plan": "pro", "age": 44})
    assert flags.get_feature_value("max_upload_mb") == 250
    assert flags.is_feature_enabled("billing_portal")
    with app.app_context():
        identity = db.session.scalar(select(Identity).where(Identity.identifier == "remote-pro"))
        assert {t.key: t.value for t in identity.traits} == {"plan": "pro", "age": 44}


def test_remote__transient_traits__are_used_but_not_stored(live):
    app, api_url, (client_key, _) = live
    client = Flagsmith(environment_key=client_key, api_url=api_url)
    flags = client.get_identity_flags(
        "remote-transient", traits={"plan": {"value": "pro", "transient": True}, "age": 30}
    )
    assert flags.get_feature_value("max_upload_mb") == 250
    with app.app_context():
        identity = db.session.scalar(
            select(Identity).where(Identity.identifier == "remote-transient")
        )
        assert {t.key: t.value for t in identity.traits} == {"age": 30}


def test_remote__environment_flags__are_the_defaults(live):
    _, api_url, (client_key, _) = live
    flags = Flagsmith(environment_key=client_key, api_url=api_url).get_environment_flags()
    assert flags.get_feature_value("max_upload_mb") == 25
    assert flags.get_feature_value("checkout_button_color") == "green"
    assert not flags.is_feature_enabled("new_dashboard")


def test_local__environment_flags__match_remote(live):
    _, api_url, (client_key, server_key) = live
    local = Flagsmith(
        environment_key=server_key,
        api_url=api_url,
        enable_local_evaluation=True,
        environment_refresh_interval_seconds=3600,
    )
    try:
        remote = Flagsmith(environment_key=client_key, api_url=api_url)
        assert _flags(local.get_environment_flags()) == _flags(remote.get_environment_flags())
    finally:
        local.environment_data_polling_manager_thread.stop()


def test_openfeature_provider__resolves_boolean_and_string_flags(live):
    _, api_url, (client_key, _) = live
    provider = FlagsmithProvider(client=Flagsmith(environment_key=client_key, api_url=api_url))
    openfeature_api.set_provider(provider)
    client = openfeature_api.get_client()
    staff = EvaluationContext(
        targeting_key="of-staff",
        attributes={"email": "ann@acme.com", "plan": "free", "signup_days": 400},
    )
    outsider = EvaluationContext(
        targeting_key="of-outsider",
        attributes={"email": "bob@gmail.com", "plan": "free", "signup_days": 400},
    )
    assert client.get_boolean_value("ai_assistant", False, staff) is True
    assert client.get_boolean_value("ai_assistant", True, outsider) is False
    new = EvaluationContext(targeting_key="of-new", attributes={"signup_days": 3})
    details = client.get_string_details("welcome_message", "fallback", new)
    assert details.value == "Welcome aboard! Here's a tour."
    assert client.get_string_value("welcome_message", "fallback", outsider) == "Welcome to Acme!"
