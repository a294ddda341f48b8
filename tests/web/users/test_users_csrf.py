"""CSRF on the Users page mutations, with the real configuration."""

from __future__ import annotations

import re

import pytest

from tests.web.users.conftest import HX, table_counts

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def app_config():
    return {"WTF_CSRF_ENABLED": True}


def _login(client) -> str:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    data = {"email": "editor@example.com", "password": "password123", "csrf_token": token}
    assert client.post("/login", data=data).status_code == 302
    return token


def test_delete__htmx_without_token__is_refused_and_changes_nothing(client, world):
    # Given a logged-in editor whose request carries no CSRF token
    _login(client)
    before = table_counts()
    # When deleting with htmx but without the header
    response = client.delete(f"{world.url}/1", headers=HX)
    # Then the request is refused (htmx is told to refresh) and nothing changed
    assert response.status_code == 400
    assert table_counts() == before


def test_delete__htmx_with_header_token__deletes(client, world):
    # Given the token the page puts in <body hx-headers>
    _login(client)
    page = client.get(world.url).get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    before = table_counts()
    # When deleting with the header htmx sends
    response = client.delete(f"{world.url}/1", headers={**HX, "X-CSRFToken": token})
    # Then the identity is gone
    assert response.status_code == 200
    assert table_counts()[0] == before[0] - 1


def test_bulk_apply__plain_post_without_token__is_400(client, world):
    _login(client)
    before = table_counts()
    response = client.post(f"{world.url}/bulk", data={"action": "delete", "q": "", "expected": "4"})
    assert response.status_code == 400
    assert table_counts() == before
