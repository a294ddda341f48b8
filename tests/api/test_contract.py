"""SDK API contract: keys, shapes, settings, transient data, caching, CSRF exemption."""

import re

import pytest
from sqlalchemy import event, func, select

from webapp.api_paths import API_PREFIXES
from webapp.extensions import db
from webapp.models import Environment, Feature, Identity, Trait

# Database behaviour (the SDK read path has its own SQL per database):
# runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

INVALID_KEY = {"detail": "Invalid or missing Environment Key"}


@pytest.fixture
def app_config():
    # Tests change data between requests; no TTL means every request re-checks the revision.
    return {"SDK_CACHE_TTL": 0}


def traits_of(identifier):
    identity = db.session.scalar(select(Identity).where(Identity.identifier == identifier))
    db.session.refresh(identity)
    return {t.key: t.value for t in identity.traits}


def by_name(flags):
    return {f["feature"]["name"]: f for f in flags}


# --- keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Environment-Key": ""},
        {"X-Environment-Key": "nope"},
        {"X-Environment-Key": "x" * 300},
        {"X-Environment-Key": "bad\x7fkey"},
    ],
)
def test_missing_malformed_or_unknown_key__is_403(client, sdk_env, headers):
    response = client.get("/api/v1/flags/", headers=headers)
    assert response.status_code == 403
    assert response.get_json() == INVALID_KEY


def test_revoked_server_key__is_403(client, sdk_env):
    response = client.get("/api/v1/flags/", headers={"X-Environment-Key": sdk_env.revoked_key})
    assert response.status_code == 403
    assert response.get_json() == INVALID_KEY


def test_server_key__revoked_while_cached__is_refused_next_request(client, sdk_env):
    assert client.get("/api/v1/flags/", headers=sdk_env.server()).status_code == 200
    from webapp.services import environments

    key_id = sdk_env.environment.server_keys[0].id
    environments.revoke_server_key(sdk_env.environment, key_id, None)
    assert client.get("/api/v1/flags/", headers=sdk_env.server()).status_code == 403


# --- /flags/ ------------------------------------------------------------------------------


def test_flags__client_key__lists_defaults_in_flagsmith_shape(client, sdk_env):
    response = client.get("/api/v1/flags/", headers=sdk_env.client())
    assert response.status_code == 200
    flags = by_name(response.get_json())
    assert set(flags) == {"dark_mode", "max_upload_mb", "welcome", "button_colour"}
    upload = flags["max_upload_mb"]
    assert upload["enabled"] is True and upload["feature_state_value"] == 25
    assert upload["feature"]["name"] == "max_upload_mb" and upload["feature"]["type"] == "STANDARD"
    assert isinstance(upload["id"], int) and isinstance(upload["feature"]["id"], int)
    # Without an identity there is no split: the control value.
    assert flags["button_colour"]["feature_state_value"] == "green"


def test_flags__server_key__also_sees_server_key_only_features(client, sdk_env):
    flags = by_name(client.get("/api/v1/flags/", headers=sdk_env.server()).get_json())
    assert flags["secret_backend"]["feature_state_value"] == "s3"


def test_flags__feature_param__returns_one_or_404(client, sdk_env):
    one = client.get("/api/v1/flags/?feature=welcome", headers=sdk_env.client())
    assert one.status_code == 200 and one.get_json()["feature"]["name"] == "welcome"
    missing = client.get("/api/v1/flags/?feature=nope", headers=sdk_env.client())
    assert missing.status_code == 404
    assert missing.get_json() == {"detail": "Given feature not found"}
    hidden = client.get("/api/v1/flags/?feature=secret_backend", headers=sdk_env.client())
    assert hidden.status_code == 404


def test_flags__hide_disabled_flags__omits_disabled(client, sdk_env):
    sdk_env.environment.hide_disabled_flags = True
    sdk_env.environment.bump_revision()
    db.session.commit()
    flags = by_name(client.get("/api/v1/flags/", headers=sdk_env.client()).get_json())
    assert "welcome" not in flags and "dark_mode" in flags


