"""Session cookies, login throttling, account enumeration and open redirects."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import limits.storage.memory
import limits.strategies
import pytest
from flask import Flask, g
from flask.testing import FlaskClient

import webapp.limits
from tests.conftest import make_test_app
from tests.factories import make_environment, make_project, make_user
from webapp import config, create_app
from webapp.access import safe_next
from webapp.blueprints.auth import LOGIN_FAILED, LOGIN_THROTTLED
from webapp.extensions import db
from webapp.limits import limiter
from webapp.services import accounts

# Sessions and login throttling: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")

PASSWORD = "password123"
REDIS_URL = "redis://127.0.0.1:6379"
# Small limits keep the tests short; production defaults are in webapp/config.py.
THROTTLE = {"LOGIN_RATE_LIMIT_PER_EMAIL": "3 per minute", "LOGIN_RATE_LIMIT_PER_IP": "5 per minute"}


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """THROTTLE plus what a test passes with ``parametrize("app_config", ..., indirect=True)``."""
    return {**THROTTLE, **getattr(request, "param", {})}


@pytest.fixture
def admin(app: Flask) -> Any:
    project = make_project()
    make_environment(project, "Production")
    user = make_user("admin@example.com", "admin", project)
    db.session.commit()
    return user


class Clock:
    """``time`` for the login limiter, whose ``time()`` a test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Let a test pass the limiter's window without waiting for it: the counters (in the
    ``limits`` package's memory storage and strategies) and Retry-After read this clock."""
    fake = Clock()
    for module in (limits.storage.memory, limits.strategies, webapp.limits):
        monkeypatch.setattr(module, "time", fake)
    return fake


def login(
    client: FlaskClient, email: str, password: str = PASSWORD, ip: str = "192.0.2.1", **form: Any
) -> Any:
    return client.post(
        "/login",
        data={"email": email, "password": password, **form},
        environ_base={"REMOTE_ADDR": ip},
    )


def fail_logins(client: FlaskClient, email: str, times: int, ip: str = "192.0.2.1") -> None:
    for _ in range(times):
        assert login(client, email, "wrong-password", ip).status_code == 422


def is_logged_in(client: FlaskClient) -> bool:
    return client.get("/").status_code == 200


def set_cookie(response: Any, name: str) -> str:
    found = [v for v in response.headers.getlist("Set-Cookie") if v.startswith(f"{name}=")]
    assert found, f"no {name} cookie in {response.headers.getlist('Set-Cookie')}"
    return found[0]


