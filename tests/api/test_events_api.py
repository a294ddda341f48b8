"""The SDK events batch endpoint: the SDK's path, limits with clear 4xx JSON, nothing written
on the request, and hostile input refused or ignored without changing anything."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select

from tests.factories import experiments_make_world, make_identity
from tests.hardening.dbdump import dump
from webapp.extensions import db
from webapp.models.experiment import ExperimentArm, ExperimentExposure
from webapp.services.experiments.arms import option_key
from webapp.services.experiments.event_buffer import app_buffer
from webapp.services.experiments.events import EVENTS_BODY_MAX, MAX_EVENTS

# Pages and rules of the API (shape, limits, status codes); storage runs on both databases
# in tests/services/test_experiments.py and tests/api/test_experiments_sdk.py.
pytestmark = pytest.mark.databases("sqlite")

URL = "/api/v1/v1/events"


@pytest.fixture
def world(app):
    w = experiments_make_world()
    w["alice"] = make_identity(w["environment"], "alice")
    db.session.commit()
    w["headers"] = {"X-Environment-Key": w["environment"].client_key}
    return w


def event(name="$flag_exposure", identifier="alice", feature_name="checkout", value="control",
          **extra):  # fmt: skip
    return {"event": name, "feature_name": feature_name, "identifier": identifier,
            "value": value, "traits": None, "metadata": {"sdk_version": "6.3.0"},
            "timestamp": 1764900000000, **extra}  # fmt: skip


def post(client, world, payload, raw=None):
    body = raw if raw is not None else orjson.dumps(payload)
    return client.post(
        URL, data=body, headers={**world["headers"], "Content-Type": "application/json"}
    )


def test_events__valid_batch__is_accepted_and_written_only_on_flush(client, world):
    red = option_key(world["red"])
    response = post(client, world, {"events": [event(value=red), event("purchase")]})
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 2}
    assert db.session.scalar(select(func.count()).select_from(ExperimentExposure)) == 0
    assert app_buffer().pending == 2
    stored = app_buffer().flush()
    assert (stored.exposures, stored.conversions) == (1, 1)
    arm = db.session.get(ExperimentArm, (world["experiment"].id, red))
    assert (arm.exposures, arm.conversions) == (1, 1)


def test_events__empty_batch__is_accepted(client, world):
    response = post(client, world, {"events": []})
    assert (response.status_code, response.get_json()) == (202, {"accepted": 0})


@pytest.mark.parametrize("key", [None, "", "nope", "x" * 300])
def test_events__bad_key__403(client, world, key):
    headers = {} if key is None else {"X-Environment-Key": key}
    response = client.post(URL, json={"events": [event()]}, headers=headers)
    assert response.status_code == 403
    assert response.get_json() == {"detail": "Invalid or missing Environment Key"}


def test_events__server_key__is_accepted_too(client, world):
    from webapp.models import ServerKey

    key = ServerKey(environment_id=world["environment"].id, name="backend")
    db.session.add(key)
    db.session.commit()
    response = client.post(URL, json={"events": [event()]}, headers={"X-Environment-Key": key.key})
    assert response.status_code == 202


BAD_BATCHES = [
    ("not an object", [event()], "events"),
    ("no events", {"items": []}, "events"),
    ("events an object", {"events": {"0": event()}}, "events"),
    ("event a string", {"events": ["purchase"]}, "events[0]"),
    ("event name missing", {"events": [{"identifier": "alice"}]}, "events[0].event"),
    ("event name a number", {"events": [event(name=7)]}, "events[0].event"),
    ("event name empty", {"events": [event(name="")]}, "events[0].event"),
    ("event name too long", {"events": [event(name="e" * 201)]}, "events[0].event"),
    ("identifier a number", {"events": [event(identifier=42)]}, "events[0].identifier"),
    ("identifier too long", {"events": [event(identifier="i" * 2001)]}, "events[0].identifier"),
    ("identifier with NUL", {"events": [event(identifier="a\x00")]}, "events[0].identifier"),
    ("feature_name a list", {"events": [event(feature_name=["x"])]}, "events[0].feature_name"),
    ("exposure without feature", {"events": [event(feature_name=None)]}, "events[0]"),
    ("value an object", {"events": [event(value={"a": 1})]}, "events[0].value"),
    ("value too long", {"events": [event(value="v" * 201)]}, "events[0].value"),
    ("traits a list", {"events": [event(traits=["a"])]}, "events[0].traits"),
    ("metadata a string", {"events": [event(metadata="x")]}, "events[0].metadata"),
    ("experiment_id a string",
     {"events": [event(metadata={"experiment_id": "1"})]}, "events[0].metadata.experiment_id"),
    ("experiment_id a boolean",
     {"events": [event(metadata={"experiment_id": True})]}, "events[0].metadata.experiment_id"),
    ("timestamp a string", {"events": [event(timestamp="now")]}, "events[0].timestamp"),
    ("second event bad", {"events": [event(), event(name=None)]}, "events[1].event"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "payload", "field"), BAD_BATCHES, ids=[c[0] for c in BAD_BATCHES])
def test_events__wrong_kinds__400_naming_the_field_and_nothing_queued(
    client, world, case, payload, field
):
    response = post(client, world, payload)
    assert response.status_code == 400
    detail = response.get_json()["detail"]
    assert field in detail
    assert app_buffer().pending == 0


@pytest.mark.parametrize(
    "raw", [b"", b"{", b'{"events": [NaN]}', b"\xff\xfe", b'{"events": [' * 5000]
)
def test_events__malformed_json__400(client, world, raw):
    response = post(client, world, None, raw=raw)
    assert response.status_code == 400
    assert "detail" in response.get_json()


def test_events__too_many_events__400(client, world):
    response = post(client, world, {"events": [{"event": "e"}] * (MAX_EVENTS + 1)})
    assert response.status_code == 400
    assert f"at most {MAX_EVENTS:,} events" in response.get_json()["detail"]


def test_events__the_most_events_allowed__202(client, world):
    response = post(client, world, {"events": [{"event": "e"}] * MAX_EVENTS})
    assert response.status_code == 202


def test_events__body_over_the_limit__413_json(client, world):
    padding = "p" * 190
    many = [event(name="custom", value=padding)] * (EVENTS_BODY_MAX // 250 + 10)
    body = orjson.dumps({"events": many[:MAX_EVENTS]})
    assert len(body) > EVENTS_BODY_MAX
    response = post(client, world, None, raw=body)
    assert response.status_code == 413
    assert "detail" in response.get_json()


def test_events__a_full_default_sdk_batch__fits_though_other_endpoints_stop_at_64_kib(
    client, world
):
    # The SDK flushes at 1,000 buffered events; with traits they pass 64 KiB.
    batch = [event(name="purchase", traits={"plan": "pro" * 30}) for _ in range(1000)]
    body = orjson.dumps({"events": batch})
    assert 64 * 1024 < len(body) < EVENTS_BODY_MAX
    assert post(client, world, None, raw=body).status_code == 202
    identify = client.post(
        "/api/v1/identities/", data=body, headers=world["headers"], content_type="application/json"
    )
    assert identify.status_code == 413


def test_events__buffer_full__503_and_the_sdk_keeps_its_events(client, world, app):
    app_buffer().capacity = 1
    response = post(client, world, {"events": [event(), event()]})
    assert response.status_code == 503
    assert "send them later" in response.get_json()["detail"]


def test_events__unknown_identities_features_experiments__ignored_nothing_changes(client, world):
    before = dump()
    payload = {"events": [
        event(identifier="nobody"), event(feature_name="unknown"),
        event(value="no-such-variant"), event(metadata={"experiment_id": 2**62}),
        event("purchase", identifier="nobody"), event("other-goal"), event(identifier=None),
    ]}  # fmt: skip
    assert post(client, world, payload).status_code == 202
    stored = app_buffer().flush()
    assert (stored.exposures, stored.conversions) == (0, 0)
    assert dump() == before


def test_events__get__405_json(client, world):
    response = client.get(URL, headers=world["headers"])
    assert response.status_code == 405
    assert "detail" in response.get_json()


def test_openapi__describes_the_events_endpoint_and_experiment_metadata(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operation = spec["paths"][URL]["post"]
    assert set(operation["responses"]) == {"202", "400", "403", "413", "503"}
    batch = spec["components"]["schemas"]["EventBatch"]
    assert batch["properties"]["events"]["maxItems"] == MAX_EVENTS
    flag = spec["components"]["schemas"]["Flag"]["properties"]
    assert flag["metadata"]["properties"]["experiment"]["required"] == [
        "id", "name", "in_experiment"
    ]  # fmt: skip