def test_flags__change_with_revision_bump__is_served(client, sdk_env):
    before = by_name(client.get("/api/v1/flags/", headers=sdk_env.client()).get_json())
    assert before["welcome"]["enabled"] is False
    feature = db.session.scalar(select(Feature).where(Feature.name == "welcome"))
    feature.states[0].enabled = True
    db.session.get(Environment, sdk_env.environment.id).bump_revision()
    db.session.commit()
    after = by_name(client.get("/api/v1/flags/", headers=sdk_env.client()).get_json())
    assert after["welcome"]["enabled"] is True


# --- identities ---------------------------------------------------------------------------


def test_get_identity__creates_it_and_returns_flags(client, sdk_env):
    response = client.get("/api/v1/identities/?identifier=alice", headers=sdk_env.client())
    assert response.status_code == 200
    body = response.get_json()
    assert body["identifier"] == "alice" and body["traits"] == []
    assert "dark_mode" in by_name(body["flags"])
    assert (
        db.session.scalar(select(func.count(Identity.id)).where(Identity.identifier == "alice"))
        == 1
    )


def test_get_identity__without_identifier__is_400(client, sdk_env):
    response = client.get("/api/v1/identities/", headers=sdk_env.client())
    assert response.status_code == 400
    assert "identifier" in response.get_json()["detail"]


def test_post_identity__stores_typed_traits_and_applies_segments(client, sdk_env):
    body = {
        "identifier": "bob",
        "traits": [
            {"trait_key": "plan", "trait_value": "pro"},
            {"trait_key": "age", "trait_value": 42},
            {"trait_key": "score", "trait_value": 3.0},
            {"trait_key": "beta", "trait_value": True},
            {"trait_key": "zip", "trait_value": "007"},
        ],
    }
    response = client.post("/api/v1/identities/", json=body, headers=sdk_env.client())
    assert response.status_code == 200
    flags = by_name(response.get_json()["flags"])
    assert flags["max_upload_mb"]["feature_state_value"] == 250
    assert "TARGETING_MATCH" in flags["max_upload_mb"]["reason"]
    assert traits_of("bob") == {"plan": "pro", "age": 42, "score": 3.0, "beta": True, "zip": "007"}
    returned = {t["trait_key"]: t["trait_value"] for t in response.get_json()["traits"]}
    assert returned["zip"] == "007" and returned["score"] == 3.0


def test_post_identity__null_value__deletes_the_trait(client, sdk_env):
    client.post(
        "/api/v1/identities/",
        json={
            "identifier": "carol",
            "traits": [
                {"trait_key": "plan", "trait_value": "pro"},
                {"trait_key": "age", "trait_value": 3},
            ],
        },
        headers=sdk_env.client(),
    )
    client.post(
        "/api/v1/identities/",
        json={"identifier": "carol", "traits": [{"trait_key": "plan", "trait_value": None}]},
        headers=sdk_env.client(),
    )
    assert traits_of("carol") == {"age": 3}


def test_post_identity__transient_trait__is_used_but_not_stored(client, sdk_env):
    response = client.post(
        "/api/v1/identities/",
        json={
            "identifier": "dave",
            "traits": [{"trait_key": "plan", "trait_value": "pro", "transient": True}],
        },
        headers=sdk_env.client(),
    )
    assert by_name(response.get_json()["flags"])["max_upload_mb"]["feature_state_value"] == 250
    assert traits_of("dave") == {}


def test_post_identity__transient_identity__is_not_created(client, sdk_env):
    response = client.post(
        "/api/v1/identities/",
        json={
            "identifier": "ghost",
            "transient": True,
            "traits": [{"trait_key": "plan", "trait_value": "pro"}],
        },
        headers=sdk_env.client(),
    )
    assert response.status_code == 200
    assert by_name(response.get_json()["flags"])["max_upload_mb"]["feature_state_value"] == 250
    assert db.session.scalar(select(Identity).where(Identity.identifier == "ghost")) is None


