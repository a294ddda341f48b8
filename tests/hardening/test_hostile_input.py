"""Hostile input: every case of the catalogue is refused with a clear 4xx and changes nothing.

The catalogue (``hostile_cases.py``) sends oversized bodies, wrong JSON types, deep nesting,
NUL bytes, invalid UTF-8, huge numbers, NaN, duplicate names, unknown or foreign ids and
header injection attempts at the SDK API, OFREP and every dashboard form. For each case the
test asserts the expected status (never 5xx, never 2xx/3xx), a message naming the problem
(``detail``/``errorDetails`` in JSON, inline text on pages) and a database dump identical to
the one taken before the request. It runs on SQLite and PostgreSQL and logs in as an admin
of every project, so authorisation is never why a case is refused.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from string import Template
from typing import Any

import pytest
from flask import Flask, current_app, g
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from tests import worlds
from tests.factories import (
    identities_make_option,
    identities_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from tests.hardening.dbdump import describe_change, dump, dump_by_table
from tests.hardening.hostile_cases import CASES, INJECTED, Case, encode
from webapp.api_paths import API_PREFIXES
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import ServerKey
from webapp.services.identities.traits import trait_version

# Database behaviour (limits a database refuses: NUL, 64-bit integers, surrogates):
# runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

MIN_CASES = 60
JSON_PREFIXES = API_PREFIXES
_TAGS = re.compile(r"<[^>]+>")
SESSION = "session_cookie"  # the world's entry holding the admin's session cookie


def build_world() -> dict[str, str]:
    """Create two projects with every kind of object; return the ids the cases refer to."""
    project = make_project("Demo")
    env = make_environment(project, "Development")
    env2 = make_environment(project, "Staging")
    other = make_project("Other")
    other_env = make_environment(other, "Production")
    admin_user = make_user("admin@example.com", "admin", all_projects=True)

    banner = make_feature(project, "banner", enabled=True, value="hello")
    checkout = make_feature(project, "checkout", type="MULTIVARIATE", value="blue")
    opt1 = identities_make_option(checkout, "red", 30.0)
    opt2 = identities_make_option(checkout, "green", 30.0)
    foreign = make_feature(other, "foreign", type="MULTIVARIATE")
    foreign_opt = identities_make_option(foreign, "x", 10.0)

    segment = make_segment(project, "Pro users")
    make_segment(project, "Beta testers")
    foreign_segment = make_segment(other, "Elsewhere")
    seg_override = identities_make_segment_override(segment, banner, env, value="pro")
    seg_override_env2 = identities_make_segment_override(segment, banner, env2, value="pro")

    alice = make_identity(env, "alice", traits={"plan": "pro", "age": 41})
    bob = make_identity(env2, "bob")
    make_identity(other_env, "carol")

    plan = next(t for t in alice.traits if t.key == "plan")
    states = {(s.feature_id, s.environment_id): s for s in banner.states + checkout.states}
    key = ServerKey(environment=env, name="backend")
    revoked = ServerKey(environment=env, name="old", revoked_at=utcnow())
    foreign_key = ServerKey(environment=other_env, name="theirs")
    db.session.add_all([key, revoked, foreign_key])
    db.session.flush()
    ids = {
        "env": env.id, "env2": env2.id, "other_env": other_env.id,
        "project": project.id, "organisation": project.organisation_id,
        "banner": banner.id, "checkout": checkout.id, "foreign_feature": foreign.id,
        "opt1": opt1.id, "opt2": opt2.id, "foreign_opt": foreign_opt.id, "opt2_key": opt2.key,
        "segment": segment.id, "segment_version": segment.version,
        "foreign_segment": foreign_segment.id,
        "seg_override": seg_override.id, "seg_override_env2": seg_override_env2.id,
        "alice": alice.id, "bob": bob.id, "admin_user": admin_user.id,
        "client_key": env.client_key, "server_key": key.key, "revoked_key": revoked.key,
        "foreign_key": foreign_key.id,
        # The versions the pages show (optimistic checks), so only the hostile part is wrong.
        "banner_version": states[banner.id, env.id].version,
        "checkout_version": states[checkout.id, env.id].version,
        "seg_override_version": seg_override.version, "plan_token": trait_version(plan),
    }  # fmt: skip
    db.session.commit()
    return {name: str(value) for name, value in ids.items()}


def build_logged_in_world() -> dict[str, str]:
    """Build the world and log the admin in through the real form (its ``last_login_at`` is
    part of the world); return the ids and the session cookie the login set."""
    ids = build_world()
    login = current_app.test_client()
    response = login.post("/login", data={"email": "admin@example.com", "password": "password123"})
    assert response.status_code == 302, "the admin could not log in"
    g.pop("_login_user", None)  # every case's request loads the user from its cookie
    cookie = login.get_cookie(current_app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None, "the login set no session cookie"
    return {**ids, SESSION: cookie.value}


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> Iterator[dict[str, str]]:
    """The world (built once per process, then restored), with the client logged in as an
    admin of every project: the first case of a process logs in through the form, the later
    ones carry the session cookie it set (the login is in the restored rows)."""
    ids = worlds.restore_or_build("hostile", build_logged_in_world)
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], ids.pop(SESSION))
    yield ids


def _fill(text: str, ids: dict[str, str]) -> str:
    return Template(text).safe_substitute(ids)


def _form(case: Case, ids: dict[str, str]) -> MultiDict[str, str]:
    items = case.form.items() if isinstance(case.form, dict) else case.form or []
    return MultiDict([(name, _fill(str(value), ids)) for name, value in items])


def send(client: FlaskClient, case: Case, ids: dict[str, str]) -> TestResponse:
    """Send one case's request as its caller would (SDK key header, htmx headers, body)."""
    headers = {name: _fill(value, ids) for name, value in case.headers.items()}
    is_api = case.url.startswith(JSON_PREFIXES)
    if is_api and case.key is not None:
        headers["X-Environment-Key"] = _fill(case.key, ids)
    if case.htmx:
        headers["HX-Request"] = "true"
    options: dict[str, Any] = {
        "method": case.method,
        "headers": headers,
        "environ_overrides": {name: _fill(v, ids) for name, v in case.environ.items()},
    }
    body = encode(case)
    if body is not None:
        options["data"] = body
        options.setdefault("content_type", headers.pop("Content-Type", "application/json"))
    elif case.form is not None:
        options["data"] = _form(case, ids)
    return client.open(_fill(case.url, ids), **options)


