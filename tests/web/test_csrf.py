"""CSRF protection with the real configuration (the other tests switch it off)."""

import re

import pytest
from sqlalchemy import func, select

from tests.factories import make_environment, make_project, make_user
from webapp.extensions import db
from webapp.models import ServerKey

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def app_config():
    return {"WTF_CSRF_ENABLED": True}


@pytest.fixture
def environment(app):
    project = make_project()
    environment = make_environment(project)
    make_user("admin@example.com", "admin", project)
    db.session.commit()
    return environment


def _token(client, path="/login"):
    html = client.get(path).data.decode()
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def _login(client):
    token = _token(client)
    response = client.post(
        "/login",
        data={"email": "admin@example.com", "password": "password123", "csrf_token": token},
    )
    assert response.status_code == 302


def test_login_without_token__is_refused(client, environment):
    response = client.post("/login", data={"email": "admin@example.com", "password": "password123"})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_login_with_form_token__succeeds(client, environment):
    _login(client)
    assert client.get("/").status_code == 200


def _key_count():
    return db.session.scalar(select(func.count(ServerKey.id)))


def test_post_without_token__is_refused_and_changes_nothing(client, environment):
    _login(client)
    before = _key_count()
    response = client.post(f"/environments/{environment.id}/server-keys", data={"name": "x"})
    assert response.status_code == 400
    assert _key_count() == before


def test_post_with_header_token__is_accepted(client, environment):
    # The page puts the token in hx-headers, so htmx buttons without forms still carry it.
    _login(client)
    page = client.get(f"/environments/{environment.id}").data.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    response = client.post(
        f"/environments/{environment.id}/server-keys",
        data={"name": "x"},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 302
    assert _key_count() == 1


def test_htmx_post_with_stale_token__asks_for_a_refresh(client, environment):
    _login(client)
    response = client.post(
        f"/environments/{environment.id}/server-keys",
        data={"name": "x"},
        headers={"HX-Request": "true", "X-CSRFToken": "stale"},
    )
    assert response.status_code == 400
    assert response.headers["HX-Refresh"] == "true"
    assert _key_count() == 0
