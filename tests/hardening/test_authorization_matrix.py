"""The authorisation matrix: every dashboard route against every kind of user.

``routes_table.ROUTES`` declares each route's weakest allowed role; a route missing from it
fails ``test_table__...``. For every route, each actor sends the route's valid request:
anonymous users are sent to the login page (htmx: 401), a user of another project gets
404, a weaker role 403 and an allowed one a success that changes the database when the
route is meant to. Refused requests must leave every table as it was. The mismatch cases
then send ids that do not belong together (another identity's event, trait or override, a
feature or option of another project...) through otherwise valid URLs: 404 (422 for an id
in the body, 403 when a QA user reaches for an identity not linked to them), and nothing
changed, for admins and QA users alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from string import Template

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from tests.hardening.dbdump import describe_change, dump, restore
from tests.hardening.routes_table import (
    ACTORS,
    ADMIN,
    ANY_ADMIN,
    EDITOR,
    LOGIN,
    ORG_ADMIN,
    PASSWORD,
    PUBLIC,
    QA,
    QA_OWN,
    ROUTES,
    VIEWER,
    body,
    build_url,
    collection_app,
    dashboard_routes,
    rule_for,
    world_on,
)
from webapp.extensions import db
from webapp.models import IdentityOverride

# Access rules: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")

_APP = collection_app()
ROUTE_KEYS = dashboard_routes(_APP)
RANK = {VIEWER: 1, QA: 2, QA_OWN: 2, EDITOR: 3, ADMIN: 4}
ACTOR_RANK = {"viewer": 1, "qa_own": 2, "qa_other": 2, "editor": 3, "admin": 4, "org_admin": 4}
HTMX = {"HX-Request": "true"}
Dump = dict[str, list[tuple[object, ...]]]


@pytest.fixture
def world(app: Flask, database: str) -> Iterator[dict[str, str]]:
    yield world_on()


def send(client: FlaskClient, url: str, method: str, **kwargs: object) -> TestResponse:
    """Send a request as its own: the tests share one app context, so Flask-Login's user
    (kept in ``g``) would otherwise carry over from another client's request."""
    g.pop("_login_user", None)
    return client.open(url, method=method, **kwargs)  # type: ignore[arg-type]


def client_for(app: Flask, actor: str) -> FlaskClient:
    client = app.test_client()
    email = ACTORS[actor]
    if email is not None:
        response = send(client, "/login", "POST", data={"email": email, "password": PASSWORD})
        assert response.status_code == 302, f"{actor} could not log in"
    return client


def expected(minimum: str, actor: str) -> str:
    """What ``actor`` must get from a route whose weakest allowed role is ``minimum``."""
    if minimum == PUBLIC:
        return "allowed"
    if actor == "anonymous":
        return "login"
    if minimum == LOGIN:
        return "allowed"
    if minimum == ANY_ADMIN:
        return "allowed" if actor in ("admin", "org_admin", "outsider") else "403"
    if minimum == ORG_ADMIN:  # not per project: a project admin is refused like everyone
        return "allowed" if actor == "org_admin" else "403"
    if actor == "outsider":
        return "404"
    if minimum == QA_OWN and actor == "qa_other":
        return "403"
    return "allowed" if ACTOR_RANK[actor] >= RANK[minimum] else "403"


def _refusal_problem(outcome: str, response: TestResponse, htmx: TestResponse | None) -> str:
    status = response.status_code
    if outcome == "login":
        if status != 302 or "/login" not in response.headers.get("Location", ""):
            return f"expected a redirect to /login, got {status}"
        assert htmx is not None
        if htmx.status_code != 401 or "/login" not in htmx.headers.get("HX-Redirect", ""):
            return f"htmx: expected 401 with HX-Redirect to /login, got {htmx.status_code}"
        return ""
    return "" if str(status) == outcome else f"expected {outcome}, got {status}"


def _allowed_problem(endpoint: str, response: TestResponse) -> str:
    status = response.status_code
    if not 200 <= status < 400:
        text = " ".join(response.get_data(as_text=True).split())[:300]
        return f"allowed but got {status} (is the table's body still valid?): {text}"
    location = response.headers.get("Location", "") + response.headers.get("HX-Redirect", "")
    if "/login" in location and not endpoint.startswith("auth."):
        return f"allowed but sent to the login page ({location})"
    return ""


