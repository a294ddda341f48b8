"""OFREP endpoints: shapes from the OFREP OpenAPI document, reasons, errors, ETag."""

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from webapp.blueprints.sdk_openapi import OPENAPI
from webapp.extensions import db
from webapp.models import Identity

# Database behaviour (the SDK read path has its own SQL per database):
# runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")


def schema(name):
    """A schema from the served OpenAPI document, so responses are checked against it."""
    return {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}


SUCCESS = schema("ofrepSuccess")
FAILURE = schema("ofrepFailure")
BULK = OPENAPI["paths"]["/ofrep/v1/evaluate/flags"]["post"]["responses"]["200"]["content"][
    "application/json"
]["schema"] | {"components": OPENAPI["components"]}


def valid(schema, payload):
    Draft202012Validator(schema).validate(payload)
    return payload


@pytest.fixture
def app_config():
    return {"SDK_CACHE_TTL": 0}


def post(client, path, env, body=None, **headers):
    return client.post(
        f"/ofrep/v1/evaluate/flags{path}",
        json=body,
        headers={"Authorization": f"Bearer {env.client_key}", **headers},
    )


def test_single__boolean_flag__resolves_enabled_as_static(client, sdk_env):
    response = post(client, "/dark_mode", sdk_env, {"context": {"targetingKey": "ann"}})
    assert response.status_code == 200
    body = valid(SUCCESS, response.get_json())
    assert (body["key"], body["value"], body["reason"]) == ("dark_mode", True, "STATIC")


def test_single__segment_override__is_targeting_match(client, sdk_env):
    response = post(
        client, "/max_upload_mb", sdk_env, {"context": {"targetingKey": "ann", "plan": "pro"}}
    )
    body = valid(SUCCESS, response.get_json())
    assert (body["value"], body["reason"]) == (250, "TARGETING_MATCH")
    assert body["metadata"]["flagsmithReason"] == "TARGETING_MATCH; segment=Pro users"


def test_single__not_in_segment__is_default(client, sdk_env):
    body = post(
        client, "/max_upload_mb", sdk_env, {"context": {"targetingKey": "ann", "plan": "free"}}
    ).get_json()
    assert (body["value"], body["reason"]) == (25, "DEFAULT")


def test_single__multivariate__is_split_with_variant(client, sdk_env):
    reasons = set()
    for index in range(40):
        body = valid(
            SUCCESS,
            post(
                client, "/button_colour", sdk_env, {"context": {"targetingKey": f"u{index}"}}
            ).get_json(),
        )
        reasons.add(body["reason"])
        if body["reason"] == "SPLIT":
            assert body["value"] in ("blue", "orange") and "variant" in body
    assert reasons == {"SPLIT", "STATIC"}  # the official engine calls an unsplit control STATIC


def test_single__disabled_valued_flag__reason_disabled(client, sdk_env):
    body = post(client, "/welcome", sdk_env, {"context": {"targetingKey": "ann"}}).get_json()
    assert (body["value"], body["reason"], body["metadata"]["enabled"]) == (
        "hello",
        "DISABLED",
        False,
    )


def test_single__identity_override_and_stored_traits__apply(client, sdk_env):
    body = post(client, "/welcome", sdk_env, {"context": {"targetingKey": "vip-user"}}).get_json()
    assert (body["value"], body["reason"]) == ("Hello VIP", "TARGETING_MATCH")


def test_single__context_traits__are_transient(client, sdk_env):
    post(client, "/dark_mode", sdk_env, {"context": {"targetingKey": "newbie", "plan": "pro"}})
    assert db.session.scalar(select(Identity).where(Identity.identifier == "newbie")) is None


def test_single__unknown_flag__404_flag_not_found(client, sdk_env):
    response = post(client, "/nope", sdk_env, {"context": {"targetingKey": "ann"}})
    assert response.status_code == 404
    assert valid(FAILURE, response.get_json())["errorCode"] == "FLAG_NOT_FOUND"


