"""CSRF on the Identity page's writes (the other tests switch it off)."""

from __future__ import annotations

import re

import pytest

from tests.web.identities.conftest import HX, count, traits_of
from webapp.models import IdentityOverride

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def app_config():
    return {"WTF_CSRF_ENABLED": True}


def _login(client, email="qa@example.com"):
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    client.post("/login", data={"email": email, "password": "password123", "csrf_token": token})


def _page_token(client, world):
    html = client.get(world.url()).get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)


def test_toggle__without_token__is_refused_and_changes_nothing(client, world):
    _login(client)
    response = client.post(world.flag_url("dark_mode", "/toggle"))
    assert response.status_code == 400
    assert count(IdentityOverride) == 0


def test_add_trait__without_token__is_refused(client, world):
    _login(client)
    response = client.post(
        world.url(suffix="/traits"), data={"key": "plan", "value": "pro", "value_type": "infer"}
    )
    assert response.status_code == 400
    assert traits_of(world.alice)["plan"] == "free"


def test_htmx_post_without_token__asks_for_a_refresh(client, world):
    _login(client)
    response = client.post(world.flag_url("dark_mode", "/toggle"), headers=HX)
    assert response.status_code == 400 and response.headers.get("HX-Refresh") == "true"
    assert count(IdentityOverride) == 0


def test_toggle__with_header_token__succeeds(client, world):
    _login(client)
    token = _page_token(client, world)
    response = client.post(
        world.flag_url("dark_mode", "/toggle"),
        data=world.page_data("dark_mode"),
        headers={**HX, "X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert count(IdentityOverride) == 1


def test_delete_trait__with_header_token__succeeds(client, world):
    _login(client)
    token = _page_token(client, world)
    response = client.delete(
        world.url(suffix="/traits/plan"),
        query_string=world.trait_data("plan"),
        headers={**HX, "X-CSRFToken": token},
    )
    assert response.status_code == 200
    assert "plan" not in traits_of(world.alice)