def check_actor(
    client: FlaskClient, actor: str, endpoint: str, method: str, world: dict[str, str], before: Dump
) -> tuple[str, Dump]:
    """Send the route's request as ``actor``; return what went wrong ("" if nothing) and
    the database after it (``before`` is the database before it)."""
    route = ROUTES[(endpoint, method)]
    url = build_url(client.application, endpoint, method, world)
    data = body(endpoint, method, world)
    response = send(client, url, method, data=data)
    htmx = send(client, url, method, data=data, headers=HTMX) if actor == "anonymous" else None
    after = dump()
    outcome = expected(route.minimum, actor)
    if outcome != "allowed":
        problem = _refusal_problem(outcome, response, htmx)
        if not problem and after != before:
            change = describe_change(before, after)
            problem = f"refused ({response.status_code}) yet changed {change}"
    else:
        problem = _allowed_problem(endpoint, response)
        changed = after != before
        if not problem and changed != route.expects_change(method, actor):
            verb = f"changed {describe_change(before, after)}" if changed else "changed nothing"
            problem = f"allowed ({response.status_code}) but {verb}"
    return (f"{actor}: {problem}" if problem else ""), after


def test_table__every_dashboard_route__is_declared_and_nothing_else() -> None:
    missing = sorted(set(ROUTE_KEYS) - set(ROUTES))
    stale = sorted(set(ROUTES) - set(ROUTE_KEYS))
    assert not missing, f"declare these routes in tests/hardening/routes_table.ROUTES: {missing}"
    assert not stale, f"ROUTES lists routes the app no longer has: {stale}"
    assert len(ROUTE_KEYS) >= 60


ROUTE_IDS = [f"{endpoint}-{method}" for endpoint, method in ROUTE_KEYS]


@pytest.mark.parametrize(("endpoint", "method"), ROUTE_KEYS, ids=ROUTE_IDS)
def test_route__every_actor__gets_what_its_role_allows(
    app: Flask, world: dict[str, str], endpoint: str, method: str
) -> None:
    if (endpoint, method) not in ROUTES:
        pytest.fail(f"{endpoint} {method} is not declared in routes_table.ROUTES")
    # Everyone logs in first (a login records its time), then each sends the request on the
    # same database: a change an allowed actor made is undone before the next one's turn.
    clients = {actor: client_for(app, actor) for actor in ACTORS}
    snapshot = dump()
    problems = []
    for actor, client in clients.items():
        problem, after = check_actor(client, actor, endpoint, method, world, snapshot)
        problems.append(problem)
        if after != snapshot:
            restore(snapshot)
    found = [p for p in problems if p]
    assert not found, f"{endpoint} {method}:\n" + "\n".join(found)


# ---- ids that do not belong together ------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """A valid request with one id swapped for an object that does not belong with the rest."""

    id: str
    actor: str
    endpoint: str
    method: str
    status: int
    args: Mapping[str, str] = field(default_factory=dict)  # URL argument -> world name
    data: Mapping[str, str] = field(default_factory=dict)  # body fields, $placeholders
    query: str = ""  # appended to the URL, $placeholders


