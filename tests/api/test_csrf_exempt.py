"""The SDK API needs no CSRF token even when CSRF protection is on."""

import pytest

# CSRF rules: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def app_config():
    return {"WTF_CSRF_ENABLED": True}


def test_post_identity__with_csrf_enabled__needs_no_token(client, sdk_env):
    response = client.post(
        "/api/v1/identities/", json={"identifier": "zed"}, headers=sdk_env.client()
    )
    assert response.status_code == 200


def test_put_bulk_traits__with_csrf_enabled__needs_no_token(client, sdk_env):
    response = client.put(
        "/api/v1/traits/bulk/",
        json=[{"identity": {"identifier": "zed"}, "trait_key": "a", "trait_value": 1}],
        headers=sdk_env.server(),
    )
    assert response.status_code == 200