def cookie_flags(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


# --- session and remember cookies -------------------------------------------------------------


def test_session_cookie__after_login__is_httponly_and_samesite_lax(client, admin):
    response = login(client, "admin@example.com")
    assert response.status_code == 302
    flags = cookie_flags(set_cookie(response, "session"))
    assert {"httponly", "samesite=lax"} <= flags
    assert "secure" not in flags  # plain http in development unless SESSION_COOKIE_SECURE


@pytest.mark.parametrize("app_config", [{"SESSION_COOKIE_SECURE": True}], indirect=True)
def test_session_cookie__with_session_cookie_secure__is_secure(client, admin):
    response = login(client, "admin@example.com")
    assert {"httponly", "samesite=lax", "secure"} <= cookie_flags(set_cookie(response, "session"))


@pytest.mark.parametrize(
    ("app_config", "secure"),
    [({}, False), ({"SESSION_COOKIE_SECURE": True}, True)],
    indirect=["app_config"],
)
def test_remember_cookie__follows_the_session_cookie_flags(client, admin, secure):
    response = login(client, "admin@example.com", remember="y")
    flags = cookie_flags(set_cookie(response, "remember_token"))
    assert {"httponly", "samesite=lax"} <= flags
    assert ("secure" in flags) is secure


def test_session_cookie_secure__from_the_environment__also_secures_the_remember_cookie(
    monkeypatch,
):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def test_rate_limit_settings__come_from_prefixed_environment_variables():
    found = config.from_environment(
        {"FLAGPOST_RATELIMIT_STORAGE_URI": REDIS_URL, "FLAGPOST_TRUSTED_PROXY_COUNT": "1"}
    )
    assert found == {"RATELIMIT_STORAGE_URI": REDIS_URL, "TRUSTED_PROXY_COUNT": 1}


# --- login throttling -------------------------------------------------------------------------


def test_login_throttle__too_many_failures__answer_429_with_the_message_on_the_page(client, admin):
    fail_logins(client, "admin@example.com", 3)
    response = login(client, "admin@example.com", "wrong-password")
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert LOGIN_THROTTLED in page
    assert 'id="login"' in page and 'name="password"' in page  # the form, not an error page
    assert 1 <= int(response.headers["Retry-After"]) <= 61


def test_login_throttle__right_password_while_throttled__is_refused(client, admin):
    fail_logins(client, "admin@example.com", 3)
    response = login(client, "admin@example.com")
    assert response.status_code == 429
    assert not is_logged_in(client)


def test_login_throttle__unknown_email__is_throttled_like_a_real_one(client, admin):
    fail_logins(client, "nobody@example.com", 3)
    response = login(client, "nobody@example.com", "wrong-password")
    assert response.status_code == 429
    assert LOGIN_THROTTLED in response.get_data(as_text=True)


def test_login_throttle__other_email_and_other_ip__are_unaffected(client, admin):
    make_user("second@example.com", "viewer", admin.roles[0].project)
    db.session.commit()
    fail_logins(client, "admin@example.com", 3)
    assert login(client, "admin@example.com").status_code == 429
    # The same person from another address, and another account from the same address
    assert login(client, "admin@example.com", ip="198.51.100.7").status_code == 302
    client.post("/logout")
    assert login(client, "second@example.com").status_code == 302


def test_login_throttle__spraying_many_emails_from_one_ip__hits_the_per_ip_cap(client, admin):
    for number in range(5):
        assert login(client, f"user{number}@example.com", "guess").status_code == 422
    assert login(client, "admin@example.com").status_code == 429
    assert login(client, "admin@example.com", ip="198.51.100.7").status_code == 302


def test_login_throttle__successful_logins__are_not_counted(client, admin):
    for _ in range(8):
        assert login(client, "admin@example.com").status_code == 302
    fail_logins(client, "admin@example.com", 3)


def test_login_throttle__email_case_and_spaces__share_one_counter(client, admin):
    fail_logins(client, "Admin@Example.com", 2)
    fail_logins(client, " admin@example.com ", 1)
    assert login(client, "ADMIN@example.com").status_code == 429


@pytest.mark.parametrize(
    "app_config", [{"LOGIN_RATE_LIMIT_PER_EMAIL": "2 per 2 seconds"}], indirect=True
)
def test_login_throttle__after_the_window__lets_the_right_password_in(client, admin, clock):
    fail_logins(client, "admin@example.com", 2)
    throttled = login(client, "admin@example.com")
    assert throttled.status_code == 429
    clock.advance(int(throttled.headers["Retry-After"]) + 0.2)
    assert login(client, "admin@example.com").status_code == 302
    assert is_logged_in(client)


def test_login_throttle__reset_of_the_store__lifts_it(client, admin):
    fail_logins(client, "admin@example.com", 3)
    assert login(client, "admin@example.com").status_code == 429
    limiter.reset()
    assert login(client, "admin@example.com").status_code == 302


def test_login_throttle__pages_and_the_sdk_apis__are_never_throttled(client, admin):
    environment = admin.roles[0].project.environments[0]
    key = {"X-Environment-Key": environment.client_key}
    fail_logins(client, "admin@example.com", 3)
    assert login(client, "admin@example.com").status_code == 429
    remote = {"REMOTE_ADDR": "192.0.2.1"}
    for _ in range(40):
        assert client.get("/login", environ_base=remote).status_code == 200
        assert client.get("/api/v1/flags/", headers=key, environ_base=remote).status_code == 200
        ofrep = client.post("/ofrep/v1/evaluate/flags", headers=key, environ_base=remote)
        assert ofrep.status_code == 200


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": False}], indirect=True)
def test_login_throttle__disabled_by_config__never_answers_429(client, admin):
    fail_logins(client, "admin@example.com", 12)
    assert login(client, "admin@example.com").status_code == 302


@pytest.mark.parametrize("app_config", [{"TRUSTED_PROXY_COUNT": 1}], indirect=True)
def test_login_throttle__behind_a_trusted_proxy__counts_per_forwarded_client(client, admin):
    def via_proxy(client_ip: str, password: str) -> int:
        return client.post(
            "/login",
            data={"email": "admin@example.com", "password": password},
            headers={"X-Forwarded-For": client_ip},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        ).status_code

    for _ in range(3):
        assert via_proxy("203.0.113.5", "wrong-password") == 422
    assert via_proxy("203.0.113.5", PASSWORD) == 429
    assert via_proxy("203.0.113.6", PASSWORD) == 302


def test_login_throttle__a_new_app_with_memory_storage__starts_with_fresh_counters(app, admin):
    fail_logins(app.test_client(), "admin@example.com", 3)
    other = make_test_app("sqlite://", **THROTTLE)
    with other.app_context():
        db.create_all()
        assert login(other.test_client(), "admin@example.com").status_code == 422


def _redis_or_skip() -> Any:
    redis = pytest.importorskip("redis", reason="the redis client is not installed")
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        connection.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc}); shared-storage test skipped")
    return connection


