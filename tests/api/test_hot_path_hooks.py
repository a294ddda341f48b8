"""The SDK APIs skip what only the dashboard needs: the login limiter and the cookie session.

Both cost real time on every identify (bench/sdk_api.py); these tests fail if either comes
back on the API path, and prove the dashboard still gets both.
"""

from __future__ import annotations

import pytest
from flask import request, session
from flask.sessions import NullSession
from flask_limiter import Limiter


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