def test_post_identity__identity_override__wins(client, sdk_env):
    response = client.post(
        "/api/v1/identities/", json={"identifier": "vip-user"}, headers=sdk_env.client()
    )
    welcome = by_name(response.get_json()["flags"])["welcome"]
    assert welcome["enabled"] is True and welcome["feature_state_value"] == "Hello VIP"


def test_post_identity__multivariate__is_stable_per_identity(client, sdk_env):
    values = set()
    for index in range(60):
        response = client.post(
            "/api/v1/identities/", json={"identifier": f"u{index}"}, headers=sdk_env.client()
        )
        value = by_name(response.get_json()["flags"])["button_colour"]["feature_state_value"]
        again = client.post(
            "/api/v1/identities/", json={"identifier": f"u{index}"}, headers=sdk_env.client()
        )
        assert by_name(again.get_json()["flags"])["button_colour"]["feature_state_value"] == value
        values.add(value)
    assert values == {"green", "blue", "orange"}


def test_post_identity__client_traits_not_allowed__are_used_not_stored(client, sdk_env):
    sdk_env.environment.allow_client_traits = False
    sdk_env.environment.bump_revision()
    db.session.commit()
    response = client.post(
        "/api/v1/identities/",
        json={"identifier": "erin", "traits": [{"trait_key": "plan", "trait_value": "pro"}]},
        headers=sdk_env.client(),
    )
    assert by_name(response.get_json()["flags"])["max_upload_mb"]["feature_state_value"] == 250
    assert traits_of("erin") == {}
    client.post(
        "/api/v1/identities/",
        json={"identifier": "erin", "traits": [{"trait_key": "plan", "trait_value": "pro"}]},
        headers=sdk_env.server(),
    )
    assert traits_of("erin") == {"plan": "pro"}


