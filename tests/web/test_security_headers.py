"""Security headers on pages and on the SDK API."""

import pytest

from tests.factories import make_environment, make_project, make_user
from webapp.extensions import db

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def environment(app):
    project = make_project()
    environment = make_environment(project)
    make_user("admin@example.com", "admin", project)
    db.session.commit()
    return environment


@pytest.mark.parametrize("path", ["/login", "/api/v1/openapi.json", "/static/css/app.css"])
def test_headers__on_every_response(client, environment, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    # Scripts only from this origin: no inline scripts, no eval.
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in policy
    assert directives["frame-ancestors"] == "'none'"


def test_headers__on_logged_in_pages_and_errors(client, auth, environment):
    auth.login("admin@example.com")
    for path in ("/", f"/environments/{environment.id}", "/environments/999999"):
        response = client.get(path)
        assert "Content-Security-Policy" in response.headers, path
