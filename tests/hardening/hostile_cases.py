"""The hostile input catalogue: bad requests for the SDK APIs and every dashboard form.

Each case names one request and the refusal expected for it: the 4xx status and a fragment
of the message the caller must see (``detail``/``errorDetails`` in JSON, inline text on a
page). ``$name`` placeholders in URLs, headers and form values are filled with the ids and
keys of the world built by ``test_hostile_input.py`` (``string.Template``, so JSON braces in
values need no escaping).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Rendered into response headers if a header injection ever got through.
INJECTED = "pwned"
CRLF_COOKIE = f"\r\nSet-Cookie: {INJECTED}=1"
NO_BODY = object()


@dataclass(frozen=True)
class Case:
    """One hostile request and the refusal it must get."""

    id: str
    method: str
    url: str
    status: int
    fragment: str
    json: Any = NO_BODY  # encoded with json.dumps
    body: bytes | None = None  # sent as is (invalid JSON, bad UTF-8, huge bodies)
    form: dict[str, Any] | list[tuple[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    htmx: bool = False  # the dashboard sends this form with htmx
    key: str | None = "$client_key"  # SDK key header (X-Environment-Key); None: no header
    # Raw WSGI environ entries: the test client refuses CR/LF in headers, a proxy may not.
    environ: dict[str, str] = field(default_factory=dict)
    # Refused optimistic-version changes are audited (``update_rejected``): the one change
    # allowed is that single audit event.
    audited_rejection: bool = False


def _kib(n: int) -> bytes:
    return b'{"identifier": "' + b"x" * (n * 1024) + b'"}'


def _identify(**extra: Any) -> dict[str, Any]:
    return {"identifier": "mallory", **extra}


def _trait(key: Any = "plan", value: Any = "pro", **extra: Any) -> dict[str, Any]:
    return {"trait_key": key, "trait_value": value, **extra}


def _trait_write(**extra: Any) -> dict[str, Any]:
    return {"identity": {"identifier": "mallory"}, **_trait(), **extra}


DEEP = b"[" * 10_000 + b"]" * 10_000
# A 19-digit run sends the body through the exact (standard library) JSON parser.
DEEP_EXACT = b'{"n": 1234567890123456789, "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
IDENTIFY = "/api/v1/identities/"
TRAITS = "/api/v1/traits/"
BULK = "/api/v1/traits/bulk/"
OFREP_ONE = "/ofrep/v1/evaluate/flags/banner"
OFREP_ALL = "/ofrep/v1/evaluate/flags"
BEARER = {"Authorization": "Bearer $client_key"}
INVALID_KEY = "Invalid or missing Environment Key"

SDK_CASES = [
    # --- keys and headers
    Case("sdk-flags-unknown-key", "GET", "/api/v1/flags/", 403, INVALID_KEY,
         key="not-a-real-environment-key"),
    Case("sdk-flags-missing-key", "GET", "/api/v1/flags/", 403, INVALID_KEY, key=None),
    Case("sdk-flags-key-crlf-injection", "GET", "/api/v1/flags/", 403, "Invalid or missing",
         key=None, environ={"HTTP_X_ENVIRONMENT_KEY": "$client_key" + CRLF_COOKIE}),
    Case("sdk-flags-key-nul", "GET", "/api/v1/flags/", 403, "Invalid or missing",
         key=None, environ={"HTTP_X_ENVIRONMENT_KEY": "$client_key\x00"}),
    Case("sdk-flags-unknown-feature", "GET", "/api/v1/flags/?feature=no_such_flag", 404,
         "Given feature not found"),
    Case("sdk-flags-feature-crlf-injection", "GET",
         "/api/v1/flags/?feature=banner%0D%0ASet-Cookie:%20pwned=1", 404,
         "Given feature not found"),
    Case("sdk-document-client-key", "GET", "/api/v1/environment-document/", 403,
         "needs a server-side key"),
    Case("sdk-document-revoked-key", "GET", "/api/v1/environment-document/", 403,
         INVALID_KEY, key="$revoked_key"),
    # --- GET /identities/
    Case("sdk-identify-get-missing", "GET", IDENTIFY, 400, "identifier: expected a string"),
    Case("sdk-identify-get-empty", "GET", IDENTIFY + "?identifier=", 400, "must not be empty"),
    Case("sdk-identify-get-2001-chars", "GET", IDENTIFY + "?identifier=" + "x" * 2001, 400,
         "at most 2000 characters"),
    Case("sdk-identify-get-nul", "GET", IDENTIFY + "?identifier=ali%00ce", 400,
         "must not contain NUL"),
    # --- POST /identities/: wrong types
    Case("sdk-identify-identifier-int", "POST", IDENTIFY, 400, "identifier: expected a string",
         json={"identifier": 42}),
    Case("sdk-identify-identifier-list", "POST", IDENTIFY, 400, "identifier: expected a string",
         json={"identifier": ["alice"]}),
    Case("sdk-identify-identifier-null", "POST", IDENTIFY, 400, "identifier: expected a string",
         json={"identifier": None}),
    Case("sdk-identify-identifier-missing", "POST", IDENTIFY, 400,
         "identifier: this field is required", json={"traits": []}),
    Case("sdk-identify-body-list", "POST", IDENTIFY, 400, "Expected a JSON object",
         json=[{"identifier": "alice"}]),
    Case("sdk-identify-traits-object", "POST", IDENTIFY, 400, "traits: expected a list",
         json=_identify(traits={"plan": "pro"})),
    Case("sdk-identify-trait-value-object", "POST", IDENTIFY, 400,
         "traits[0].trait_value: expected a string, integer, float, boolean or null",
         json=_identify(traits=[_trait(value={"a": 1})])),
    Case("sdk-identify-trait-value-list", "POST", IDENTIFY, 400,
         "traits[0].trait_value: expected a string",
         json=_identify(traits=[_trait(value=[1, 2])])),
    Case("sdk-identify-trait-key-empty", "POST", IDENTIFY, 400,
         "traits[0].trait_key: must have 1 to 200 characters",
         json=_identify(traits=[_trait(key="")])),
    Case("sdk-identify-trait-key-201-chars", "POST", IDENTIFY, 400,
         "traits[0].trait_key: must have 1 to 200 characters",
         json=_identify(traits=[_trait(key="k" * 201)])),
    Case("sdk-identify-trait-key-int", "POST", IDENTIFY, 400, "trait_key: expected a string",
         json=_identify(traits=[_trait(key=7)])),
    Case("sdk-identify-101-traits", "POST", IDENTIFY, 400, "at most 100 traits",
         json=_identify(traits=[_trait(key=f"k{i}") for i in range(101)])),
    Case("sdk-identify-trait-value-2001-chars", "POST", IDENTIFY, 400, "at most 2000 characters",
         json=_identify(traits=[_trait(value="v" * 2001)])),
    Case("sdk-identify-transient-string", "POST", IDENTIFY, 400, "transient: expected a boolean",
         json=_identify(transient="yes")),
    Case("sdk-identify-nul-identifier", "POST", IDENTIFY, 400, "must not contain NUL",
         json={"identifier": "mal\x00lory"}),
    Case("sdk-identify-nul-trait-key", "POST", IDENTIFY, 400, "must not contain NUL",
         json=_identify(traits=[_trait(key="pl\x00an")])),
    Case("sdk-identify-nul-trait-value", "POST", IDENTIFY, 400, "must not contain NUL",
         json=_identify(traits=[_trait(value="p\x00ro")])),
    # --- POST /identities/: bodies that are not (acceptable) JSON
    Case("sdk-identify-empty-body", "POST", IDENTIFY, 400, "Request body is empty", body=b""),
    Case("sdk-identify-not-json", "POST", IDENTIFY, 400, "Malformed JSON",
         body=b"identifier=mallory", headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Case("sdk-identify-invalid-utf8", "POST", IDENTIFY, 400, "Malformed JSON",
         body=b'{"identifier": "mal\xff\xfelory"}'),
    Case("sdk-identify-deep-nesting", "POST", IDENTIFY, 400, "Malformed JSON", body=DEEP),
    Case("sdk-identify-deep-nesting-exact-parser", "POST", IDENTIFY, 400, "nested too deeply",
         body=DEEP_EXACT),
    Case("sdk-identify-1e999", "POST", IDENTIFY, 400, "Malformed JSON",
         body=b'{"identifier": "mallory", "traits": [{"trait_key": "n", "trait_value": 1e999}]}'),
    Case("sdk-identify-integer-10e400", "POST", IDENTIFY, 400, "integer out of the 64-bit range",
         body=b'{"identifier": "mallory", "traits": [{"trait_key": "n", "trait_value": 1'
         + b"0" * 400 + b"}]}"),
    Case("sdk-identify-integer-minus-2-64", "POST", IDENTIFY, 400,
         "integer out of the 64-bit range",
         body=b'{"identifier": "mallory", "traits": [{"trait_key": "n", "trait_value": '
         + str(-(2**64)).encode() + b"}]}"),
    Case("sdk-identify-nan-literal", "POST", IDENTIFY, 400, "Malformed JSON",
         body=b'{"identifier": "mallory", "traits": [{"trait_key": "n", "trait_value": NaN}]}'),
    Case("sdk-identify-infinity-exact-parser", "POST", IDENTIFY, 400, "Infinity is not valid JSON",
         body=b'{"identifier": "mallory", "n": 1234567890123456789, "traits": '
         b'[{"trait_key": "n", "trait_value": -Infinity}]}'),
    Case("sdk-identify-duplicate-key-last-wins-bad", "POST", IDENTIFY, 400,
         "identifier: expected a string", body=b'{"identifier": "mallory", "identifier": [1]}'),
    Case("sdk-identify-oversized-body", "POST", IDENTIFY, 413, "exceeds the capacity limit",
         body=_kib(65)),
    # --- POST /traits/ and PUT /traits/bulk/
    Case("sdk-trait-identity-missing", "POST", TRAITS, 400,
         "identity: expected an object with an identifier", json=_trait()),
    Case("sdk-trait-identifier-int", "POST", TRAITS, 400,
         "identity.identifier: expected a string",
         json={**_trait(), "identity": {"identifier": 5}}),
    Case("sdk-trait-value-object", "POST", TRAITS, 400, "body.trait_value: expected a string",
         json=_trait_write(trait_value={"nested": True})),
    Case("sdk-trait-key-missing", "POST", TRAITS, 400, "body.trait_key: this field is required",
         json={"identity": {"identifier": "mallory"}, "trait_value": 1}),
    Case("sdk-trait-transient-int", "POST", TRAITS, 400, "body.transient: expected a boolean",
         json=_trait_write(transient=1)),
    Case("sdk-trait-oversized-body", "POST", TRAITS, 413, "exceeds the capacity limit",
         body=_kib(80)),
    Case("sdk-bulk-not-a-list", "PUT", BULK, 400, "Expected a JSON list of traits",
         json=_trait_write()),
    Case("sdk-bulk-101-items", "PUT", BULK, 400, "at most 100 traits",
         json=[_trait_write(trait_key=f"k{i}") for i in range(101)]),
    Case("sdk-bulk-second-item-bad-key", "PUT", BULK, 400,
         "[1].trait_key: must have 1 to 200 characters",
         json=[_trait_write(), _trait_write(trait_key="k" * 201)]),
    Case("sdk-bulk-huge-float", "PUT", BULK, 400, "Malformed JSON",
         body=b'[{"identity": {"identifier": "m"}, "trait_key": "n", "trait_value": -1e999}]'),
    # --- OFREP
    Case("ofrep-missing-key", "POST", OFREP_ONE, 401, "Missing environment key", key=None,
         json={"context": {"targetingKey": "alice"}}),
    Case("ofrep-unknown-bearer", "POST", OFREP_ONE, 403, "Invalid environment key", key=None,
         headers={"Authorization": "Bearer nope-nope-nope"}, json={"context": {}}),
    Case("ofrep-bearer-crlf-injection", "POST", OFREP_ALL, 403, "Invalid environment key",
         key=None, environ={"HTTP_AUTHORIZATION": "Bearer $client_key" + CRLF_COOKIE},
         json={"context": {}}),
    Case("ofrep-body-not-object", "POST", OFREP_ONE, 400, "must be a JSON object", key=None,
         headers=BEARER, json=[1, 2]),
    Case("ofrep-context-string", "POST", OFREP_ONE, 400, "context must be a JSON object",
         key=None, headers=BEARER, json={"context": "alice"}),
    Case("ofrep-targeting-key-int", "POST", OFREP_ONE, 400,
         "context.targetingKey: expected a string", key=None, headers=BEARER,
         json={"context": {"targetingKey": 12}}),
    Case("ofrep-targeting-key-nul", "POST", OFREP_ONE, 400, "must not contain NUL", key=None,
         headers=BEARER, json={"context": {"targetingKey": "al\x00ice"}}),
    Case("ofrep-context-value-object", "POST", OFREP_ONE, 400,
         "context.plan: expected a string, integer, float, boolean or null", key=None,
         headers=BEARER, json={"context": {"targetingKey": "alice", "plan": {"x": 1}}}),
    Case("ofrep-malformed-json", "POST", OFREP_ONE, 400, "Malformed JSON", key=None,
         headers=BEARER, body=b'{"context": {'),
    Case("ofrep-deep-nesting", "POST", OFREP_ALL, 400, "Malformed JSON", key=None, headers=BEARER,
         body=DEEP),
    Case("ofrep-nan-literal", "POST", OFREP_ALL, 400, "Malformed JSON", key=None, headers=BEARER,
         body=b'{"context": {"targetingKey": "alice", "score": NaN}}'),
    Case("ofrep-huge-integer", "POST", OFREP_ALL, 400, "integer out of the 64-bit range",
         key=None, headers=BEARER,
         body=b'{"context": {"targetingKey": "alice", "n": 1' + b"0" * 400 + b"}}"),
    Case("ofrep-102-context-fields", "POST", OFREP_ALL, 400, "at most 100 fields", key=None,
         headers=BEARER, json={"context": {f"k{i}": i for i in range(102)}}),
    Case("ofrep-unknown-flag", "POST", "/ofrep/v1/evaluate/flags/no_such_flag", 404,
         "No flag named 'no_such_flag'", key=None, headers=BEARER,
         json={"context": {"targetingKey": "alice"}}),
    Case("ofrep-oversized-body", "POST", OFREP_ALL, 413, "exceeds the capacity limit", key=None,
         headers=BEARER, body=b'{"context": {"targetingKey": "' + b"x" * 70_000 + b'"}}'),
]

# ------------------------------------------------------------------------------- dashboard

ENV = "/environments/$env"
FEATURES = ENV + "/features"
BANNER = FEATURES + "/$banner"
CHECKOUT = FEATURES + "/$checkout"
SEGMENTS = ENV + "/segments"
SEGMENT = SEGMENTS + "/$segment"
USERS = ENV + "/users"
ALICE = ENV + "/identities/$alice"
ALICE_BANNER = ALICE + "/flags/$banner"
ALICE_CHECKOUT = ALICE + "/flags/$checkout"


def _feature(**extra: str) -> dict[str, str]:
    return {"name": "fresh_flag", "type": "STANDARD", "value_kind": "null", "value": "", **extra}


def _option(**extra: str) -> dict[str, str]:
    return {"value_kind": "string", "value": "green", "default_allocation": "0", **extra}


def _segment(name: str = "Fresh segment", **extra: str) -> dict[str, str]:
    form = {
        "name": name,
        "description": "",
        "match": "ALL",
        "groups-0-type": "ANY",
        "groups-0-conditions-0-property_": "plan",
        "groups-0-conditions-0-operator": "EQUAL",
        "groups-0-conditions-0-value": "pro",
        "version": "$segment_version",
    }
    form.update(extra)
    return form


def _many_groups(count: int) -> dict[str, str]:
    form = _segment()
    for i in range(count):
        form |= {
            f"groups-{i}-type": "ANY",
            f"groups-{i}-conditions-0-property_": f"p{i}",
            f"groups-{i}-conditions-0-operator": "EQUAL",
            f"groups-{i}-conditions-0-value": "x",
        }
    return form


def _seg_override(**extra: str) -> dict[str, str]:
    return {"feature_id": "$checkout", "enabled": "y", "value_type": "string", "value": "x",
            "priority": "", **extra}  # fmt: skip


def _seg_override_edit(**extra: str) -> dict[str, str]:
    return _seg_override(feature_id="$banner", version="$seg_override_version", **extra)


def _trait_form(**extra: str) -> dict[str, str]:
    return {"key": "plan", "value": "pro", "value_type": "infer", **extra}


def _override_value(**extra: str) -> dict[str, str]:
    return {"value": "x", "value_type": "string", "expires": "never", "version": "0", **extra}


def _bulk(**extra: str) -> dict[str, str]:
    return {"q": "", "action": "override", "feature_id": "$banner", "enabled": "y",
            "value_type": "string", "value": "x", **extra}  # fmt: skip


def _login(**extra: str) -> dict[str, str]:
    return {"email": "admin@example.com", "password": "password123", **extra}


LOGIN_CASES = [
    Case("login-wrong-password", "POST", "/login", 422, "Invalid email or password",
         form=_login(password="guess")),
    Case("login-empty-fields", "POST", "/login", 422, "This field is required",
         form={"email": "", "password": ""}),
    Case("login-email-255-chars", "POST", "/login", 422, "cannot be longer than 254 characters",
         form=_login(email="a" * 243 + "@example.com")),
    Case("login-email-nul", "POST", "/login", 422, "must not contain NUL characters",
         form=_login(email="admin@example.com\x00")),
    Case("login-password-nul", "POST", "/login", 422, "must not contain NUL characters",
         form=_login(password="password123\x00")),
]

FEATURE_CASES = [
    Case("feature-create-duplicate-name", "POST", FEATURES, 422,
         "already has a feature named “BANNER”", form=_feature(name="BANNER"), htmx=True),
    Case("feature-create-name-with-spaces", "POST", FEATURES, 422, "Use 1 to 150 letters",
         form=_feature(name="dark mode"), htmx=True),
    Case("feature-create-name-151-chars", "POST", FEATURES, 422,
         "cannot be longer than 150 characters", form=_feature(name="f" * 151), htmx=True),
    Case("feature-create-name-nul", "POST", FEATURES, 422, "must not contain NUL characters",
         form=_feature(name="fla\x00g"), htmx=True),
    Case("feature-create-unknown-type", "POST", FEATURES, 422, "Not a valid choice",
         form=_feature(type="EXPLOSIVE"), htmx=True),
    Case("feature-create-integer-not-a-number", "POST", FEATURES, 422, "is not a whole number",
         form=_feature(value_kind="integer", value="12abc"), htmx=True),
    Case("feature-create-integer-10e400", "POST", FEATURES, 422, "Integers must lie within",
         form=_feature(value_kind="integer", value="1" + "0" * 400), htmx=True),
    Case("feature-create-boolean-maybe", "POST", FEATURES, 422, "A boolean value is “true”",
         form=_feature(value_kind="boolean", value="maybe"), htmx=True),
    Case("feature-create-description-nul", "POST", FEATURES, 422,
         "must not contain NUL characters", form=_feature(description="a\x00b"), htmx=True),
    Case("feature-create-value-nul", "POST", FEATURES, 422, "must not contain NUL characters",
         form=_feature(value_kind="string", value="a\x00b"), htmx=True),
    Case("feature-create-oversized-form", "POST", FEATURES, 413, "larger than we accept",
         form=_feature(description="d" * 70_000), htmx=True),
    Case("feature-edit-duplicate-name", "POST", BANNER + "/edit", 422,
         "already has a feature named “checkout”", form=_feature(name="checkout"), htmx=True),
    Case("feature-edit-unknown-id", "POST", FEATURES + "/999999/edit", 404,
         "No such feature in this project", form=_feature(), htmx=True),
    Case("feature-edit-other-project", "POST", FEATURES + "/$foreign_feature/edit", 404,
         "No such feature in this project", form=_feature(), htmx=True),
    Case("feature-edit-standard-with-options", "POST", CHECKOUT + "/edit", 422,
         "Delete the multivariate options", form=_feature(name="checkout"), htmx=True),
    Case("feature-value-integer-nan", "PUT", BANNER + "/value", 422, "“NaN” is not a whole number",
         form={"value_kind": "integer", "value": "NaN", "version": "$banner_version"}, htmx=True),
    Case("feature-value-integer-5000-digits", "PUT", BANNER + "/value", 422,
         "Integers must lie within",
         form={"value_kind": "integer", "value": "7" * 5000, "version": "$banner_version"},
         htmx=True),
    Case("feature-value-unknown-kind", "PUT", BANNER + "/value", 422, "Not a valid choice",
         form={"value_kind": "float", "value": "1.5", "version": "$banner_version"}, htmx=True),
    Case("feature-value-nul", "PUT", BANNER + "/value", 422, "must not contain NUL characters",
         form={"value_kind": "string", "value": "\x00", "version": "$banner_version"}, htmx=True),
    Case("feature-toggle-unknown-id", "POST", FEATURES + "/999999/enabled", 404,
         "No such feature in this project", form={"enabled": "true", "version": "1"}, htmx=True),
    Case("feature-delete-other-project", "DELETE", FEATURES + "/$foreign_feature", 404,
         "No such feature in this project", htmx=True),
    # --- multivariate options and allocations
    Case("option-create-negative", "POST", CHECKOUT + "/options", 422,
         "A percentage cannot be negative", form=_option(default_allocation="-5"), htmx=True),
    Case("option-create-nan", "POST", CHECKOUT + "/options", 422, "not NaN or infinity",
         form=_option(default_allocation="nan"), htmx=True),
    Case("option-create-over-100-total", "POST", CHECKOUT + "/options", 422,
         "add up to 110%; at most 100% is allowed", form=_option(default_allocation="50"),
         htmx=True),
    Case("option-create-on-standard-feature", "POST", BANNER + "/options", 422,
         "Only multivariate features have options", form=_option(), htmx=True),
    Case("option-create-integer-text", "POST", CHECKOUT + "/options", 422,
         "is not a whole number", form=_option(value_kind="integer", value="1e3"), htmx=True),
    Case("option-create-value-nul", "POST", CHECKOUT + "/options", 422,
         "must not contain NUL characters", form=_option(value="gr\x00een"), htmx=True),
    Case("option-delete-unknown-id", "DELETE", CHECKOUT + "/options/999999", 404,
         "No such option for this feature", htmx=True),
    Case("option-delete-other-feature", "DELETE", BANNER + "/options/$opt1", 404,
         "No such option for this feature", htmx=True),
    Case("option-update-integer-text", "PUT", CHECKOUT + "/options/$opt1", 422,
         "is not a whole number", form={"value_kind": "integer", "value": "12 monkeys"},
         htmx=True),
    Case("option-update-value-nul", "PUT", CHECKOUT + "/options/$opt1", 422,
         "must not contain NUL characters", form={"value_kind": "string", "value": "r\x00ed"},
         htmx=True),
    Case("option-update-huge-integer", "PUT", CHECKOUT + "/options/$opt1", 422,
         "Integers must lie within", form={"value_kind": "integer", "value": "9" * 5000},
         htmx=True),
    Case("option-update-unknown-id", "PUT", CHECKOUT + "/options/999999", 404,
         "No such option for this feature", form={"value_kind": "string", "value": "x"},
         htmx=True),
    Case("allocations-negative", "PUT", CHECKOUT + "/allocations", 422,
         "A percentage cannot be negative",
         form={"allocations-0-option_id": "$opt1", "allocations-0-percentage": "-1",
               "version": "$checkout_version"}, htmx=True),
    Case("allocations-nan", "PUT", CHECKOUT + "/allocations", 422, "not NaN or infinity",
         form={"allocations-0-option_id": "$opt1", "allocations-0-percentage": "NaN",
               "version": "$checkout_version"}, htmx=True),
    Case("allocations-infinity", "PUT", CHECKOUT + "/allocations", 422, "not NaN or infinity",
         form={"allocations-0-option_id": "$opt1", "allocations-0-percentage": "inf",
               "version": "$checkout_version"}, htmx=True),
    Case("allocations-total-over-100", "PUT", CHECKOUT + "/allocations", 422,
         "add up to 110%",
         form={"allocations-0-option_id": "$opt1", "allocations-0-percentage": "60",
               "allocations-1-option_id": "$opt2", "allocations-1-percentage": "50",
               "version": "$checkout_version"},
         htmx=True),  # fmt: skip
    Case("allocations-unknown-option", "PUT", CHECKOUT + "/allocations", 422,
         "An option no longer exists",
         form={"allocations-0-option_id": "999999", "allocations-0-percentage": "10",
               "version": "$checkout_version"}, htmx=True),
    Case("allocations-option-of-other-project", "PUT", CHECKOUT + "/allocations", 422,
         "An option no longer exists",
         form={"allocations-0-option_id": "$foreign_opt", "allocations-0-percentage": "10",
               "version": "$checkout_version"}, htmx=True),
    Case("allocations-option-id-text", "PUT", CHECKOUT + "/allocations", 422,
         "Option: “abc” is not a valid id",
         form={"allocations-0-option_id": "abc", "allocations-0-percentage": "10",
               "version": "$checkout_version"}, htmx=True),
    # --- segment override priorities and identity overrides of a feature
    Case("reorder-ids-not-numbers", "POST", BANNER + "/segment-overrides/order", 422,
         "Segment override: “first” is not a valid id",
         form={"order": "first,second", "expected": "$seg_override"}, htmx=True),
    Case("reorder-unknown-override", "POST", BANNER + "/segment-overrides/order", 422,
         "must list each segment override once",
         form={"order": "999999", "expected": "$seg_override"}, htmx=True),
    Case("reorder-stale-list", "POST", BANNER + "/segment-overrides/order", 409,
         "changed", form={"order": "$seg_override", "expected": ""}, htmx=True),
    Case("identity-override-remove-unknown", "DELETE",
         BANNER + "/identity-overrides/999999", 404, "This identity override no longer exists",
         form={"version": "1"}, htmx=True),
]

SEGMENT_CASES = [
    Case("segment-create-empty-name", "POST", SEGMENTS + "/new", 422, "This field is required",
         form=_segment(name=""), htmx=True),
    Case("segment-create-name-201-chars", "POST", SEGMENTS + "/new", 422,
         "cannot be longer than 200 characters", form=_segment(name="s" * 201), htmx=True),
    Case("segment-create-name-nul", "POST", SEGMENTS + "/new", 422,
         "must not contain NUL characters", form=_segment(name="Pro\x00users"), htmx=True),
    Case("segment-create-duplicate-name", "POST", SEGMENTS + "/new", 422,
         "already has a segment named “pro USERS”", form=_segment(name="pro USERS"), htmx=True),
    Case("segment-create-unknown-operator", "POST", SEGMENTS + "/new", 422,
         "operator: Not a valid choice",
         form=_segment(**{"groups-0-conditions-0-operator": "DROP_TABLE"}), htmx=True),
    Case("segment-create-invalid-regex", "POST", SEGMENTS + "/new", 422, "regular expression",
         form=_segment(**{"groups-0-conditions-0-operator": "REGEX",
                          "groups-0-conditions-0-value": "(unclosed"}), htmx=True),  # fmt: skip
    Case("segment-create-modulo-garbage", "POST", SEGMENTS + "/new", 422, "divisor|remainder",
         form=_segment(**{"groups-0-conditions-0-operator": "MODULO",
                          "groups-0-conditions-0-value": "abc"}), htmx=True),  # fmt: skip
    Case("segment-create-condition-value-nul", "POST", SEGMENTS + "/new", 422,
         "must not contain NUL characters",
         form=_segment(**{"groups-0-conditions-0-value": "p\x00ro"}), htmx=True),
    Case("segment-create-51-groups", "POST", SEGMENTS + "/new", 422, "at most 50 groups",
         form=_many_groups(51), htmx=True),
    Case("segment-create-101-conditions", "POST", SEGMENTS + "/new", 422,
         "A group has at most 100 conditions",
         form=_segment(**{f"groups-0-conditions-{i}-{part}": value for i in range(101)
                          for part, value in (("property_", "p"), ("operator", "EQUAL"),
                                              ("value", str(i)))}), htmx=True),  # fmt: skip
    Case("segment-create-no-groups", "POST", SEGMENTS + "/new", 422,
         "Add at least one group with a condition",
         form={"name": "Empty", "description": "", "match": "ALL"}, htmx=True),
    Case("segment-edit-stale-version", "PUT", SEGMENT + "/edit", 409, "has changed since you",
         form=_segment(name="Pro users", version="0"), htmx=True, audited_rejection=True),
    Case("segment-edit-version-text", "PUT", SEGMENT + "/edit", 409, "has changed since you",
         form=_segment(name="Pro users", version="latest"), htmx=True, audited_rejection=True),
    Case("segment-edit-duplicate-name", "PUT", SEGMENT + "/edit", 422,
         "already has a segment named", form=_segment(name="Beta testers"), htmx=True),
    Case("segment-edit-unknown-id", "PUT", SEGMENTS + "/999999/edit", 404, "Segment not found",
         form=_segment(), htmx=True),
    Case("segment-edit-other-project", "PUT", SEGMENTS + "/$foreign_segment/edit", 404,
         "Segment not found", form=_segment(), htmx=True),
    Case("segment-delete-unknown-id", "DELETE", SEGMENTS + "/999999", 404, "Segment not found",
         htmx=True),
    # --- segment overrides
    Case("segment-override-priority-nan", "POST", SEGMENT + "/overrides", 422,
         "priority: Not a valid integer value", form=_seg_override(priority="NaN"), htmx=True),
    Case("segment-override-priority-huge", "POST", SEGMENT + "/overrides", 422,
         "priority: Number must be between", form=_seg_override(priority=str(2**40)), htmx=True),
    Case("segment-override-priority-text", "POST", SEGMENT + "/overrides", 422,
         "priority: Not a valid integer value", form=_seg_override(priority="first"), htmx=True),
    Case("segment-override-unknown-feature", "POST", SEGMENT + "/overrides", 422,
         "Choose a feature of this project", form=_seg_override(feature_id="999999"), htmx=True),
    Case("segment-override-feature-other-project", "POST", SEGMENT + "/overrides", 422,
         "Choose a feature of this project", form=_seg_override(feature_id="$foreign_feature"),
         htmx=True),
    Case("segment-override-duplicate", "POST", SEGMENT + "/overrides", 422,
         "This segment already overrides banner", form=_seg_override(feature_id="$banner"),
         htmx=True),
    Case("segment-override-integer-huge", "POST", SEGMENT + "/overrides", 422,
         "Integers must lie within", form=_seg_override(value_type="integer", value="9" * 40),
         htmx=True),
    Case("segment-override-boolean-garbage", "POST", SEGMENT + "/overrides", 422,
         "A boolean value is “true” or “false”",
         form=_seg_override(value_type="boolean", value="1"),
         htmx=True),
    Case("segment-override-value-nul", "POST", SEGMENT + "/overrides", 422,
         "must not contain NUL characters", form=_seg_override(value="a\x00"), htmx=True),
    Case("segment-override-allocation-nan", "POST", SEGMENT + "/overrides", 422,
         "percentage: Number must be between 0 and 100",
         form=_seg_override(**{"allocations-0-option_id": "$opt1",
                               "allocations-0-percentage": "nan"}), htmx=True),  # fmt: skip
    Case("segment-override-allocations-over-100", "POST", SEGMENT + "/overrides", 422,
         "Allocations add up to more than 100%",
         form=_seg_override(**{"allocations-0-option_id": "$opt1", "allocations-0-percentage": "70",
                               "allocations-1-option_id": "$opt2",
                               "allocations-1-percentage": "40"}), htmx=True),  # fmt: skip
    Case("segment-override-allocation-foreign-option", "POST", SEGMENT + "/overrides", 422,
         "Allocations must name this feature's options",
         form=_seg_override(**{"allocations-0-option_id": "$foreign_opt",
                               "allocations-0-percentage": "10"}), htmx=True),  # fmt: skip
    Case("segment-override-update-unknown-id", "PUT", SEGMENT + "/overrides/999999", 404,
         "Segment override not found", form=_seg_override_edit(), htmx=True),
    Case("segment-override-update-other-environment", "PUT",
         SEGMENT + "/overrides/$seg_override_env2", 404, "Segment override not found",
         form=_seg_override_edit(), htmx=True),
    Case("segment-override-update-priority-text", "PUT", SEGMENT + "/overrides/$seg_override",
         422, "priority: Not a valid integer value",
         form=_seg_override_edit(priority="1.5"), htmx=True),
]

IDENTITY_CASES = [
    # --- Users page: create, delete, columns, bulk actions, search
    Case("identity-create-duplicate", "POST", USERS, 422, "Already exist or repeated",
         form={"identifiers": "alice"}, htmx=True),
    Case("identity-create-blank", "POST", USERS, 422, "Enter at least one identifier",
         form={"identifiers": "  \n \n"}, htmx=True),
    Case("identity-create-2001-chars", "POST", USERS, 422, "longer than 2,000 characters",
         form={"identifiers": "i" * 2001}, htmx=True),
    Case("identity-create-nul", "POST", USERS, 422, "must not contain NUL characters",
         form={"identifiers": "mal\x00lory"}, htmx=True),
    Case("identity-create-1001-lines", "POST", USERS, 422, "Paste at most 1,000 identifiers",
         form={"identifiers": "\n".join(f"u{i}" for i in range(1001))}, htmx=True),
    Case("identity-delete-unknown-id", "DELETE", USERS + "/999999", 404,
         "does not exist in this environment", htmx=True),
    Case("identity-delete-other-environment", "DELETE", USERS + "/$bob", 404,
         "does not exist in this environment", htmx=True),
    Case("columns-nine-keys", "POST", USERS + "/columns", 422, "at most 8 trait columns",
         form=[("columns", f"k{i}") for i in range(9)], htmx=True),
    Case("columns-key-201-chars", "POST", USERS + "/columns", 422,
         "A trait key has at most 200 characters", form={"columns": "k" * 201}, htmx=True),
    Case("columns-key-nul", "POST", USERS + "/columns", 422, "must not contain NUL characters",
         form={"columns": "pl\x00an"}, htmx=True),
    Case("bulk-preview-unknown-feature", "POST", USERS + "/bulk/preview", 422,
         "Choose a feature of this project", form=_bulk(feature_id="999999"), htmx=True),
    Case("bulk-preview-feature-other-project", "POST", USERS + "/bulk/preview", 422,
         "Choose a feature of this project", form=_bulk(feature_id="$foreign_feature"),
         htmx=True),
    Case("bulk-preview-feature-text", "POST", USERS + "/bulk/preview", 422,
         "Feature: “banner” is not a valid id", form=_bulk(feature_id="banner"), htmx=True),
    Case("bulk-preview-unknown-action", "POST", USERS + "/bulk/preview", 422,
         "Not a valid choice", form=_bulk(action="drop_database"), htmx=True),
    Case("bulk-preview-malformed-query", "POST", USERS + "/bulk/preview", 422, "Unclosed quote",
         form=_bulk(q='plan = "pro'), htmx=True),
    Case("bulk-apply-without-preview", "POST", USERS + "/bulk", 422,
         "Review the count first", form=_bulk(), htmx=True),
    Case("bulk-apply-stale-count", "POST", USERS + "/bulk", 422,
         "The search now matches 1 identity, not 5", form=_bulk(expected="5"), htmx=True),
    Case("bulk-apply-negative-expected", "POST", USERS + "/bulk", 422,
         "Review the count first", form=_bulk(expected="-1"), htmx=True),
    Case("bulk-apply-integer-huge", "POST", USERS + "/bulk", 422, "Integers must lie within",
         form=_bulk(value_type="integer", value="9" * 30, expected="1"), htmx=True),
    Case("bulk-apply-float-infinity", "POST", USERS + "/bulk", 422, "Not a valid choice",
         form=_bulk(value_type="float", value="inf", expected="1"), htmx=True),
    Case("bulk-apply-value-nul", "POST", USERS + "/bulk", 422, "must not contain NUL characters",
         form=_bulk(value="x\x00", expected="1"), htmx=True),
    Case("users-search-malformed", "GET", USERS + '?q=plan%20%3D%20%22pro', 422,
         "Unclosed quote", htmx=True),
    Case("users-search-nul", "GET", USERS + "?q=al%00ice", 400, "must not contain NUL", htmx=True),
    Case("features-search-nul", "GET", FEATURES + "?q=ban%00ner", 400, "must not contain NUL",
         htmx=True),
    Case("segments-search-nul", "GET", SEGMENTS + "?q=Pro%00", 400, "must not contain NUL",
         htmx=True),
    Case("segment-members-search-nul", "GET", SEGMENT + "/members?q=al%00", 400,
         "must not contain NUL", htmx=True),
    # --- Identity page: traits
    Case("trait-add-empty-key", "POST", ALICE + "/traits", 422, "This field is required",
         form=_trait_form(key=""), htmx=True),
    Case("trait-add-key-201-chars", "POST", ALICE + "/traits", 422,
         "cannot be longer than 200 characters", form=_trait_form(key="k" * 201), htmx=True),
    Case("trait-add-key-nul", "POST", ALICE + "/traits", 422, "must not contain NUL characters",
         form=_trait_form(key="pl\x00an"), htmx=True),
    Case("trait-add-value-nul", "POST", ALICE + "/traits", 422, "must not contain NUL characters",
         form=_trait_form(value="p\x00ro"), htmx=True),
    Case("trait-add-integer-text", "POST", ALICE + "/traits", 422, "is not a whole number",
         form=_trait_form(value="12.5", value_type="integer"), htmx=True),
    Case("trait-add-integer-huge-inferred", "POST", ALICE + "/traits", 422,
         "Integers must lie within", form=_trait_form(key="n", value="9" * 400), htmx=True),
    Case("trait-add-integer-huge-typed", "POST", ALICE + "/traits", 422,
         "Integers must lie within",
         form=_trait_form(key="n", value=str(2**63), value_type="integer"), htmx=True),
    Case("trait-add-float-nan", "POST", ALICE + "/traits", 422, "is not a finite number",
         form=_trait_form(value="nan", value_type="float"), htmx=True),
    Case("trait-add-float-inf", "POST", ALICE + "/traits", 422, "is not a finite number",
         form=_trait_form(value="inf", value_type="float"), htmx=True),
    Case("trait-add-float-1e999", "POST", ALICE + "/traits", 422, "is not a finite number",
         form=_trait_form(value="1e999", value_type="float"), htmx=True),
    Case("trait-add-boolean-yes", "POST", ALICE + "/traits", 422, "“true” or “false”",
         form=_trait_form(value="yes", value_type="boolean"), htmx=True),
    Case("trait-add-unknown-type", "POST", ALICE + "/traits", 422, "Not a valid choice",
         form=_trait_form(value_type="date"), htmx=True),
    Case("trait-add-unknown-identity", "POST", ENV + "/identities/999999/traits", 404,
         "No such identity", form=_trait_form(), htmx=True),
    Case("trait-add-identity-other-environment", "POST", ENV + "/identities/$bob/traits", 404,
         "No such identity", form=_trait_form(), htmx=True),
    Case("trait-edit-unknown-key", "PUT", ALICE + "/traits/no_such_trait", 404,
         "No trait “no_such_trait”", form={"value": "1", "value_type": "integer", "version": "x"},
         htmx=True),
    Case("trait-edit-integer-huge", "PUT", ALICE + "/traits/plan", 422,
         "Integers must lie within",
         form={"value": "-" + "9" * 25, "value_type": "integer", "version": "$plan_token"},
         htmx=True),
    Case("trait-edit-float-nan", "PUT", ALICE + "/traits/plan", 422, "is not a finite number",
         form={"value": "NaN", "value_type": "float", "version": "$plan_token"}, htmx=True),
    Case("trait-edit-value-nul", "PUT", ALICE + "/traits/plan", 422,
         "must not contain NUL characters",
         form={"value": "\x00", "value_type": "string", "version": "$plan_token"}, htmx=True),
    Case("trait-edit-key-nul-in-path", "PUT", ALICE + "/traits/pl%00an", 400,
         "must not contain NUL",
         form={"value": "1", "value_type": "integer", "version": "x"}, htmx=True),
    Case("trait-delete-unknown-key", "DELETE", ALICE + "/traits/no_such_trait", 404,
         "No trait “no_such_trait”", form={"version": "x"}, htmx=True),
    # --- Identity page: overrides
    Case("override-integer-text", "PUT", ALICE_BANNER + "/override", 422, "is not a whole number",
         form=_override_value(value="ten", value_type="integer"), htmx=True),
    Case("override-integer-huge", "PUT", ALICE_BANNER + "/override", 422,
         "Integers must lie within", form=_override_value(value="9" * 30, value_type="integer"),
         htmx=True),
    Case("override-boolean-garbage", "PUT", ALICE_BANNER + "/override", 422,
         "A boolean value is “true” or “false”",
         form=_override_value(value="on", value_type="boolean"),
         htmx=True),
    Case("override-json-invalid", "PUT", ALICE_BANNER + "/override", 422, "Not valid JSON",
         form=_override_value(value='{"a": ', value_type="json"), htmx=True),
    Case("override-json-deep", "PUT", ALICE_BANNER + "/override", 422,
         "Not valid JSON: nested too deeply",
         form=_override_value(value="[" * 5000 + "]" * 5000, value_type="json"), htmx=True),
    Case("override-json-nan", "PUT", ALICE_BANNER + "/override", 422,
         "NaN is not a JSON value",
         form=_override_value(value='{"score": NaN}', value_type="json"), htmx=True),
    Case("override-unknown-type", "PUT", ALICE_BANNER + "/override", 422, "Not a valid choice",
         form=_override_value(value_type="float"), htmx=True),
    Case("override-value-nul", "PUT", ALICE_BANNER + "/override", 422,
         "must not contain NUL characters", form=_override_value(value="x\x00"), htmx=True),
    Case("override-expiry-in-the-past", "PUT", ALICE_BANNER + "/override", 422,
         "The expiry must be in the future",
         form=_override_value(expires="custom", expires_at="2001-01-01T00:00"), htmx=True),
    Case("override-expiry-unknown", "PUT", ALICE_BANNER + "/override", 422, "Not a valid choice",
         form=_override_value(expires="2y"), htmx=True),
    Case("override-expiry-garbage-date", "POST", ALICE_BANNER + "/toggle", 422,
         "Not a valid datetime value",
         form={"expires": "custom", "expires_at": "soon", "version": "0"}, htmx=True),
    Case("override-toggle-unknown-feature", "POST", ALICE + "/flags/999999/toggle", 404,
         "No such feature", form={"expires": "never", "version": "0"}, htmx=True),
    Case("override-toggle-feature-other-project", "POST",
         ALICE + "/flags/$foreign_feature/toggle", 404, "No such feature",
         form={"expires": "never"}, htmx=True),
    Case("override-option-unknown", "POST", ALICE_CHECKOUT + "/option", 422,
         "Choose one of this feature's options", form={"option_id": "999999", "version": "0"},
         htmx=True),
    Case("override-option-of-other-project", "POST", ALICE_CHECKOUT + "/option", 422,
         "Choose one of this feature's options",
         form={"option_id": "$foreign_opt", "version": "0"}, htmx=True),
    Case("override-option-text", "POST", ALICE_CHECKOUT + "/option", 422,
         "Option: “green” is not a valid id", form={"option_id": "green", "version": "0"},
         htmx=True),
    Case("override-remove-none", "DELETE", ALICE + "/flags/$checkout/override", 404,
         "This identity has no override for this feature", form={"version": "0"}, htmx=True),
    Case("override-undo-unknown-event", "POST", ALICE + "/undo/999999", 404, "Nothing to undo",
         htmx=True),
    Case("link-unknown-email", "POST", ALICE + "/link", 422, "No user 'ghost@example.com'",
         form={"proof": "", "email": "ghost@example.com"}, htmx=True),
    Case("link-proof-nul", "POST", ALICE + "/link", 422, "must not contain NUL characters",
         form={"proof": "ali\x00ce", "email": ""}, htmx=True),
]

ENVIRONMENT_CASES = [
    Case("server-key-empty-name", "POST", ENV + "/server-keys", 422,
         "A key needs a name of 1 to 200 characters", form={"name": ""}),
    Case("server-key-name-201-chars", "POST", ENV + "/server-keys", 422,
         "A key needs a name of 1 to 200 characters", form={"name": "k" * 201}),
    Case("server-key-name-nul", "POST", ENV + "/server-keys", 422,
         "must not contain NUL characters", form={"name": "back\x00end"}),
    Case("server-key-revoke-other-environment", "POST", ENV + "/server-keys/$foreign_key/revoke",
         404, "No such server key in this environment", form={}),
    Case("settings-nul", "POST", ENV + "/settings", 422, "must not contain NUL characters",
         form={"production": "y\x00", "allow_client_traits": "y"}),
    Case("unknown-environment", "GET", "/environments/999999/features", 404, "Not found"),
    Case("audit-cursor-malformed", "GET", ENV + "/audit?cursor=yesterday", 422,
         "That page link is malformed", htmx=True),
    Case("audit-environment-other-project", "GET", ENV + "/audit?environment=$other_env", 422,
         "Choose an environment of this project", htmx=True),
    Case("audit-since-garbage", "GET", ENV + "/audit?since=last%20tuesday", 422,
         "Not a valid datetime value", htmx=True),
    Case("audit-identity-2001-chars", "GET", ENV + "/audit?identity=" + "i" * 2001, 422,
         "cannot be longer than 2000 characters", htmx=True),
    Case("audit-identity-nul", "GET", ENV + "/audit?identity=al%00ice", 400,
         "must not contain NUL characters", htmx=True),
]

# --- Erase (issue 18): a missing identity, another environment's, a stale bulk count
ERASE_CASES = [
    Case("erase-unknown-id", "POST", ENV + "/identities/999999/erase", 404,
         "does not exist in this environment", form={}, htmx=True),
    Case("erase-other-environment", "POST", ENV + "/identities/$bob/erase", 404,
         "does not exist in this environment", form={}, htmx=True),
    Case("bulk-erase-stale-count", "POST", USERS + "/bulk", 422,
         "The search now matches 1 identity, not 5", form={"q": "", "action": "erase",
                                                            "expected": "5"}, htmx=True),
    Case("bulk-erase-malformed-query", "POST", USERS + "/bulk/preview", 422, "Unclosed quote",
         form={"q": 'plan = "pro', "action": "erase"}, htmx=True),
]

PROJECT = "/projects/$project"
NEW_PROJECT = {"organisation_id": "$organisation"}
PROJECT_CASES = [
    Case("project-new-empty-name", "POST", "/projects", 422,
         "A project needs a name of 1 to 200 characters", form={**NEW_PROJECT, "name": "  "}),
    Case("project-new-name-201-chars", "POST", "/projects", 422, "A name of 1 to 200 characters",
         form={**NEW_PROJECT, "name": "p" * 201}),
    Case("project-new-name-nul", "POST", "/projects", 422, "must not contain NUL characters",
         form={**NEW_PROJECT, "name": "De\x00mo"}),
    Case("project-new-duplicate-name", "POST", "/projects", 422,
         "already has a project named “demo”", form={**NEW_PROJECT, "name": "demo"}),
    Case("project-new-organisation-text", "POST", "/projects", 422, "is not a valid id",
         form={"organisation_id": "acme", "name": "New"}),
    Case("project-new-organisation-unknown", "POST", "/projects", 403,
         "only to an organisation you administer", form={"organisation_id": "999999",
                                                         "name": "New"}),
    Case("project-rename-empty", "POST", PROJECT + "/rename", 422,
         "A project needs a name of 1 to 200 characters", form={"name": ""}),
    Case("project-delete-wrong-name", "POST", PROJECT + "/delete", 422,
         "Type the project's name exactly", form={"confirm": "demo"}),
    Case("environment-new-duplicate", "POST", PROJECT + "/environments", 422,
         "already has an environment named “staging”", form={"name": "staging"}),
    Case("environment-new-nul", "POST", PROJECT + "/environments", 422,
         "must not contain NUL characters", form={"name": "Q\x00A"}),
    Case("environment-rename-201-chars", "POST", ENV + "/rename", 422,
         "A name of 1 to 200 characters", form={"name": "e" * 201}),
    Case("environment-rename-taken", "POST", ENV + "/rename", 422,
         "already has an environment named “Staging”", form={"name": "Staging"}),
    Case("environment-delete-wrong-name", "POST", ENV + "/delete", 422,
         "Type the environment's name exactly", form={"confirm": "development "}),
    Case("environment-clone-empty-name", "POST", ENV + "/clone", 422,
         "An environment needs a name of 1 to 200 characters", form={"name": ""}),
    Case("environment-clone-taken", "POST", ENV + "/clone", 422,
         "already has an environment named “Staging”",
         form={"name": "Staging", "with_identities": "y"}),
    Case("compare-id-text", "GET", PROJECT + "/compare?left=dev&right=$env", 422,
         "is not a valid id"),
    Case("compare-id-unknown", "GET", PROJECT + "/compare?left=999999&right=$env", 422,
         "Choose two environments of this project"),
    Case("compare-id-out-of-range", "GET", PROJECT + "/compare?left=2147483648&right=$env", 422,
         "not found"),
    Case("compare-other-project", "GET", PROJECT + "/compare?left=$other_env&right=$env", 422,
         "Choose two environments of this project"),
]


# People (the world's admin is the only organisation admin, $admin_user).
INVITE = "/people/invitations"
GOOD_PASSWORD = "a long fresh passphrase"


def _change(**extra: str) -> dict[str, str]:
    return {"current_password": "password123", "new_password": GOOD_PASSWORD,
            "confirm": GOOD_PASSWORD, **extra}  # fmt: skip


PEOPLE_CASES = [
    Case("invite-malformed-email", "POST", INVITE, 422, "Invalid email address",
         form={"email": "not-an-email", "role_all": "viewer"}),
    Case("invite-empty-email", "POST", INVITE, 422, "Enter an email address",
         form={"email": "", "role_all": "viewer"}),
    Case("invite-email-255-chars", "POST", INVITE, 422, "254",
         form={"email": "a" * 243 + "@example.com", "role_all": "viewer"}),
    Case("invite-email-nul", "POST", INVITE, 422, "must not contain NUL characters",
         form={"email": "new\x00@example.com", "role_all": "viewer"}),
    Case("invite-existing-email", "POST", INVITE, 422, "already exists",
         form={"email": "ADMIN@example.com", "role_all": "viewer"}),
    Case("invite-no-role", "POST", INVITE, 422, "Choose a role on at least one project",
         form={"email": "new@example.com", "role_all": ""}),
    Case("invite-unknown-role", "POST", INVITE, 422, "Not a valid choice",
         form={"email": "new@example.com", "role_all": "owner"}),
    Case("invite-unknown-project-field", "POST", INVITE, 422,
         "Choose a role on at least one project",
         form={"email": "new@example.com", "role_999999": "admin"}),
    Case("roles-last-admin-demotes-self", "POST", "/people/$admin_user/roles", 409,
         "last organisation admin", form={"role_all": "editor"}),
    Case("disable-self", "POST", "/people/$admin_user/disable", 409,
         "cannot disable your own account", form={}),
    Case("people-unknown-account", "GET", "/people/999999", 404, "No such account"),
    Case("people-id-too-large", "GET", "/people/2147483648", 404, "Not found"),
    Case("invitation-unknown-token", "GET", "/invitation/not-a-token", 404,
         "This link is not valid"),
    Case("invitation-token-nul", "GET", "/invitation/abc%00def", 400, "must not contain NUL"),
    Case("reset-post-unknown-token", "POST", "/password-reset/x", 404,
         "This link is not valid", form={"password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD}),
    Case("password-wrong-current", "POST", "/account/password", 422,
         "The current password is not right", form=_change(current_password="wrong-one!!")),
    Case("password-too-short", "POST", "/account/password", 422, "at least 10 characters",
         form=_change(new_password="short1", confirm="short1")),
    Case("password-common", "POST", "/account/password", 422, "too common",
         form=_change(new_password="Password123!", confirm="Password123!")),
    Case("password-is-email", "POST", "/account/password", 422, "must not be your email",
         form=_change(new_password="admin@example.com", confirm="admin@example.com")),
    Case("password-confirm-differs", "POST", "/account/password", 422, "The passwords differ",
         form=_change(confirm=GOOD_PASSWORD + "!")),
    Case("password-1025-chars", "POST", "/account/password", 422, "1024",
         form=_change(new_password="p" * 1025, confirm="p" * 1025)),
    Case("password-nul", "POST", "/account/password", 422, "must not contain NUL characters",
         form=_change(new_password="long\x00password!", confirm="long\x00password!")),
]  # fmt: skip

# ------------------------------------------------------------------ experiments and events

EVENTS = "/api/v1/v1/events"


def _experiment(**extra: str) -> dict[str, str]:
    return {"name": "Colour test", "goal_event": "purchase", "segment_id": "", **extra}


EVENTS_CASES = [
    Case("events-no-key", "POST", EVENTS, 403, INVALID_KEY, key=None, json={"events": []}),
    Case("events-not-a-list", "POST", EVENTS, 400, "events: expected a list",
         json={"events": {"0": {"event": "x"}}}),
    Case("events-5001", "POST", EVENTS, 400, "at most 5,000 events",
         json={"events": [{"event": "x"}] * 5001}),
    Case("events-name-a-number", "POST", EVENTS, 400, "events[0].event: expected a string",
         json={"events": [{"event": 5, "identifier": "alice"}]}),
    Case("events-identifier-nul", "POST", EVENTS, 400, "must not contain NUL",
         json={"events": [{"event": "purchase", "identifier": "al\x00ice"}]}),
    Case("events-experiment-id-string", "POST", EVENTS, 400, "experiment_id: expected an integer",
         json={"events": [{"event": "x", "metadata": {"experiment_id": "1"}}]}),
    Case("events-deep-nesting", "POST", EVENTS, 400, "Malformed JSON", body=DEEP),
    Case("events-oversized-body", "POST", EVENTS, 413, "exceeds the capacity limit",
         body=b'{"events": [{"event": "' + b"x" * (1024 * 1024) + b'"}]}'),
]
EXPERIMENT_CASES = [
    Case("experiment-start-empty-name", "POST", CHECKOUT + "/experiments", 422,
         "Give the experiment a name", form=_experiment(name="")),
    Case("experiment-start-name-201-chars", "POST", CHECKOUT + "/experiments", 422,
         "cannot be longer than 200 characters", form=_experiment(name="n" * 201)),
    Case("experiment-start-name-nul", "POST", CHECKOUT + "/experiments", 422,
         "must not contain NUL characters", form=_experiment(name="a\x00b")),
    Case("experiment-start-goal-reserved", "POST", CHECKOUT + "/experiments", 422,
         "Names starting with $ are the SDK's own events",
         form=_experiment(goal_event="$flag_exposure")),
    Case("experiment-start-foreign-segment", "POST", CHECKOUT + "/experiments", 422,
         "No such segment in this project", form=_experiment(segment_id="$foreign_segment")),
    Case("experiment-start-segment-garbage", "POST", CHECKOUT + "/experiments", 422,
         "is not a valid id", form=_experiment(segment_id="abc")),
    Case("experiment-start-standard-feature", "POST", BANNER + "/experiments", 422,
         "Experiments need a multivariate feature", form=_experiment()),
    Case("experiment-start-foreign-feature", "POST", FEATURES + "/$foreign_feature/experiments",
         404, "No such feature in this project", form=_experiment()),
    Case("experiment-unknown", "GET", ENV + "/experiments/999999", 404, "No such experiment"),
    Case("experiment-stop-unknown", "POST", ENV + "/experiments/999999/stop", 404,
         "No such experiment", form={}),
]

DASHBOARD_CASES = (
    LOGIN_CASES + FEATURE_CASES + SEGMENT_CASES + IDENTITY_CASES + ENVIRONMENT_CASES
    + ERASE_CASES + PROJECT_CASES + PEOPLE_CASES
    + EXPERIMENT_CASES
)
# --- usage (analytics ingest, variant keys, the stale filter)
ANALYTICS = "/api/v1/analytics/flags/"
USAGE_CASES = [
    Case("analytics-negative-count", "POST", ANALYTICS, 400, "between 0 and",
         json={"banner": -1}),
    Case("analytics-float-count", "POST", ANALYTICS, 400, "must be an integer",
         json={"banner": 1.0}),
    Case("analytics-bool-count", "POST", ANALYTICS, 400, "must be an integer",
         json={"banner": True}),
    Case("analytics-not-object", "POST", ANALYTICS, 400, "JSON object", json=[1, 2]),
    Case("analytics-too-many-features", "POST", ANALYTICS, 400, "At most 1000",
         json={f"f{i}": 1 for i in range(1001)}),
    Case("analytics-huge-count", "POST", ANALYTICS, 400, "between 0 and",
         body=b'{"banner": 1' + b"0" * 400 + b"}"),
    Case("analytics-unknown-key", "POST", ANALYTICS, 403, INVALID_KEY, key="nope",
         json={"banner": 1}),
    Case("analytics-oversized-body", "POST", ANALYTICS, 413, "exceeds the capacity limit",
         body=b'{"' + b"x" * 70_000 + b'": 1}'),
    Case("option-create-key-control", "POST", CHECKOUT + "/options", 422,
         "names the feature", form=_option(key="control"), htmx=True),
    Case("option-create-key-spaces", "POST", CHECKOUT + "/options", 422,
         "letters, digits", form=_option(key="a b"), htmx=True),
    Case("option-update-key-taken", "PUT", CHECKOUT + "/options/$opt1", 422,
         "Another option", form={"value_kind": "string", "value": "x", "key": "$opt2_key"},
         htmx=True),
    Case("features-stale-days-zero", "GET", FEATURES + "?stale=unused&days=0", 422,
         "Between 1 and 3650 days"),
    Case("features-stale-days-text", "GET", FEATURES + "?stale=unused&days=many", 422,
         "Not a valid integer"),
    Case("features-stale-unknown-kind", "GET", FEATURES + "?stale=everything", 422,
         "Not a valid choice"),
]

CASES: list[Case] = SDK_CASES + EVENTS_CASES + DASHBOARD_CASES + USAGE_CASES


def encode(case: Case) -> bytes | None:
    """Return the raw body of a JSON case (None when it sends a form or nothing)."""
    if case.body is not None:
        return case.body
    if case.json is not NO_BODY:
        return json.dumps(case.json).encode()
    return None
