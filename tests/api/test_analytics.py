"""SDK analytics ingest and usage recording by remote evaluation (flags/ and identities/)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Feature, FlagSeen, FlagUsage, Identity
from webapp.services import usage

pytestmark = pytest.mark.databases("sqlite", "postgres")

URL = "/api/v1/analytics/flags/"


def _counts(environment_id):
    usage.flush()
    db.session.expire_all()
    rows = db.session.execute(
        select(Feature.name, FlagUsage.count)
        .join(Feature, Feature.id == FlagUsage.feature_id)
        .where(FlagUsage.environment_id == environment_id)
    ).all()
    totals: dict[str, int] = {}
    for name, count in rows:
        totals[name] = totals.get(name, 0) + count
    return totals


def _seen(identifier):
    usage.flush()
    rows = db.session.execute(
        select(Feature.name, FlagSeen.variant, FlagSeen.enabled, FlagSeen.value_type,
               FlagSeen.value_text)
        .join(Feature, Feature.id == FlagSeen.feature_id)
        .join(Identity, Identity.id == FlagSeen.identity_id)
        .where(Identity.identifier == identifier)
    ).all()  # fmt: skip
    return {name: (variant, enabled, kind, text) for name, variant, enabled, kind, text in rows}


def test_analytics__sdk_batch__adds_counts_per_feature(client, sdk_env):
    for _ in range(2):
        response = client.post(URL, json={"dark_mode": 3, "welcome": 1}, headers=sdk_env.client())
        assert response.status_code == 200
        assert response.get_json() == {}
    assert _counts(sdk_env.environment.id) == {"dark_mode": 6, "welcome": 2}


def test_analytics__server_key__counts_server_only_features(client, sdk_env):
    client.post(URL, json={"secret_backend": 2}, headers=sdk_env.server())
    client.post(URL, json={"secret_backend": 5}, headers=sdk_env.client())
    # A client key never sees server-key-only features: its count for one is ignored.
    assert _counts(sdk_env.environment.id) == {"secret_backend": 2}


def test_analytics__unknown_features_and_zero_counts__are_ignored(client, sdk_env):
    response = client.post(
        URL, json={"no_such_flag": 4, "dark_mode": 0, "welcome": 1}, headers=sdk_env.client()
    )
    assert response.status_code == 200
    assert _counts(sdk_env.environment.id) == {"welcome": 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dark_mode": -1}, "between 0 and"),
        ({"dark_mode": 1.5}, "must be an integer"),
        ({"dark_mode": 2.0}, "must be an integer"),
        ({"dark_mode": True}, "must be an integer"),
        ({"dark_mode": "3"}, "must be an integer"),
        ({"dark_mode": None}, "must be an integer"),
        ({"dark_mode": [1]}, "must be an integer"),
        ({"dark_mode": 10**12}, "between 0 and"),
        ({"dark_mode": 2**70}, "between 0 and"),
        ({"": 1}, "1 to 150 characters"),
        ({"x" * 151: 1}, "1 to 150 characters"),
        ([{"dark_mode": 1}], "JSON object"),
        ("dark_mode", "JSON object"),
        (7, "JSON object"),
        ({f"f{i}": 1 for i in range(1001)}, "At most 1000"),
    ],
)
def test_analytics__hostile_batch__400_and_nothing_counted(client, sdk_env, body, message):
    # A valid entry next to the bad one: the whole batch is refused.
    if isinstance(body, dict) and "welcome" not in body:
        body = {"welcome": 1, **body}
    response = client.post(
        URL, data=json.dumps(body), headers=sdk_env.client(), content_type="application/json"
    )
    assert response.status_code == 400
    assert message in response.get_json()["detail"]
    assert _counts(sdk_env.environment.id) == {}


@pytest.mark.parametrize("body", [b"", b"{", b"NaN", b'{"a": NaN}', b"\xff\xfe"])
def test_analytics__not_json__400(client, sdk_env, body):
    response = client.post(
        URL, data=body, headers=sdk_env.client(), content_type="application/json"
    )
    assert response.status_code == 400
    assert isinstance(response.get_json()["detail"], str)
    assert _counts(sdk_env.environment.id) == {}


def test_analytics__huge_body__413(client, sdk_env):
    body = json.dumps({f"feature_{i:06d}": 1 for i in range(5000)})
    response = client.post(
        URL, data=body, headers=sdk_env.client(), content_type="application/json"
    )
    assert response.status_code == 413
    assert _counts(sdk_env.environment.id) == {}


@pytest.mark.parametrize("key", [None, "", "nope", "ser.nope", "x" * 300, "revoked"])
def test_analytics__bad_key__403(client, sdk_env, key):
    headers = {} if key is None else {"X-Environment-Key": key}
    if key == "revoked":
        headers = {"X-Environment-Key": sdk_env.revoked_key}
    response = client.post(URL, json={"dark_mode": 1}, headers=headers)
    assert response.status_code == 403
    assert response.get_json() == {"detail": "Invalid or missing Environment Key"}
    assert _counts(sdk_env.environment.id) == {}


def test_analytics__get__405_json(client, sdk_env):
    response = client.get(URL, headers=sdk_env.client())
    assert response.status_code == 405
    assert "detail" in response.get_json()


def test_environment_flags__count_every_flag_returned(client, sdk_env):
    client.get("/api/v1/flags/", headers=sdk_env.client())
    client.get("/api/v1/flags/?feature=welcome", headers=sdk_env.client())
    assert _counts(sdk_env.environment.id) == {
        "dark_mode": 1, "max_upload_mb": 1, "welcome": 2, "button_colour": 1,
    }  # fmt: skip


def test_identify__counts_flags_and_records_seen_rows(client, sdk_env):
    response = client.post(
        "/api/v1/identities/", json={"identifier": "carol", "traits": []}, headers=sdk_env.server()
    )
    flags = {f["feature"]["name"]: f for f in response.get_json()["flags"]}
    counts = _counts(sdk_env.environment.id)
    assert counts == dict.fromkeys(flags, 1)
    assert "secret_backend" in counts  # a server key sees it, so it was evaluated
    seen = _seen("carol")
    colour = flags["button_colour"]
    assert colour["variant"] in ("blue", "orange", "control")
    served = colour["feature_state_value"]
    assert seen["button_colour"] == (colour["variant"], True, "string", served)
    assert seen["max_upload_mb"] == ("", True, "integer", "25")  # typed: integer 25, not "25"
    assert "variant" not in flags["max_upload_mb"]


def test_identify__twice__one_seen_row_first_seen_kept(client, sdk_env):
    for _ in range(3):
        client.get("/api/v1/identities/?identifier=dave", headers=sdk_env.client())
        usage.flush()
    rows = db.session.scalars(
        select(FlagSeen).join(Identity).where(Identity.identifier == "dave")
    ).all()
    assert len(rows) == 4  # one per feature (a client key: 4 features)
    assert all(r.first_seen_at <= r.last_seen_at for r in rows)
    assert _counts(sdk_env.environment.id)["dark_mode"] == 3


def test_identify__transient_identity__counted_but_not_seen(client, sdk_env):
    client.post(
        "/api/v1/identities/",
        json={"identifier": "ghost", "transient": True},
        headers=sdk_env.client(),
    )
    assert _counts(sdk_env.environment.id)["dark_mode"] == 1
    assert db.session.scalar(select(FlagSeen.identity_id)) is None


def test_identify__identity_override__no_variant(client, sdk_env):
    response = client.get("/api/v1/identities/?identifier=vip-user", headers=sdk_env.client())
    flags = {f["feature"]["name"]: f for f in response.get_json()["flags"]}
    assert flags["welcome"]["feature_state_value"] == "Hello VIP"
    assert "variant" not in flags["welcome"]
    assert _seen("vip-user")["welcome"] == ("", True, "string", "Hello VIP")


@pytest.mark.parametrize("app_config", [{"USAGE_RECORDING": False}])
def test_recording_off__nothing_is_buffered_or_written(client, sdk_env, app_config):
    client.get("/api/v1/identities/?identifier=erin", headers=sdk_env.client())
    response = client.post(URL, json={"dark_mode": 3}, headers=sdk_env.client())
    assert response.status_code == 200
    assert usage.app_buffer() is None
    assert db.session.scalar(select(FlagUsage.feature_id)) is None
    assert db.session.scalar(select(FlagSeen.feature_id)) is None


def test_openapi__documents_analytics_and_variant(client):
    document = client.get("/api/v1/openapi.json").get_json()
    body = document["paths"]["/api/v1/analytics/flags/"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] == {"type": "integer", "minimum": 0, "maximum": 10**9}
    assert "variant" in document["components"]["schemas"]["Flag"]["properties"]


def test_ofrep__each_evaluated_flag_counts_once(client, sdk_env):
    bearer = {"Authorization": f"Bearer {sdk_env.client_key}"}
    body = {"context": {"targetingKey": "frank"}}
    client.post("/ofrep/v1/evaluate/flags/welcome", json=body, headers=bearer)
    client.post("/ofrep/v1/evaluate/flags", json=body, headers=bearer)
    client.post("/ofrep/v1/evaluate/flags/no_such_flag", json=body, headers=bearer)
    assert _counts(sdk_env.environment.id) == {
        "dark_mode": 1, "max_upload_mb": 1, "welcome": 2, "button_colour": 1,
    }  # fmt: skip