def test_single__server_key_only_flag__hidden_from_client_key(client, sdk_env):
    response = post(client, "/secret_backend", sdk_env, {"context": {"targetingKey": "a"}})
    assert response.status_code == 404
    server = client.post(
        "/ofrep/v1/evaluate/flags/secret_backend",
        json={"context": {"targetingKey": "a"}},
        headers={"X-Environment-Key": sdk_env.server_key},
    )
    assert server.get_json()["value"] == "s3"


def test_single__targeted_flag_without_targeting_key__is_400(client, sdk_env):
    response = post(client, "/max_upload_mb", sdk_env, {"context": {}})
    assert response.status_code == 400
    assert valid(FAILURE, response.get_json())["errorCode"] == "TARGETING_KEY_MISSING"
    static = post(client, "/dark_mode", sdk_env, {"context": {}})
    assert static.status_code == 200 and static.get_json()["reason"] == "STATIC"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"context": []}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": 5}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": "a", "nested": {"x": 1}}}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": "a", "long": "x" * 2001}}, "INVALID_CONTEXT"),
        ([1, 2], "INVALID_CONTEXT"),
    ],
)
def test_single__bad_context__is_400_with_code(client, sdk_env, body, code):
    response = post(client, "/dark_mode", sdk_env, body)
    assert response.status_code == 400
    assert valid(FAILURE, response.get_json())["errorCode"] == code


def test_single__malformed_json__parse_error(client, sdk_env):
    response = client.post(
        "/ofrep/v1/evaluate/flags/dark_mode",
        data=b"{nope",
        content_type="application/json",
        headers={"Authorization": f"Bearer {sdk_env.client_key}"},
    )
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "PARSE_ERROR"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 403), ({"X-API-Key": "wrong"}, 403)],
)
def test_auth__missing_or_wrong_key(client, sdk_env, headers, status):
    response = client.post("/ofrep/v1/evaluate/flags/dark_mode", json={}, headers=headers)
    assert response.status_code == status
    assert "errorDetails" in response.get_json()


def test_auth__x_environment_key__is_accepted(client, sdk_env):
    response = client.post(
        "/ofrep/v1/evaluate/flags/dark_mode", json={"context": {}}, headers=sdk_env.client()
    )
    assert response.status_code == 200


def test_bulk__returns_every_visible_flag_with_etag(client, sdk_env):
    response = post(client, "", sdk_env, {"context": {"targetingKey": "ann", "plan": "pro"}})
    assert response.status_code == 200
    body = valid(BULK, response.get_json())
    names = [flag["key"] for flag in body["flags"]]
    assert names == sorted(names) and "secret_backend" not in names
    assert {"dark_mode", "max_upload_mb", "welcome", "button_colour"} <= set(names)
    etag = response.headers["ETag"]
    again = post(
        client,
        "",
        sdk_env,
        {"context": {"targetingKey": "ann", "plan": "pro"}},
        **{"If-None-Match": etag},
    )
    assert again.status_code == 304
    other = post(
        client,
        "",
        sdk_env,
        {"context": {"targetingKey": "ann", "plan": "free"}},
        **{"If-None-Match": etag},
    )
    assert other.status_code == 200 and other.headers["ETag"] != etag


def test_bulk__without_targeting_key__marks_targeted_flags(client, sdk_env):
    body = valid(BULK, post(client, "", sdk_env, {"context": {}}).get_json())
    by_key = {flag["key"]: flag for flag in body["flags"]}
    assert by_key["max_upload_mb"]["errorCode"] == "TARGETING_KEY_MISSING"
    assert by_key["dark_mode"]["value"] is True


def test_bulk__invalid_context__is_400(client, sdk_env):
    response = post(client, "", sdk_env, {"context": "nope"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "INVALID_CONTEXT" and "key" not in body