def test_post_identity__unchanged__writes_nothing(client, sdk_env, app):
    body = {"identifier": "frank", "traits": [{"trait_key": "plan", "trait_value": "pro"}]}
    client.post("/api/v1/identities/", json=body, headers=sdk_env.client())
    writes = []

    def capture(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        response = client.post("/api/v1/identities/", json=body, headers=sdk_env.client())
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert response.status_code == 200
    assert writes == []


def test_post_identity__same_identifier_other_environment__is_another_identity(client, sdk_env):
    from tests.factories import make_environment

    other = make_environment(sdk_env.environment.project, "Staging")
    db.session.commit()
    client.post("/api/v1/identities/", json={"identifier": "gina"}, headers=sdk_env.client())
    client.post(
        "/api/v1/identities/",
        json={"identifier": "gina"},
        headers={"X-Environment-Key": other.client_key},
    )
    assert (
        db.session.scalar(select(func.count(Identity.id)).where(Identity.identifier == "gina")) == 2
    )


# --- traits endpoints ---------------------------------------------------------------------


def test_post_trait__stores_it_without_evaluating(client, sdk_env):
    response = client.post(
        "/api/v1/traits/",
        json={"identity": {"identifier": "hank"}, "trait_key": "plan", "trait_value": "pro"},
        headers=sdk_env.client(),
    )
    assert response.status_code == 200
    assert response.get_json()["trait_key"] == "plan"
    assert traits_of("hank") == {"plan": "pro"}


def test_bulk_traits__stores_across_identities(client, sdk_env):
    response = client.put(
        "/api/v1/traits/bulk/",
        json=[
            {"identity": {"identifier": "ivy"}, "trait_key": "plan", "trait_value": "pro"},
            {"identity": {"identifier": "ivy"}, "trait_key": "age", "trait_value": 30},
            {"identity": {"identifier": "jack"}, "trait_key": "plan", "trait_value": "free"},
        ],
        headers=sdk_env.server(),
    )
    assert response.status_code == 200
    assert traits_of("ivy") == {"plan": "pro", "age": 30}
    assert traits_of("jack") == {"plan": "free"}


def test_post_trait__client_key_when_client_traits_disallowed__is_403(client, sdk_env):
    sdk_env.environment.allow_client_traits = False
    sdk_env.environment.bump_revision()
    db.session.commit()
    response = client.post(
        "/api/v1/traits/",
        json={"identity": {"identifier": "kim"}, "trait_key": "plan", "trait_value": "pro"},
        headers=sdk_env.client(),
    )
    assert response.status_code == 403
    assert db.session.scalar(select(func.count(Trait.id)).where(Trait.key == "plan")) == 1


# --- environment document -----------------------------------------------------------------


def test_environment_document__client_key__is_403(client, sdk_env):
    response = client.get("/api/v1/environment-document/", headers=sdk_env.client())
    assert response.status_code == 403
    assert "server-side key" in response.get_json()["detail"]


def test_environment_document__server_key__serves_it_with_304(client, sdk_env):
    response = client.get("/api/v1/environment-document/", headers=sdk_env.server())
    assert response.status_code == 200
    document = response.get_json()
    assert document["api_key"] == sdk_env.client_key
    assert {fs["feature"]["name"] for fs in document["feature_states"]} >= {"dark_mode"}
    modified = response.headers["Last-Modified"]
    again = client.get(
        "/api/v1/environment-document/", headers={**sdk_env.server(), "If-Modified-Since": modified}
    )
    assert again.status_code == 304
    stale = client.get(
        "/api/v1/environment-document/",
        headers={**sdk_env.server(), "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
    )
    assert stale.status_code == 200


# --- openapi and CSRF ---------------------------------------------------------------------


def test_openapi__is_served_without_a_key(client, sdk_env):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.1")


def test_openapi__documents_exactly_the_api_routes(app, client):
    # Walk the real routes: a new endpoint without documentation fails here.
    document = client.get("/api/v1/openapi.json").get_json()
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIXES) or rule.endpoint.endswith("openapi"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routed


def test_responses__conform_to_the_openapi_schemas(client, sdk_env):
    from jsonschema import Draft202012Validator

    from webapp.blueprints.sdk_openapi import OPENAPI

    def check(name, payload):
        schema = {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}
        Draft202012Validator(schema).validate(payload)

    body = {"identifier": "shape", "traits": [{"trait_key": "plan", "trait_value": "pro"}]}
    check(
        "IdentityResponse",
        client.post("/api/v1/identities/", json=body, headers=sdk_env.client()).get_json(),
    )
    for flag in client.get("/api/v1/flags/", headers=sdk_env.server()).get_json():
        check("Flag", flag)
    check("Error", client.get("/api/v1/flags/").get_json())


def test_unknown_api_path__is_json_404(client, sdk_env):
    response = client.get("/api/v1/nope/", headers=sdk_env.client())
    assert response.status_code == 404
    assert "detail" in response.get_json()


def test_environment_document__is_rebuilt_when_the_revision_moves(client, sdk_env):
    def override_identifiers():
        document = client.get("/api/v1/environment-document/", headers=sdk_env.server())
        return {o["identifier"] for o in document.get_json()["identity_overrides"]}

    assert override_identifiers() == {"vip-user"}
    from tests.factories import make_identity
    from webapp.models import IdentityOverride

    newcomer = make_identity(sdk_env.environment, "newcomer")
    feature = db.session.scalar(select(Feature).where(Feature.name == "dark_mode"))
    db.session.add(
        IdentityOverride(
            identity=newcomer, feature=feature, enabled=False, environment_id=sdk_env.environment.id
        )
    )
    assert override_identifiers() == {"vip-user"}  # same revision: the cached document
    sdk_env.environment.bump_revision()
    db.session.commit()
    assert override_identifiers() == {"vip-user", "newcomer"}
