"""The official Flagsmith SDK, unchanged, kept current by the stream alone.

Local evaluation with ``enable_realtime_updates=True``; the polling interval is an hour, so
only a stream event can explain the SDK seeing a change. Each change is made through the
services the dashboard's routes call, and must be visible within a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import requests
from flagsmith import Flagsmith
from sqlalchemy import text

from tests.api.conftest import build_sdk_environment
from tests.conftest import connection_name, dispose_engines, eventually
from tests.factories import make_user
from tests.realtime.conftest import free_port, make_live_app, next_event
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import Feature, Identity, Segment
from webapp.services import documents
from webapp.services.features import catalog
from webapp.services.identities import identity_overrides
from webapp.services.segments import definitions

# Database behaviour: publishing (NOTIFY on PostgreSQL, polling on SQLite) and the SDK read
# path differ per database.
pytestmark = pytest.mark.databases("sqlite", "postgres")

WITHIN_SECONDS = 1.0


@contextmanager
def realtime_sdk(world, key: str) -> Iterator[Flagsmith]:
    sdk = Flagsmith(
        environment_key=key,
        api_url=world.api_url,
        enable_local_evaluation=True,
        enable_realtime_updates=True,
        realtime_api_url=world.streams.url,
        environment_refresh_interval_seconds=3600,
    )
    try:
        # The stream is open once the server counts it (changes before that are not the test).
        eventually(lambda: world.streams.health()["connections"] == 1, 5, "SDK never connected")
        yield sdk
    finally:
        sdk.__del__()  # stops the stream thread (the SDK's own clean-up)


def within_a_second(check: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    eventually(check, WITHIN_SECONDS, f"{what} not visible to the SDK within {WITHIN_SECONDS} s")
    return time.monotonic() - started


def _world(world):
    env = build_sdk_environment()
    admin = make_user("admin@example.com", "admin", env.environment.project)
    db.session.commit()
    return env, admin


def test_sdk_stream__flag_default_change__reaches_local_evaluation_within_a_second(live_world):
    # Given an SDK in local evaluation, streaming
    env, admin = _world(live_world)
    dark_mode = db.session.query(Feature).filter_by(name="dark_mode").one()
    with realtime_sdk(live_world, env.server_key) as sdk:
        flags = sdk.get_identity_flags("someone")
        assert flags.is_feature_enabled("dark_mode") is True
        # When an editor turns the flag off in the dashboard
        catalog.set_enabled(env.environment, dark_mode.id, False, admin)
        # Then the SDK evaluates it off within a second
        within_a_second(
            lambda: sdk.get_identity_flags("someone").is_feature_enabled("dark_mode") is False,
            "a flag's default",
        )


def test_sdk_stream__segment_rule_change__reaches_local_evaluation_within_a_second(live_world):
    env, admin = _world(live_world)
    segment = db.session.query(Segment).filter_by(name="Pro users").one()
    with realtime_sdk(live_world, env.server_key) as sdk:
        before = sdk.get_identity_flags("bob", traits={"plan": "team"}).get_feature_value(
            "max_upload_mb"
        )
        assert (type(before), before) == (int, 25)
        definitions.update_segment(
            segment,
            admin,
            name=segment.name,
            description=segment.description,
            rules=[
                {
                    "type": "ALL",
                    "conditions": [],
                    "rules": [
                        {
                            "type": "ANY",
                            "rules": [],
                            "conditions": [
                                {"property_": "plan", "operator": "EQUAL", "value": "team"}
                            ],
                        }
                    ],
                }
            ],  # fmt: skip
            version=segment.version,
        )
        within_a_second(
            lambda: (
                sdk.get_identity_flags("bob", traits={"plan": "team"}).get_feature_value(
                    "max_upload_mb"
                )
                == 250
            ),
            "a segment rule",
        )


def test_sdk_stream__identity_override__reaches_local_evaluation_within_a_second(live_world):
    env, admin = _world(live_world)
    vip = db.session.query(Identity).filter_by(identifier="vip-user").one()
    dark_mode = db.session.query(Feature).filter_by(name="dark_mode").one()
    with realtime_sdk(live_world, env.server_key) as sdk:
        assert sdk.get_identity_flags("vip-user").is_feature_enabled("dark_mode") is True
        identity_overrides.toggle_override(admin, vip, dark_mode, utcnow(), None)
        within_a_second(
            lambda: sdk.get_identity_flags("vip-user").is_feature_enabled("dark_mode") is False,
            "an identity override",
        )


def test_sdk_stream__events__carry_the_documents_updated_at(live_world):
    # Given the stream and the document of one environment
    env, admin = _world(live_world)
    dark_mode = db.session.query(Feature).filter_by(name="dark_mode").one()
    with requests.get(
        f"{live_world.streams.url}sse/environments/{env.client_key}/stream", stream=True, timeout=5
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines(decode_unicode=True)
        first = next_event(lines)
        # When the flag changes
        catalog.set_enabled(env.environment, dark_mode.id, False, admin)
        second = next_event(lines)
    document = requests.get(
        f"{live_world.api_url}environment-document/",
        headers={"X-Environment-Key": env.server_key},
        timeout=5,
    ).json()
    # Then each event's updated_at is the document's, to the microsecond, and ids grow
    assert second["event"] == "environment_updated"
    assert int(second["id"]) == int(first["id"]) + 1
    updated = datetime.fromisoformat(document["updated_at"])
    assert datetime.fromtimestamp(json.loads(second["data"])["updated_at"], tz=UTC) == updated
    assert json.loads(first["data"])["updated_at"] < json.loads(second["data"])["updated_at"]


@contextmanager
def _process(arguments: list[str], environment: dict[str, str], ready_url: str):
    """Run ``flask …`` in its own process until the block ends; wait until it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", *arguments],
        env={**os.environ, **environment, "FLASK_APP": "wsgi.py"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def answers() -> bool:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                return requests.get(ready_url, timeout=1).status_code < 500
            except requests.ConnectionError:
                return False

        eventually(answers, 30, f"flask {arguments[0]} did not start")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.databases("postgres")
def test_sdk_stream__change_in_another_process__reaches_a_client_of_the_stream_process(
    database, request, tmp_path
):
    # Given three processes on one PostgreSQL: an app server serving the SDK API, the stream
    # server, and this test's app, which makes the dashboard change
    app = make_live_app(database, request, tmp_path)
    try:
        with app.app_context():
            env = build_sdk_environment()
            admin = make_user("admin@example.com", "admin", env.environment.project)
            db.session.commit()
            variables = {
                "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
                "SECRET_KEY": app.config["SECRET_KEY"],
            }
            api_port, stream_port = free_port(), free_port()
            api = f"http://127.0.0.1:{api_port}/"
            streams = f"http://127.0.0.1:{stream_port}/"
            with (
                _process(["run", "--port", str(api_port)], variables, f"{api}login"),
                _process(
                    ["run-streams", "--port", str(stream_port)], variables, f"{streams}sse/health"
                ),  # fmt: skip
            ):
                sdk = Flagsmith(
                    environment_key=env.server_key,
                    api_url=f"{api}api/v1/",
                    enable_local_evaluation=True,
                    enable_realtime_updates=True,
                    realtime_api_url=streams,
                    environment_refresh_interval_seconds=3600,
                )
                try:
                    eventually(
                        lambda: (
                            requests.get(f"{streams}sse/health", timeout=2).json()
                            == {
                                "connections": 1,
                                "tasks": 2,
                                "environments": 1,
                                "source_connected": True,
                            }
                        ),  # fmt: skip
                        10,
                    )
                    assert sdk.get_identity_flags("x").is_feature_enabled("dark_mode") is True
                    # When this process turns the flag off
                    dark_mode = db.session.query(Feature).filter_by(name="dark_mode").one()
                    catalog.set_enabled(env.environment, dark_mode.id, False, admin)
                    # Then the SDK, fed by the other processes, sees it within a second
                    within_a_second(
                        lambda: (
                            sdk.get_identity_flags("x").is_feature_enabled("dark_mode") is False
                        ),
                        "a change made in another process",
                    )
                finally:
                    sdk.__del__()
            db.session.remove()
    finally:
        dispose_engines(app)


def test_sdk_stream__identity_override_running_out__reaches_local_evaluation(live_world):
    # Given an identity override that expires in two seconds, seen by the SDK
    env, admin = _world(live_world)
    vip = db.session.query(Identity).filter_by(identifier="vip-user").one()
    dark_mode = db.session.query(Feature).filter_by(name="dark_mode").one()
    expires = utcnow() + timedelta(seconds=2)
    with realtime_sdk(live_world, env.server_key) as sdk:
        identity_overrides.toggle_override(admin, vip, dark_mode, utcnow(), expires)
        within_a_second(
            lambda: sdk.get_identity_flags("vip-user").is_feature_enabled("dark_mode") is False,
            "a new expiring override",
        )
        # When it runs out (nobody changes anything)
        eventually(lambda: utcnow() >= expires, 5)
        # Then the SDK evaluates without it within a second
        within_a_second(
            lambda: sdk.get_identity_flags("vip-user").is_feature_enabled("dark_mode") is True,
            "an override running out",
        )


def test_sdk_stream__reimported_document__reaches_local_evaluation_within_a_second(live_world):
    # Given an SDK streaming, and the environment's own document with dark_mode turned off
    env, _admin = _world(live_world)
    document = documents.export_environment(env.client_key)
    for state in document["feature_states"]:
        if state["feature"]["name"] == "dark_mode":
            state["enabled"] = False
    with realtime_sdk(live_world, env.server_key) as sdk:
        assert sdk.get_identity_flags("someone").is_feature_enabled("dark_mode") is True
        # When the document is imported over the environment
        documents.import_environment_document(document, organisation_name="Acme")
        # Then the SDK evaluates the imported state within a second
        within_a_second(
            lambda: sdk.get_identity_flags("someone").is_feature_enabled("dark_mode") is False,
            "an import",
        )


@pytest.mark.databases("postgres")
def test_sdk_stream__listen_connection_lost__reconnects_and_still_delivers(live_world, request):
    # Given an SDK streaming while the stream server LISTENs
    env, admin = _world(live_world)
    admin_db = request.getfixturevalue("postgres_schema").admin
    with realtime_sdk(live_world, env.server_key) as sdk:
        assert sdk.get_identity_flags("someone").is_feature_enabled("dark_mode") is True
        # When PostgreSQL drops the LISTEN connection
        with admin_db.connect() as connection:
            ended = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND query ILIKE 'LISTEN%'"
                ),
                {"name": connection_name()},
            ).all()
        assert ended == [(True,)]
        eventually(lambda: live_world.streams.health()["source_connected"] is False, 5)
        eventually(lambda: live_world.streams.health()["source_connected"] is True, 10)
        # Then a change made after it reconnects still reaches the SDK within a second
        dark_mode = db.session.query(Feature).filter_by(name="dark_mode").one()
        catalog.set_enabled(env.environment, dark_mode.id, False, admin)
        within_a_second(
            lambda: sdk.get_identity_flags("someone").is_feature_enabled("dark_mode") is False,
            "a change after the LISTEN connection came back",
        )