def message_of(response: TestResponse) -> str:
    """Return the message a caller sees: JSON detail, or the page's text without tags."""
    if response.is_json:
        payload = response.get_json()
        if isinstance(payload, dict):
            return str(payload.get("detail") or payload.get("errorDetails") or "")
        return ""
    return html.unescape(_TAGS.sub(" ", response.get_data(as_text=True)))


def without_one_rejection_event(
    before: dict[str, Any], after: dict[str, Any], case_id: str
) -> dict[str, Any]:
    """Drop the one ``*_rejected`` audit event a refused stale change records."""
    action = list(db.metadata.tables["audit_events"].c.keys()).index("action")
    new = [row for row in after["audit_events"] if row not in before["audit_events"]]
    rejected = [row for row in new if str(row[action]).endswith("_rejected")]
    assert len(rejected) == 1, f"[{case_id}] expected one *_rejected audit event, got {new}"
    return after | {"audit_events": [r for r in after["audit_events"] if r is not rejected[0]]}


def test_catalogue__size__at_least_sixty_distinct_cases() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= MIN_CASES
    assert len(set(ids)) == len(ids), "case ids must be unique"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input__case__refused_with_message_and_nothing_changed(
    client: FlaskClient, world: dict[str, str], case: Case
) -> None:
    # Given
    before = dump()

    # When
    response = send(client, case, world)
    after = dump()

    # Then
    text = response.get_data(as_text=True)
    assert response.status_code == case.status, (
        f"[{case.id}] expected {case.status}, got {response.status_code}: {text[:600]}"
    )
    if case.url.startswith(JSON_PREFIXES):
        assert response.is_json, f"[{case.id}] the API answered {response.mimetype}, not JSON"
    message = message_of(response)
    assert case.fragment in message, (
        f"[{case.id}] message lacks {case.fragment!r}: {' '.join(message.split())[:600]}"
    )
    for name, value in response.headers.items():
        assert INJECTED not in name.lower() and INJECTED not in value, (
            f"[{case.id}] injected header reached the response: {name}: {value}"
        )
    if case.audited_rejection:
        after = without_one_rejection_event(before, after, case.id)
    assert after == before, f"[{case.id}] the database changed: {describe_change(before, after)}"


def test_dump__hostile_world__reads_what_one_select_per_table_reads(
    world: dict[str, str],
) -> None:
    # Given the world (every kind of row: JSON, aware timestamps, booleans, NULLs)
    # When it is dumped (on PostgreSQL in one round trip) and read table by table
    dumped = dump()
    with db.engine.connect() as connection:
        by_table = dump_by_table(connection)
    # Then both give the same rows, with the same Python values and types
    assert dumped == by_table
    assert [[list(map(type, row)) for row in rows] for rows in dumped.values()] == [
        [list(map(type, row)) for row in rows] for rows in by_table.values()
    ]
    assert sum(map(len, dumped.values())) > 20
