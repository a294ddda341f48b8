"""Every SDK API limit answers a clear 4xx JSON and changes nothing."""

import json

import pytest
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import Identity, Trait

# Database behaviour (limits a database refuses: NUL, 64-bit integers, surrogates):
# runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")


def _counts():
    return (
        db.session.scalar(select(func.count(Identity.id))),
        db.session.scalar(select(func.count(Trait.id))),
    )


def _trait(key="plan", value="pro"):
    return {"trait_key": key, "trait_value": value}


BAD_IDENTIFY = [
    ("identifier missing", {"traits": []}, 400, "identifier"),
    ("identifier empty", {"identifier": ""}, 400, "identifier"),
    ("identifier too long", {"identifier": "x" * 2001}, 400, "identifier"),
    ("identifier a number", {"identifier": 42}, 400, "identifier"),
    ("identifier with NUL", {"identifier": "a\x00b"}, 400, "identifier"),
    ("traits an object", {"identifier": "a", "traits": {"plan": "pro"}}, 400, "traits"),
    ("trait not an object", {"identifier": "a", "traits": ["plan"]}, 400, "traits[0]"),
    (
        "trait_key missing",
        {"identifier": "a", "traits": [{"trait_value": 1}]},
        400,
        "traits[0].trait_key",
    ),
    ("trait_key empty", {"identifier": "a", "traits": [_trait("")]}, 400, "traits[0].trait_key"),
    (
        "trait_key too long",
        {"identifier": "a", "traits": [_trait("k" * 201)]},
        400,
        "traits[0].trait_key",
    ),
    ("trait_key a number", {"identifier": "a", "traits": [_trait(5)]}, 400, "trait_key"),
    (
        "trait_value an object",
        {"identifier": "a", "traits": [_trait("k", {"x": 1})]},
        400,
        "traits[0].trait_value",
    ),
    ("trait_value a list", {"identifier": "a", "traits": [_trait("k", [1])]}, 400, "trait_value"),
    (
        "trait_value too long",
        {"identifier": "a", "traits": [_trait("k", "v" * 2001)]},
        400,
        "trait_value",
    ),
    ("trait_value huge int", {"identifier": "a", "traits": [_trait("k", 2**70)]}, 400, "64-bit"),
    (
        "101 traits",
        {"identifier": "a", "traits": [_trait(f"k{i}") for i in range(101)]},
        400,
        "at most 100",
    ),
    ("transient not a bool", {"identifier": "a", "transient": "yes"}, 400, "transient"),
    (
        "trait transient not a bool",
        {"identifier": "a", "traits": [{"trait_key": "k", "trait_value": 1, "transient": "yes"}]},
        400,
        "transient",
    ),
    ("body a list", [{"identifier": "a"}], 400, "JSON object"),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "mentions"), BAD_IDENTIFY, ids=[case[0] for case in BAD_IDENTIFY]
)
def test_identify__bad_input__is_refused_and_changes_nothing(
    client, sdk_env, name, body, status, mentions
):
    before = _counts()
    response = client.post(
        "/api/v1/identities/",
        data=json.dumps(body),
        content_type="application/json",
        headers=sdk_env.client(),
    )
    assert response.status_code == status, response.data
    assert mentions in response.get_json()["detail"]
    assert _counts() == before


@pytest.mark.parametrize(
    ("name", "raw", "mentions"),
    [
        ("malformed", b'{"identifier": ', "Malformed JSON"),
        ("empty", b"", "empty"),
        (
            "NaN",
            b'{"identifier": "a", "traits": [{"trait_key": "k", "trait_value": NaN}]}',
            "Malformed JSON",
        ),
        ("invalid UTF-8", b'{"identifier": "\xff\xfe"}', "Malformed JSON"),
        ("deep nesting", b"[" * 5000 + b"]" * 5000, "Malformed JSON"),
        (
            "5000-digit integer",
            b'{"identifier": "a", "traits": [{"trait_key": "k", "trait_value": '
            + b"9" * 5000
            + b"}]}",
            "Malformed JSON",
        ),
    ],
)
def test_identify__unparseable_body__is_400(client, sdk_env, name, raw, mentions):
    before = _counts()
    response = client.post(
        "/api/v1/identities/", data=raw, content_type="application/json", headers=sdk_env.client()
    )
    assert response.status_code == 400
    assert mentions in response.get_json()["detail"]
    assert _counts() == before


def test_identify__1mb_body__is_413(client, sdk_env):
    before = _counts()
    body = {"identifier": "a", "traits": [_trait("k", "v" * 1000)] * 1000}
    response = client.post("/api/v1/identities/", json=body, headers=sdk_env.client())
    assert response.status_code == 413
    assert "detail" in response.get_json()
    assert _counts() == before


def test_identify__10000_traits__is_refused(client, sdk_env):
    before = _counts()
    body = {"identifier": "a", "traits": [_trait(f"k{i}", i) for i in range(10_000)]}
    response = client.post("/api/v1/identities/", json=body, headers=sdk_env.client())
    assert response.status_code in (400, 413)
    assert "detail" in response.get_json()
    assert _counts() == before


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"trait_key": "k", "trait_value": 1}, "identity"),
        (
            {"identity": {"identifier": ""}, "trait_key": "k", "trait_value": 1},
            "identity.identifier",
        ),
        (
            {"identity": {"identifier": "a"}, "trait_key": "k", "trait_value": {"x": 1}},
            "trait_value",
        ),
        ([], "expected an object"),
    ],
)
def test_post_trait__bad_input__is_400(client, sdk_env, body, mentions):
    before = _counts()
    response = client.post("/api/v1/traits/", json=body, headers=sdk_env.server())
    assert response.status_code == 400
    assert mentions in response.get_json()["detail"]
    assert _counts() == before


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"identity": {"identifier": "a"}}, "JSON list"),
        (
            [{"identity": {"identifier": "a"}, "trait_key": "k", "trait_value": 1}] * 101,
            "at most 100",
        ),
        (
            [
                {"identity": {"identifier": "a"}, "trait_key": "k", "trait_value": 1},
                {"identity": {"identifier": "b"}, "trait_key": "", "trait_value": 1},
            ],
            "[1].trait_key",
        ),
    ],
)
def test_bulk_traits__bad_input__is_400_and_atomic(client, sdk_env, body, mentions):
    before = _counts()
    response = client.put("/api/v1/traits/bulk/", json=body, headers=sdk_env.server())
    assert response.status_code == 400
    assert mentions in response.get_json()["detail"]
    assert _counts() == before


def test_wrong_method__is_json_405(client, sdk_env):
    response = client.delete("/api/v1/flags/", headers=sdk_env.client())
    assert response.status_code == 405
    assert "detail" in response.get_json()


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("feature=a%00b", 400),  # NUL in a value
        ("x%00=1", 400),  # NUL in a name
        ("feature=%2500", 404),  # the text "%00", not a NUL: an unknown feature
    ],
)
def test_flags__nul_in_the_query_string__is_400(client, sdk_env, query, status):
    response = client.get(f"/api/v1/flags/?{query}", headers=sdk_env.client())
    assert response.status_code == status
    if status == 400:
        assert "NUL" in response.get_json()["detail"]
