"""The stream server's rules: keys, caps, heartbeats, reconnects, page tokens, no leaks.

These do not depend on the database (the SDK stream test runs on both); Redis fan-out is
tested here too, since it is the same on both databases.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import ExitStack

import pytest
import requests

from tests.api.conftest import build_sdk_environment
from tests.conftest import eventually
from tests.factories import make_user
from tests.realtime.conftest import next_event
from webapp.extensions import db
from webapp.models import Feature
from webapp.realtime import tokens
from webapp.services.features import catalog

pytestmark = pytest.mark.databases("sqlite")

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FAST = {"STREAM_HEARTBEAT_SECONDS": 0.2, "STREAM_MAX_PER_KEY": 3, "STREAM_MAX_TOTAL": 5}


@pytest.fixture
def live_config():
    return dict(FAST)


def _stream(world, key, **headers):
    return requests.get(
        f"{world.streams.url}sse/environments/{key}/stream",
        stream=True,
        timeout=5,
        headers=headers,
    )


def _world():
    env = build_sdk_environment()
    admin = make_user("admin@example.com", "admin", env.environment.project)
    db.session.commit()
    return env, admin


def _flip(env, admin, enabled=False):
    feature = db.session.query(Feature).filter_by(name="dark_mode").one()
    catalog.set_enabled(env.environment, feature.id, enabled, admin)


@pytest.mark.parametrize(
    "key",
    ["unknown-key", "ser.unknown", "x" * 256, "revoked"],
    ids=["unknown-client", "unknown-server", "too-long", "revoked-server"],
)
def test_sdk_stream__bad_key__is_refused_like_the_sdk_api(live_world, key):
    env, _admin = _world()
    key = env.revoked_key if key == "revoked" else key
    response = _stream(live_world, key)
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid or missing Environment Key"}
    assert live_world.streams.health()["connections"] == 0


@pytest.mark.parametrize("which", ["client_key", "server_key"])
def test_sdk_stream__client_or_active_server_key__streams_the_current_updated_at(live_world, which):
    env, _admin = _world()
    with _stream(live_world, getattr(env, which)) as response:
        assert response.status_code == 200
        assert response.headers["cache-control"].startswith("no-cache")
        event = next_event(response.iter_lines(decode_unicode=True))
    data = json.loads(event["data"])
    assert event["event"] == "environment_updated"
    assert type(data["updated_at"]) is float
    assert int(event["id"]) == env.environment.revision


def test_sdk_stream__quiet__sends_heartbeat_comments(live_world):
    env, _admin = _world()
    with _stream(live_world, env.client_key) as response:
        lines = response.iter_lines(decode_unicode=True)
        next_event(lines)
        assert eventually(lambda: next(lines) == ": heartbeat", 3)


def test_sdk_stream__reconnect_with_current_last_event_id__sends_only_new_changes(live_world):
    # Given an SDK that already saw the current revision
    env, admin = _world()
    current = str(env.environment.revision)
    with _stream(live_world, env.client_key, **{"Last-Event-ID": current}) as response:
        lines = response.iter_lines(decode_unicode=True)
        eventually(lambda: live_world.streams.health()["connections"] == 1, 5)
        # When the environment changes
        _flip(env, admin)
        event = next_event(lines)
    # Then the first event it receives is that change (the old revision is not repeated)
    assert int(event["id"]) == int(current) + 1


def test_sdk_stream__reconnect_with_old_last_event_id__gets_the_fresh_updated_at(live_world):
    env, admin = _world()
    _flip(env, admin)
    with _stream(live_world, env.client_key, **{"Last-Event-ID": "1"}) as response:
        event = next_event(response.iter_lines(decode_unicode=True))
    assert int(event["id"]) == env.environment.revision


def test_sdk_stream__over_the_cap_per_key__is_refused_with_429(live_world):
    env, _admin = _world()
    with ExitStack() as stack:
        for _ in range(FAST["STREAM_MAX_PER_KEY"]):
            assert stack.enter_context(_stream(live_world, env.client_key)).status_code == 200
        refused = _stream(live_world, env.client_key)
        assert refused.status_code == 429
        assert "maximum of 3 streams" in refused.json()["detail"]
        assert refused.headers["retry-after"] == "5"
        # another key still gets in
        assert stack.enter_context(_stream(live_world, env.server_key)).status_code == 200


def test_sdk_stream__over_the_total_cap__is_refused_with_503(live_world):
    env, _admin = _world()
    with ExitStack() as stack:
        for key in [env.client_key] * 3 + [env.server_key] * 2:
            assert stack.enter_context(_stream(live_world, key)).status_code == 200
        refused = _stream(live_world, env.server_key)
        assert refused.status_code == 503
        assert "maximum of 5 streams" in refused.json()["detail"]


def test_sdk_stream__clients_that_vanish__leave_no_connection_or_task(live_world):
    # Given streams that are open and counted
    env, _admin = _world()
    responses = [_stream(live_world, key) for key in [env.client_key] * 3 + [env.server_key] * 2]
    eventually(lambda: live_world.streams.health()["connections"] == 5, 5)
    assert live_world.streams.health()["tasks"] == 10
    # When the clients drop their sockets without a goodbye
    for response in responses:
        response.raw._fp.fp.raw._sock.close()
        response.close()
    # Then the server counts every stream and its tasks back to zero
    eventually(
        lambda: (
            live_world.streams.health() | {"source_connected": True}
            == {"connections": 0, "tasks": 0, "environments": 0, "source_connected": True}
        ),
        5,
        "streams or tasks leaked",
    )
    # and accepts as many new streams as before
    with _stream(live_world, env.client_key) as response:
        assert response.status_code == 200


@pytest.mark.parametrize(
    "live_config",
    # The channel is this run's own: other engineers' runs share the Redis server.
    [FAST | {"REDIS_URL": REDIS_URL, "STREAM_CHANNEL": f"flagpost_test_{uuid.uuid4().hex}"}],
)
def test_sdk_stream__redis_fan_out__delivers_a_committed_change(live_world, live_config):
    assert type(live_world.streams.app.state.server.source).__name__ == "RedisSource"
    env, admin = _world()
    with _stream(live_world, env.client_key) as response:
        lines = response.iter_lines(decode_unicode=True)
        first = next_event(lines)
        _flip(env, admin)
        second = next_event(lines)
    assert int(second["id"]) == int(first["id"]) + 1


def _page_stream(world, environment_id, token):
    return requests.get(
        f"{world.streams.url}sse/pages/environments/{environment_id}/stream",
        params={"token": token},
        stream=True,
        timeout=5,
    )


def test_page_stream__valid_token__announces_who_changed_what(live_world):
    env, admin = _world()
    viewer = make_user("viewer@example.com", "viewer", env.environment.project)
    db.session.commit()
    secret = live_world.app.config["SECRET_KEY"]
    token = tokens.sign(secret, viewer.id, env.environment.id, env.environment.revision)
    with _page_stream(live_world, env.environment.id, token) as response:
        assert response.status_code == 200
        lines = response.iter_lines(decode_unicode=True)
        eventually(lambda: live_world.streams.health()["connections"] == 1, 5)
        _flip(env, admin)
        event = next_event(lines)
    data = json.loads(event["data"])
    assert event["event"] == "environment-changed"
    assert (data["by"], data["by_id"], data["object"]) == ("admin@example.com", admin.id,
                                                          "dark_mode")  # fmt: skip


@pytest.mark.parametrize("case", ["forged", "other-environment", "no-role", "disabled"])
def test_page_stream__token_without_a_current_right__is_refused(live_world, case):
    env, _admin = _world()
    user = make_user("viewer@example.com", None if case == "no-role" else "viewer",
                     env.environment.project)  # fmt: skip
    if case == "disabled":
        user.active = False
    db.session.commit()
    secret = "not-the-secret" if case == "forged" else live_world.app.config["SECRET_KEY"]
    token = tokens.sign(secret, user.id, env.environment.id, 1)
    target = env.environment.id + (1 if case == "other-environment" else 0)
    response = _page_stream(live_world, target, token)
    assert response.status_code == 403
    assert response.json()["detail"]
    assert live_world.streams.health()["connections"] == 0


def test_page_token__expired__is_refused():
    token = tokens.sign("secret", 1, 2, 3)
    assert tokens.verify("secret", token, max_age=3600) == tokens.PageGrant(1, 2, 3)
    assert tokens.verify("secret", token, max_age=-1) is None
    assert tokens.verify("secret", token + "x", max_age=3600) is None


def test_sdk_stream__server_key_revoked_while_streaming__ends_at_the_next_change(live_world):
    # Given a stream opened with an active server key
    env, admin = _world()
    with _stream(live_world, env.server_key) as response:
        lines = response.iter_lines(decode_unicode=True)
        next_event(lines)
        # When the key is revoked, then the environment changes
        from webapp.clock import utcnow
        from webapp.models import ServerKey

        key = db.session.query(ServerKey).filter_by(key=env.server_key).one()
        key.revoked_at = utcnow()
        db.session.commit()
        # (once the stream server's two-second key cache has let the old answer go)
        store = live_world.streams.app.state.server.store
        eventually(lambda: store.cached_environment_for_key(env.server_key) is False, 5)
        _flip(env, admin)
        # Then the stream ends without sending the change
        with pytest.raises(AssertionError, match="the stream ended"):
            next_event(lines)
    eventually(lambda: live_world.streams.health()["connections"] == 0, 5)


def test_page_stream__user_losing_their_role__stream_ends_at_the_next_change(live_world):
    env, admin = _world()
    viewer = make_user("viewer@example.com", "viewer", env.environment.project)
    db.session.commit()
    token = tokens.sign(live_world.app.config["SECRET_KEY"], viewer.id, env.environment.id,
                        env.environment.revision)  # fmt: skip
    with _page_stream(live_world, env.environment.id, token) as response:
        lines = response.iter_lines(decode_unicode=True)
        eventually(lambda: live_world.streams.health()["connections"] == 1, 5)
        viewer.roles.clear()
        db.session.commit()
        _flip(env, admin)
        with pytest.raises(AssertionError, match="the stream ended"):
            next_event(lines)


def test_sdk_stream__environment_deleted__stream_ends(live_world):
    env, _admin = _world()
    with _stream(live_world, env.client_key) as response:
        lines = response.iter_lines(decode_unicode=True)
        next_event(lines)
        db.session.delete(env.environment)
        db.session.commit()
        with pytest.raises(AssertionError, match="the stream ended"):
            next_event(lines)
    eventually(lambda: live_world.streams.health()["connections"] == 0, 5)
