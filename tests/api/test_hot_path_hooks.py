"""The SDK APIs skip what only the dashboard needs: the login limiter, the cookie session,
CSRF protection and the remember-cookie refresh.

Each cost real time on every identify (bench/sdk_api.py); these tests fail if one comes
back on the API path, and prove the dashboard still gets them.
"""

from __future__ import annotations

import pytest
from flask import request, session
from flask.sessions import NullSession
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from tests.conftest import make_test_app
from webapp.api_paths import API_BLUEPRINTS, API_PREFIXES
from webapp.extensions import db

# Request hooks: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def limiter_calls(monkeypatch) -> list[str]:
    """Record the request path whenever the limiter touches its per-request context.

    Every limiter hook (the before-request check, the after-request deduction, the teardown)
    goes through ``Limiter.context``; the hooks are bound at ``init_app``, so the property
    is watched on the class.
    """
    calls: list[str] = []
    real = Limiter.context

    def watched(limiter):
        calls.append(request.path)
        return real.fget(limiter)

    monkeypatch.setattr(Limiter, "context", property(watched))
    return calls


def test_identify__never_runs_the_login_limiter(app, client, sdk_env, limiter_calls):
    # Given the limiter's hooks are watched
    # When an SDK identifies and an OFREP client evaluates
    identify = client.post(
        "/api/v1/identities/", json={"identifier": "zed"}, headers=sdk_env.client()
    )
    ofrep = client.post(
        "/ofrep/v1/evaluate/flags",
        json={"context": {"targetingKey": "zed"}},
        headers={"Authorization": f"Bearer {sdk_env.client_key}"},
    )
    # Then both answer and the limiter was never asked
    assert identify.status_code == 200
    assert ofrep.status_code == 200
    assert limiter_calls == []


def test_login__still_runs_the_login_limiter(app, client, limiter_calls):
    response = client.post("/login", data={"email": "nobody@example.com", "password": "x"})
    assert response.status_code == 422
    assert "/login" in limiter_calls


def test_api_request__gets_a_null_session_and_sets_no_cookie(app, client, sdk_env):
    # Given a browser that also holds a dashboard session cookie
    client.set_cookie("session", "not-even-a-valid-signature")
    # When it calls the SDK API
    with app.test_request_context("/api/v1/flags/"):
        opened = app.session_interface.open_session(app, request)
    response = client.get("/api/v1/flags/", headers=sdk_env.client())
    # Then no session was opened and none is written back
    assert opened is None
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_dashboard_request__opens_the_cookie_session(app):
    with app.test_request_context("/login"):
        opened = app.session_interface.open_session(app, request)
        assert opened is not None
        assert not isinstance(session, NullSession)


@pytest.fixture
def page_hook_calls(monkeypatch) -> list[str]:
    """Record the path whenever CSRF protection or the remember-cookie refresh runs.

    Both are bound when an app is created, so the class methods are watched first and the
    app is made afterwards (``csrf_app``).
    """
    calls: list[str] = []
    protect, remember = CSRFProtect.protect, LoginManager._update_remember_cookie

    def watched_protect(self, *args, **kwargs):
        calls.append(f"csrf {request.path}")
        return protect(self, *args, **kwargs)

    def watched_remember(self, response):
        calls.append(f"remember {request.path}")
        return remember(self, response)

    monkeypatch.setattr(CSRFProtect, "protect", watched_protect)
    monkeypatch.setattr(LoginManager, "_update_remember_cookie", watched_remember)
    return calls


@pytest.fixture
def csrf_app(page_hook_calls):
    application = make_test_app("sqlite://", WTF_CSRF_ENABLED=True)
    with application.app_context():
        db.create_all()
        yield application
        db.session.remove()


def test_api_requests__skip_csrf_and_the_remember_cookie(csrf_app, page_hook_calls):
    client = csrf_app.test_client()
    # An SDK call with no key at all: refused by the API's own check, not by CSRF
    response = client.post("/api/v1/identities/", json={"identifier": "zed"})
    ofrep = client.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "z"}})
    assert response.status_code == 403
    assert response.get_json() == {"detail": "Invalid or missing Environment Key"}
    assert ofrep.status_code == 401
    assert page_hook_calls == []


def test_dashboard_requests__still_get_csrf_and_the_remember_cookie(csrf_app, page_hook_calls):
    client = csrf_app.test_client()
    response = client.post("/login", data={"email": "nobody@example.com", "password": "x"})
    # No CSRF token: refused by CSRF protection, which therefore ran
    assert response.status_code == 400
    assert "csrf /login" in page_hook_calls
    assert "remember /login" in page_hook_calls


def test_every_route_under_the_api_prefixes__is_a_key_authenticated_one(app):
    # CSRF is skipped by path prefix, so a page route there would lose its protection.
    under = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith(API_PREFIXES)]
    assert under  # the SDK API and OFREP are there
    for rule in under:
        assert rule.endpoint.partition(".")[0] in API_BLUEPRINTS, rule.rule


def test_every_key_authenticated_route__is_under_the_api_prefixes(app):
    # Outside the prefixes a key-authenticated view would get CSRF checks and cookie sessions.
    api = [r for r in app.url_map.iter_rules() if r.endpoint.partition(".")[0] in API_BLUEPRINTS]
    assert {r.endpoint.partition(".")[0] for r in api} == set(API_BLUEPRINTS)
    for rule in api:
        assert rule.rule.startswith(API_PREFIXES), rule.rule