M = Mismatch
FOREIGN_FEATURE = {"feature_id": "foreign_feature"}
ENV2_IDENTITY = {"identity_id": "dave"}
TIER = {"key": "bob_only_trait"}  # a trait bob has and alice has not
MISMATCHES = [
    # identities of another environment or project, through this environment's URL
    M("identity-of-env2", "admin", "identities.detail", "GET", 404, {"identity_id": "dave"}),
    M("identity-of-other-project", "admin", "identities.toggle_override", "POST", 404,
      {"identity_id": "carol"}),
    M("qa-identity-of-env2", "qa_own", "identities.add_trait", "POST", 404, ENV2_IDENTITY),
    M("users-delete-env2-identity", "admin", "users.delete", "DELETE", 404, ENV2_IDENTITY),
    M("users-delete-post-foreign", "admin", "users.delete_post", "POST", 404,
      {"identity_id": "carol"}),
    # features of another project
    M("identity-flag-foreign-feature", "admin", "identities.flag", "GET", 404, FOREIGN_FEATURE),
    M("identity-why-foreign-feature", "admin", "identities.why", "GET", 404, FOREIGN_FEATURE),
    M("qa-toggle-foreign-feature", "qa_own", "identities.toggle_override", "POST", 404,
      FOREIGN_FEATURE),
    M("qa-edit-foreign-feature", "qa_own", "identities.edit_override", "GET", 404, FOREIGN_FEATURE),
    M("qa-update-foreign-feature", "qa_own", "identities.update_override", "PUT", 404,
      FOREIGN_FEATURE),
    M("qa-remove-foreign-feature", "qa_own", "identities.remove_override", "DELETE", 404,
      FOREIGN_FEATURE),
    M("qa-option-foreign-feature", "qa_own", "identities.choose_option", "POST", 404,
      FOREIGN_FEATURE),
    M("feature-toggle-foreign", "admin", "features.toggle", "POST", 404, FOREIGN_FEATURE),
    M("feature-delete-foreign", "admin", "features.delete", "DELETE", 404, FOREIGN_FEATURE),
    # identity overrides of another feature or environment
    M("override-of-other-feature", "admin", "features.remove_identity_override", "DELETE", 404,
      {"feature_id": "checkout"}),
    M("override-of-env2", "admin", "features.remove_identity_override", "DELETE", 404,
      {"override_id": "dave_banner_override"}),
    # options of another feature (in the URL: 404; in the body: 422)
    M("option-of-foreign-feature", "admin", "features.delete_option", "DELETE", 404,
      {"option_id": "foreign_opt"}),
    M("edit-option-of-foreign-feature", "admin", "features.edit_option", "GET", 404,
      {"option_id": "foreign_opt"}),
    M("update-option-of-foreign-feature", "admin", "features.update_option", "PUT", 404,
      {"option_id": "foreign_opt"}, data={"value_kind": "string", "value": "hijacked"}),
    M("qa-choose-foreign-option", "qa_own", "identities.choose_option", "POST", 422,
      data={"option_id": "$foreign_opt"}),
    M("allocation-foreign-option", "admin", "features.update_allocations", "PUT", 422,
      data={"allocations-0-option_id": "$foreign_opt"}),
    # another identity's audit event, link or trait through alice's URL
    M("undo-bobs-event", "admin", "identities.undo", "POST", 404, {"event_id": "bob_event"}),
    M("qa-undo-bobs-event", "qa_own", "identities.undo", "POST", 404, {"event_id": "bob_event"}),
    M("qa-undo-env2-event", "qa_own", "identities.undo", "POST", 404, {"event_id": "dave_event"}),
    M("unlink-link-of-bob", "admin", "identities.unlink", "DELETE", 404, {"user_id": "qa2_user"}),
    M("qa-unlink-someone-elses-link", "qa_own", "identities.unlink", "DELETE", 403,
      {"identity_id": "bob", "user_id": "qa2_user"}),
    M("qa-link-someone-else", "qa_own", "identities.link", "POST", 403,
      data={"email": "qa2@example.com"}),
    M("trait-row-of-bob", "admin", "identities.trait", "GET", 404, TIER),
    M("qa-edit-trait-of-bob", "qa_own", "identities.edit_trait", "GET", 404, TIER),
    M("qa-update-trait-of-bob", "qa_own", "identities.update_trait", "PUT", 404, TIER),
    M("qa-delete-trait-of-bob", "qa_own", "identities.delete_trait", "DELETE", 404, TIER),
    # a QA user on an identity not linked to them, by editing the URL
    M("qa-toggle-bob", "qa_own", "identities.toggle_override", "POST", 403, {"identity_id": "bob"}),
    M("qa-remove-bob-override", "qa_own", "identities.remove_override", "DELETE", 403,
      {"identity_id": "bob"}),
    M("qa-add-trait-bob", "qa_own", "identities.add_trait", "POST", 403, {"identity_id": "bob"}),
    M("qa-delete-trait-bob", "qa_own", "identities.delete_trait", "DELETE", 403,
      {"identity_id": "bob"}),
    # segments and their overrides
    M("segment-of-other-project", "admin", "segments.delete", "DELETE", 404,
      {"segment_id": "foreign_segment"}),
    M("segment-override-of-env2", "admin", "segments.update_override", "PUT", 404,
      {"override_id": "seg_override_env2"}),
    M("segment-override-of-other-segment", "admin", "segments.delete_override", "DELETE", 404,
      {"segment_id": "beta"}),
    M("segment-override-foreign-feature", "admin", "segments.create_override", "POST", 422,
      data={"feature_id": "$foreign_feature"}),
    M("segment-override-foreign-option", "admin", "segments.create_override", "POST", 422,
      data={"feature_id": "$checkout", "allocations-0-option_id": "$foreign_opt",
            "allocations-0-percentage": "10"}),
    M("builder-foreign-segment", "admin", "segments.builder", "POST", 404,
      query="segment_id=$foreign_segment"),
    M("preview-foreign-segment", "admin", "segments.preview", "POST", 404,
      query="segment_id=$foreign_segment"),
    # the audit log of another project's environment
    M("audit-foreign-environment", "viewer", "audit.index", "GET", 422,
      query="environment=$other_env"),
    # keys and bulk actions
    M("revoke-foreign-key", "admin", "dashboard.revoke_server_key", "POST", 404,
      {"key_id": "foreign_key"}),
    M("bulk-override-foreign-feature", "admin", "users.bulk_apply", "POST", 422,
      data={"action": "override", "feature_id": "$foreign_feature", "value_type": "null"}),
    # projects: another project's environment, another organisation
    M("compare-foreign-environment", "admin", "projects.compare_environments", "GET", 422,
      query="left=$env&right=$other_env"),
    M("create-project-in-foreign-organisation", "admin", "projects.create", "POST", 403,
      data={"organisation_id": "$foreign_organisation", "name": "Sneaky"}),
]  # fmt: skip


