"""CSRF on every dashboard route: without a token, no unsafe request gets through.

The routes come from the URL map, so a new route is covered the day it is added: its URL
arguments must be known to ``routes_table.ARGUMENTS`` (the test says which one is missing).
Each request is the route's valid body from ``routes_table.ROUTES``, sent by a logged-in
admin, so the only thing wrong with it is the missing token: it must be refused with 400
(htmx: 400 asking for a refresh) and leave every table as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.hardening.dbdump import describe_change, dump
from tests.hardening.routes_table import (
    UNSAFE,
    body,
    build_url,
    collection_app,
    dashboard_routes,
    world_on,
)

# CSRF rules: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")

MIN_ROUTES = 20
UNSAFE_ROUTES = [(e, m) for e, m in dashboard_routes(collection_app()) if m in UNSAFE]
ROUTE_IDS = [f"{endpoint}-{method}" for endpoint, method in UNSAFE_ROUTES]
HTMX = {"HX-Request": "true"}


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"WTF_CSRF_ENABLED": True}


def _token(client: FlaskClient) -> str:
    html = client.get("/login").get_data(as_text=True)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert found, "the login page has no CSRF token field"
    return found.group(1)


@pytest.fixture
def world(app: Flask, client: FlaskClient, database: str) -> Iterator[dict[str, str]]:
    """The world, with ``client`` logged in (with a token) as the project's admin."""
    ids = world_on()
    credentials = {"email": "admin@example.com", "password": "password123"}
    response = client.post("/login", data={**credentials, "csrf_token": _token(client)})
    assert response.status_code == 302, "the admin could not log in with a token"
    yield ids


def send(client: FlaskClient, url: str, method: str = "GET", **kwargs: Any) -> TestResponse:
    """Send a request as its own: the tests share one app context, so Flask-Login's user
    (kept in ``g``) would otherwise carry over from another client's request."""
    g.pop("_login_user", None)
    return client.open(url, method=method, **kwargs)


def _is_logged_in(client: FlaskClient) -> bool:
    return send(client, "/").status_code == 200


def test_walk__unsafe_dashboard_routes__finds_enough_to_mean_something() -> None:
    assert len(UNSAFE_ROUTES) >= MIN_ROUTES, UNSAFE_ROUTES
    assert ("auth.login_submit", "POST") in UNSAFE_ROUTES


@pytest.mark.parametrize(("endpoint", "method"), UNSAFE_ROUTES, ids=ROUTE_IDS)
def test_unsafe_route__without_token__is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, world: dict[str, str], endpoint: str, method: str
) -> None:
    # Given a valid request to the route, minus its CSRF token
    url = build_url(app, endpoint, method, world)
    data = body(endpoint, method, world)
    assert "csrf_token" not in data
    sender = client
    if endpoint == "auth.login_submit":
        sender = app.test_client()  # logging in is the anonymous user's request
    before = dump()

    # When it is sent as a plain form and as htmx
    plain = send(sender, url, method, data=data)
    htmx = send(sender, url, method, data=data, headers=HTMX)
    after = dump()

    # Then both are refused (htmx is asked to reload the page for a fresh token) ...
    assert plain.status_code == 400, f"{method} {url}: {plain.get_data(as_text=True)[:300]}"
    assert "security token" in plain.get_data(as_text=True)
    assert htmx.status_code == 400, f"{method} {url} (htmx): got {htmx.status_code}"
    assert htmx.headers.get("HX-Refresh") == "true"
    # ... and nothing changed: no table, no session (the admin is still in, nobody new is)
    change = describe_change(before, after)
    assert after == before, f"{method} {url} changed the database: {change}"
    assert _is_logged_in(client)
    if sender is not client:
        assert not _is_logged_in(sender), "a login without a token logged the user in"
