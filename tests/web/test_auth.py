"""Login, logout and the anonymous-user redirects."""

import re

import pytest

from tests.factories import make_environment, make_project, make_user
from webapp.extensions import db
from webapp.models import User

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def admin(app):
    project = make_project()
    make_environment(project, "Development")
    make_environment(project, "Production")
    user = make_user("admin@example.com", "admin", project)
    db.session.commit()
    return user


def test_login_page__renders_the_form(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b'id="login"' in response.data
    assert b'name="password"' in response.data


def test_login__valid_credentials__reach_the_dashboard_listing_environments(client, auth, admin):
    response = auth.login("admin@example.com", follow_redirects=True)
    assert response.status_code == 200
    assert b"Development" in response.data and b"Production" in response.data
    assert b"Your projects" in response.data


def test_login__email_is_case_insensitive(client, auth, admin):
    response = auth.login("ADMIN@Example.com")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def _error_text(body: bytes) -> str:
    return re.sub(r'value="[^"]*"', "", body.decode())


def test_login__unknown_email_and_wrong_password__look_identical(client, auth, admin):
    # Given one unknown email and one wrong password
    unknown = auth.login("nobody@example.com", "whatever1")
    wrong = auth.login("admin@example.com", "wrong-password")
    # Then both get the same inline error and status, so accounts cannot be enumerated
    assert unknown.status_code == wrong.status_code == 422
    assert b"Invalid email or password." in unknown.data
    assert _error_text(unknown.data).replace("nobody@example.com", "X") == _error_text(
        wrong.data
    ).replace("admin@example.com", "X")
    assert client.get("/").status_code == 302


def test_login__missing_fields__show_inline_errors(client, admin):
    response = client.post("/login", data={"email": "", "password": ""})
    assert response.status_code == 422
    assert b"This field is required." in response.data


def test_login__inactive_user__is_refused(client, auth, admin):
    admin.active = False
    db.session.commit()
    assert auth.login("admin@example.com").status_code == 422


def test_login__records_last_login(client, auth, admin):
    auth.login("admin@example.com")
    db.session.expire_all()
    assert db.session.get(User, admin.id).last_login_at is not None


def test_login__safe_next__is_followed(client, auth, admin):
    environment_id = admin.roles[0].project.environments[0].id
    response = client.post(
        f"/login?next=/environments/{environment_id}",
        data={"email": "admin@example.com", "password": "password123"},
    )
    assert response.headers["Location"] == f"/environments/{environment_id}"


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "evil"],
)
def test_login__foreign_next__is_ignored(client, admin, target):
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": "admin@example.com", "password": "password123"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_logout__ends_the_session(client, auth, admin):
    auth.login("admin@example.com")
    assert client.get("/").status_code == 200
    response = auth.logout()
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_logout__get_is_not_allowed(client, auth, admin):
    auth.login("admin@example.com")
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


def test_anonymous__page__redirects_to_login_with_next(client, admin):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/")


def test_anonymous__htmx_request__gets_401_with_hx_redirect(client, admin):
    environment_id = admin.roles[0].project.environments[0].id
    response = client.get(f"/environments/{environment_id}", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=")


def test_logged_in__login_page__redirects_home(client, auth, admin):
    auth.login("admin@example.com")
    assert client.get("/login").headers["Location"] == "/"
