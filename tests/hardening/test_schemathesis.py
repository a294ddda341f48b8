"""Fuzz the SDK API and OFREP from their own OpenAPI document with Schemathesis.

Every documented operation is called with generated valid and invalid input, once with the
client-side key (on SQLite) and once with a server-side key (on PostgreSQL), on an
environment with features, segments, overrides and identities: each operation and each key
kind is fuzzed, and so is each database, without running every combination of the three. A
5xx, a status code the document does not list, or a body that does not match the documented
schema fails the test. Runs are derandomized (the same inputs every run for a given
PYTHONHASHSEED) and bounded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.api.conftest import SdkEnvironment, build_sdk_environment
from webapp.blueprints.sdk_openapi import OPENAPI
from webapp.extensions import db

MAX_EXAMPLES = 25
# Database behaviour (bodies a database refuses to store must still be a 4xx):
# runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")
# Each key kind on one database (the server key sees every feature: the stricter database).
KEYS_AND_DATABASES = [("client", "sqlite"), ("server", "postgres")]
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
FLAG_NAMES = ["dark_mode", "max_upload_mb", "welcome", "secret_backend", "button_colour"]
OPERATIONS = [(path, method) for path, item in OPENAPI["paths"].items() for method in item]
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def sdk_env(app: Flask) -> SdkEnvironment:
    env = build_sdk_environment()
    db.session.commit()
    return env


def _key_headers(env: SdkEnvironment, kind: str) -> dict[str, str]:
    return env.server() if kind == "server" else env.client()


def _known_names(operation: Any) -> st.SearchStrategy[Any]:
    """Cases that name real flags and identities, so the success paths are fuzzed too."""
    flags = st.sampled_from(FLAG_NAMES)
    if operation.path == "/ofrep/v1/evaluate/flags/{key}":
        return flags.flatmap(lambda name: operation.as_strategy(path_parameters={"key": name}))
    if operation.path == "/api/v1/flags/":
        return flags.flatmap(lambda name: operation.as_strategy(query={"feature": name}))
    if operation.path == "/api/v1/identities/" and operation.method == "get":
        return operation.as_strategy(query={"identifier": "vip-user"})
    return st.nothing()


def fuzz(
    app: Flask,
    path: str,
    method: str,
    headers: dict[str, str],
    fuzz_settings: settings = FUZZ_SETTINGS,
) -> None:
    """Run the generated cases of one operation through the app and validate every answer."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        _known_names(operation),
    )

    @fuzz_settings
    @given(case=cases)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


@pytest.mark.parametrize(("key", "database"), KEYS_AND_DATABASES, indirect=["database"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_sdk_api__fuzzed_requests__get_documented_answers_and_no_5xx(
    app: Flask, sdk_env: SdkEnvironment, path: str, method: str, key: str
) -> None:
    fuzz(app, path, method, _key_headers(sdk_env, key))


def test_fuzzer__server_error__is_reported(
    app: Flask, sdk_env: SdkEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an endpoint that crashes, the harness must fail rather than pass quietly
    from webapp.services.sdk import sdk_service

    def crash(*_args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(sdk_service, "environment_results", crash)
    quick = settings(FUZZ_SETTINGS, max_examples=5, phases=[Phase.generate])
    with pytest.raises(RuntimeError, match="boom"):
        fuzz(app, "/api/v1/flags/", "get", sdk_env.client(), quick)


# --- regressions found by the fuzzer or while writing it -------------------------------------


@pytest.mark.parametrize("encoded", ["v%0A", "%0Av%0A", "a%0D%0Ab", "x/y%0A"])
def test_ofrep_flag__key_with_a_newline__is_flag_not_found_not_a_bare_404(
    client: Any, sdk_env: SdkEnvironment, encoded: str
) -> None:
    # Werkzeug's path converter stopped at a newline, so the route did not match at all
    response = client.post(f"/ofrep/v1/evaluate/flags/{encoded}", headers=sdk_env.server())
    assert response.status_code == 404
    body = response.get_json()
    assert body["errorCode"] == "FLAG_NOT_FOUND"
    assert "\n" in body["key"]


# A run of 19+ digits sends the body through the standard library parser, which (unlike
# orjson) decoded unpaired surrogates into strings no database can store: a 500.
BIG = 12345678901234567890
LONE = "\ud800"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/identities/", {"identifier": "a" + LONE, "n": BIG}),
        (
            "/api/v1/identities/",
            {"identifier": "a", "traits": [{"trait_key": LONE, "trait_value": BIG}]},
        ),
        (
            "/api/v1/traits/",
            {"identity": {"identifier": "a"}, "trait_key": "k", "trait_value": LONE, "n": BIG},
        ),
        ("/ofrep/v1/evaluate/flags", {"context": {"targetingKey": LONE, "n": BIG}}),
    ],
)
def test_sdk_body__unpaired_surrogate_with_a_long_number__is_400_not_500(
    client: Any, sdk_env: SdkEnvironment, path: str, body: dict[str, Any]
) -> None:
    headers = {**sdk_env.server(), "Content-Type": "application/json"}
    encoded = json.dumps(body)  # ASCII only: the surrogate travels as a \\u escape
    assert "\\ud800" in encoded
    response = client.post(path, data=encoded, headers=headers)
    assert response.status_code == 400
    assert "unpaired surrogate" in response.get_data(as_text=True)


def test_sdk_api__nul_in_the_address__is_a_documented_400(
    client: Any, sdk_env: SdkEnvironment
) -> None:
    response = client.get("/api/v1/flags/?feature=a%00b", headers=sdk_env.client())
    assert response.status_code == 400
    assert "400" in OPENAPI["paths"]["/api/v1/flags/"]["get"]["responses"]
    assert "NUL" in response.get_json()["detail"]


def test_ofrep_flag__nul_in_the_key__answers_the_ofrep_failure_shape(
    client: Any, sdk_env: SdkEnvironment
) -> None:
    response = client.post("/ofrep/v1/evaluate/flags/a%00b", headers=sdk_env.client())
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "GENERAL" and body["key"] == "a\x00b"
    assert "NUL" in body["errorDetails"]