def test_login_throttle__redis_storage__is_shared_between_app_servers():
    connection = _redis_or_skip()
    # Addresses unique to this run, so runs within a minute of each other do not add up
    run = uuid.uuid4()
    email, ips = f"{run.hex}@example.com", (f"198.18.{run.bytes[0]}.{n}" for n in (1, 2))
    first_ip, second_ip = ips
    settings = {**THROTTLE, "RATELIMIT_STORAGE_URI": REDIS_URL}
    try:
        first = make_test_app("sqlite://", **settings)
        with first.app_context():
            db.create_all()
            fail_logins(first.test_client(), email, 3, first_ip)
        # Given another app server (a new store object) on the same Redis
        second = make_test_app("sqlite://", **settings)
        with second.app_context():
            db.create_all()
            assert login(second.test_client(), email, "wrong", first_ip).status_code == 429
            assert login(second.test_client(), email, "wrong", second_ip).status_code == 422
        assert connection.keys(f"LIMITS:*{first_ip}/*"), "no counters were written to Redis"
    finally:
        for ip in (first_ip, second_ip):
            stale = connection.keys(f"LIMITS:*/{ip}/*")
            if stale:
                connection.delete(*stale)


# --- unknown email and wrong password look the same -------------------------------------------


def _csrf_token(client: FlaskClient) -> str:
    # Test requests share the fixture's app context, where Flask-WTF caches the last token.
    g.pop("csrf_token", None)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").text)
    assert match, "no CSRF token on the login page"
    return match.group(1)


def _normalised(body: str, email: str, token: str) -> str:
    return body.replace(token, "TOKEN").replace(email, "EMAIL")


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_login__unknown_email_and_wrong_password__same_status_and_body(app, admin):
    answers = []
    for email in ("nobody@example.com", "admin@example.com"):
        client = app.test_client()
        token = _csrf_token(client)
        response = client.post(
            "/login", data={"email": email, "password": "wrong-password", "csrf_token": token}
        )
        answers.append((response.status_code, _normalised(response.text, email, token)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 422 and LOGIN_FAILED in answers[0][1]


@pytest.mark.parametrize("email", ["nobody@example.com", "admin@example.com"])
def test_login__unknown_email_or_wrong_password__checks_one_password_hash(
    client, admin, monkeypatch, email
):
    # Timing: an unknown email must cost the same hash check as a known one
    calls: list[str] = []
    real_check = accounts.check_password_hash

    def spy(stored_hash: str, password: str) -> bool:
        calls.append(password)
        return real_check(stored_hash, password)

    monkeypatch.setattr(accounts, "check_password_hash", spy)
    assert login(client, email, "wrong-password").status_code == 422
    assert calls == ["wrong-password"]


def test_login__inactive_user__checks_the_hash_and_answers_like_a_wrong_password(
    client, admin, monkeypatch
):
    admin.active = False
    db.session.commit()
    calls: list[str] = []
    monkeypatch.setattr(accounts, "check_password_hash", lambda _h, p: calls.append(p) or True)
    response = login(client, "admin@example.com")
    assert response.status_code == 422 and LOGIN_FAILED in response.text
    assert calls == [PASSWORD]


# --- safe next redirects ----------------------------------------------------------------------

FOREIGN_TARGETS = [
    "//evil.com",
    "https://evil.com",
    "/\\evil.com",
    "javascript:alert(1)",
    "///evil.com",
    "/\t/evil.com",
    " //evil.com",
    "\\\\evil.com",
    "http:evil.com",
    "evil.com",
]


@pytest.mark.parametrize("target", FOREIGN_TARGETS)
def test_login__foreign_next__redirects_home(client, admin, target):
    response = client.post(
        "/login", query_string={"next": target}, data={"email": admin.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_login__percent_encoded_double_slash_next__redirects_home(client, admin):
    response = client.post(
        "/login?next=%2F%2Fevil.com", data={"email": admin.email, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_login__double_encoded_next__stays_on_this_site(client, admin):
    response = client.post(
        "/login?next=%252F%252Fevil.com", data={"email": admin.email, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_login__local_next__is_followed(client, admin):
    response = client.post(
        "/login?next=/identities/1", data={"email": admin.email, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/identities/1"


@pytest.mark.parametrize("target", [*FOREIGN_TARGETS, "%2F%2Fevil.com"])
def test_login_page__logged_in_with_foreign_next__redirects_home(client, admin, target):
    login(client, admin.email)
    assert client.get("/login", query_string={"next": target}).headers["Location"] == "/"


@pytest.mark.parametrize("target", FOREIGN_TARGETS)
def test_safe_next__foreign_target__is_refused(target):
    assert safe_next(target) is None


@pytest.mark.parametrize("target", ["/identities/1", "/environments/3?tab=flags", "/"])
def test_safe_next__local_path__is_kept(target):
    assert safe_next(target) == target