def test_mismatches__every_route_with_two_object_ids__has_a_case() -> None:
    covered = {(case.endpoint, case.method) for case in MISMATCHES}
    several = [
        (endpoint, method)
        for endpoint, method in ROUTE_KEYS
        if len(rule_for(_APP, endpoint, method).arguments - {"environment_id"}) >= 2
    ]
    assert several, "the walk found no route taking several ids"
    missing = [key for key in several if key not in covered]
    assert not missing, f"add a MISMATCHES case (ids that do not belong together) for {missing}"


@pytest.mark.parametrize("case", MISMATCHES, ids=[case.id for case in MISMATCHES])
def test_mismatched_ids__valid_request_otherwise__is_refused_and_changes_nothing(
    app: Flask, world: dict[str, str], case: Mismatch
) -> None:
    # Given an allowed user and a request that would succeed with matching ids
    client = client_for(app, case.actor)
    url = build_url(app, case.endpoint, case.method, world, case.args)
    if case.query:
        url += "?" + Template(case.query).substitute(world)
    data = body(case.endpoint, case.method, world, case.data)
    before = dump()

    # When one id belongs to something else
    response = send(client, url, case.method, data=data)
    after = dump()

    # Then it is refused and nothing changed
    text = " ".join(response.get_data(as_text=True).split())[:300]
    assert response.status_code == case.status, f"{case.method} {url}: {text}"
    assert after == before, describe_change(before, after)


def test_reset_my_overrides__qa__removes_only_their_identities_overrides(
    app: Flask, world: dict[str, str]
) -> None:
    # Given overrides on alice (linked to qa@), bob (linked to qa2@) and dave (env2)
    client = client_for(app, "qa_own")

    # When qa@ resets their overrides here
    response = send(client, f"/environments/{world['env']}/my-identities/reset-overrides", "POST")

    # Then only alice's went
    assert response.status_code in (200, 302)
    db.session.rollback()
    owners = db.session.scalars(select(IdentityOverride.identity_id)).all()
    assert sorted(owners) == sorted(int(world[name]) for name in ("bob", "dave"))
    assert db.session.scalar(select(func.count(IdentityOverride.id))) == 2
