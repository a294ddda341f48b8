"""SQL injection: search, sort, paging and filter parameters and segment rule values.

Classic payloads go into the Users page search language (identifier terms and trait
conditions), every sort/cursor/page/filter parameter of the Users page, audit log, segments
and features lists, and into segment rule values counted in SQL. Every answer is a 200 or a
4xx, searches return exactly the identities whose stored text literally matches, the
database is unchanged afterwards and the password hash never appears in a response.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, inspect, select

from tests import worlds
from tests.factories import (
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from tests.hardening.dbdump import describe_change, dump
from webapp.clock import utcnow
from webapp.evaluation import (
    EnvironmentSnapshot,
    IdentityInput,
    SegmentInput,
    compile_snapshot,
    evaluate,
)
from webapp.evaluation.operators import OPERATORS
from webapp.extensions import db
from webapp.models import AuditEvent, Environment, Identity, TypedValue
from webapp.services.errors import ValidationError
from webapp.services.identities import search_query, traits
from webapp.services.identities.search_sql import encode_cursor
from webapp.services.segments import sql_membership

# Database behaviour (search and filter SQL): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

ADMIN = "admin@example.com"
NUL = "a\x00b"
TOO_LONG = "B" * 5000
SQL_PAYLOADS = (
    "' OR '1'='1",
    "1; DROP TABLE identities; --",
    "x' UNION SELECT password_hash FROM users --",
    '") OR 1=1 --',
    "%' --",
    "%",
    "_",
    "\\",
    "\\' OR 1=1 --",
    "' || (SELECT password_hash FROM users LIMIT 1) || '",
    "1 OR 1=1",
    "'; DELETE FROM traits WHERE '1'='1",
    "é ünï 🚩 ʼ OR ʼ1ʼ=ʼ1",
    "A" * 900,
    NUL,
    TOO_LONG,
)
# What can be stored: PostgreSQL text has no NUL, identifiers and trait values stop at 2000.
STORED = tuple(p for p in SQL_PAYLOADS if "\x00" not in p and len(p) <= 2000)
DECOY = "~decoy"


def quoted(text: str) -> str:
    """Quote ``text`` as a string of the search language."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ----------------------------------------------------------------------------- world


@dataclass
class World:
    env: int
    people: dict[str, dict[str, TypedValue]]  # identifier -> traits
    ids: dict[str, int]  # identifier -> identity id
    segments: dict[str, int]  # payload -> segment id
    features: dict[str, int]  # name -> id
    password_hash: str


def _note_rules(payload: str) -> list[dict[str, Any]]:
    condition = {"property_": "note", "operator": "EQUAL", "value": payload}
    return [{"type": "ALL", "rules": [], "conditions": [condition]}]


def build_world() -> World:
    """One identity per payload (identifier, ``note`` trait and a trait keyed by it) and a
    decoy whose texts only start with it; a segment named after each payload; features
    whose names hold LIKE wildcards."""
    project = make_project()
    env = make_environment(project, "Production")
    admin = make_user(ADMIN, "admin", project)
    people: dict[str, dict[str, TypedValue]] = {
        "alice": {"note": "pro", "plan": "pro", "age": 41},
        "bob": {"note": "1", "plan": "free", "age": 25},
    }
    for n, payload in enumerate(STORED):
        people[payload] = {"note": payload, "n": n}
        if len(payload) <= 200:
            people[payload][payload] = "keyed"
        people[payload + DECOY] = {"note": payload + DECOY, "n": -n}
    ids = {ident: make_identity(env, ident, traits=values).id for ident, values in people.items()}
    segments = {
        payload: make_segment(project, payload, rules=_note_rules(payload)).id
        for payload in STORED
        if len(payload) <= 200
    }
    feature_ids = {
        name: make_feature(project, name).id
        for name in ("pct_100", "under_score", "plain.name", "dash-name")
    }
    db.session.commit()
    # Audited trait changes give the audit log's identity filter something to find.
    for payload in STORED[:4]:
        identity = db.session.get(Identity, ids[payload])
        traits.set_trait(admin, identity, "audited", payload[:50], "string", utcnow())
    return World(env.id, people, ids, segments, feature_ids, admin.password_hash)


@pytest.fixture
def world(app: Flask) -> World:
    return worlds.restore_or_build("sql_injection", build_world)


@pytest.fixture
def admin(client: FlaskClient, auth: Any, world: World) -> FlaskClient:
    assert auth.login(ADMIN).status_code == 302
    return client


# ----------------------------------------------------------------------------- oracles


def _equals(value: TypedValue, literal: search_query.Literal) -> bool:
    if literal.kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and (
            value == literal.number
        )
    if literal.kind == "boolean":
        return (isinstance(value, bool) and str(value).lower() == literal.text) or (
            value == literal.text
        )
    return isinstance(value, str) and value == literal.text


def _text(value: TypedValue) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _condition_holds(condition: search_query.Condition, traits_: dict[str, TypedValue]) -> bool:
    present = condition.key in traits_
    value = traits_.get(condition.key)
    op, values = condition.op, condition.values
    if op in ("IS_SET", "IS_NOT_SET"):
        return present == (op == "IS_SET")
    if not present:
        return False
    if op == "EQUAL":
        return _equals(value, values[0])
    if op == "NOT_EQUAL":
        return not _equals(value, values[0])
    if op == "IN":
        return any(_equals(value, v) for v in values)
    if op == "CONTAINS":  # the search's contains ignores case
        return values[0].text.lower() in _text(value).lower()
    number = values[0].number
    if not isinstance(value, int | float) or isinstance(value, bool) or number is None:
        return False
    return {"GREATER_THAN": value > number, "GREATER_THAN_INCLUSIVE": value >= number,
            "LESS_THAN": value < number, "LESS_THAN_INCLUSIVE": value <= number}[op]  # fmt: skip


def _identifier_holds(term: search_query.IdentifierTerm | None, identifier: str) -> bool:
    if term is None:
        return True
    if term.mode == "exact":
        return identifier == term.text
    if term.mode == "contains":
        return term.text.lower() in identifier.lower()
    return identifier.startswith(term.text)


def expected_matches(world: World, query: str) -> set[str] | None:
    """Return the identifiers a query truly matches (None: the query is malformed)."""
    try:
        parsed = search_query.parse_query(query)
    except ValidationError:
        return None
    return {
        identifier
        for identifier, traits_ in world.people.items()
        if _identifier_holds(parsed.identifier, identifier)
        and all(_condition_holds(c, traits_) for c in parsed.conditions)
    }


_IDENTITY_LINK = re.compile(r'class="identity-link"[^>]*>([^<]*)</a>')
_COUNT = re.compile(r'id="users-count">\s*<strong>([^<]*)</strong>')


def listed_identifiers(body: str) -> list[str]:
    return [html.unescape(m) for m in _IDENTITY_LINK.findall(body)]


# ----------------------------------------------------------------------------- checks


@dataclass
class Probe:
    """Send requests, remembering every failure instead of stopping at the first."""

    client: FlaskClient
    world: World
    failures: list[str]

    def get(self, path: str, params: dict[str, str] | None = None, partial: bool = False) -> Any:
        url = path + ("?" + urlencode(params) if params else "")
        headers = {"HX-Request": "true"} if partial else {}
        shown = repr(params)[:160]
        try:
            response = self.client.get(url, headers=headers)
        except Exception as exc:  # TESTING propagates what would be a 500
            db.session.rollback()
            self.failures.append(f"{path} {shown}: raised {exc!r}"[:300])
            return self.client.get("/login")  # a harmless stand-in to keep going
        body = response.get_data(as_text=True)
        if not 200 <= response.status_code < 500:
            self.failures.append(f"{path} {shown}: status {response.status_code}")
        if self.world.password_hash in body or "pbkdf2:sha256" in body:
            self.failures.append(f"{path} {shown}: the password hash leaked")
        return response


@pytest.fixture
def probe(admin: FlaskClient, world: World) -> Iterator[Probe]:
    before = dump()
    tables = set(inspect(db.engine).get_table_names())
    checker = Probe(admin, world, [])
    yield checker
    # Then, whatever the test sent: every table is still there and nothing changed
    assert set(inspect(db.engine).get_table_names()) == tables
    after = dump()
    assert after == before, describe_change(before, after)


def _users(world: World) -> str:
    return f"/environments/{world.env}/users"


def _search_queries(payload: str) -> list[str]:
    """The search-language shapes a payload is tried in: bare, quoted, in conditions."""
    text = quoted(payload)
    return [
        payload,
        text,
        f"~ {text}",
        f"note = {text}",
        f"note != {text}",
        f"note ~ {text}",
        f"note in ({text}, \"zzz\")",
        f"{text} is set",
        f"{text} = keyed",
        f"{text} is not set and note = {text}",
        f"plan = pro and {payload}",
        f"{payload} = 1",
    ]


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("payload", SQL_PAYLOADS, ids=lambda p: repr(p[:16]))
def test_users_search__sql_payload__returns_only_true_matches(
    probe: Probe, world: World, payload: str
) -> None:
    for query in _search_queries(payload):
        # When the payload is searched for in one of the language's shapes
        response = probe.get(_users(world), {"q": query})
        expected = expected_matches(world, query)
        body = response.get_data(as_text=True)
        shown = repr(query[:80])
        # Then a malformed query is a 422 and a valid one lists exactly the true matches
        if "\x00" in query:  # refused before any view: no database accepts NUL in text
            if response.status_code != 400:
                probe.failures.append(f"{shown}: NUL answered {response.status_code}")
            continue
        if expected is None:
            if response.status_code != 422:
                probe.failures.append(f"{shown}: malformed, answered {response.status_code}")
            continue
        if response.status_code != 200:
            probe.failures.append(f"{shown}: answered {response.status_code}")
            continue
        found = listed_identifiers(body)
        if set(found) != expected or len(found) != len(expected):
            probe.failures.append(f"{shown}: listed {sorted(found)[:5]}, expected "
                                  f"{sorted(expected)[:5]}")  # fmt: skip
        count = probe.get(_users(world) + "/count", {"q": query}).get_data(as_text=True)
        counted = _COUNT.search(count)
        if counted is None or counted.group(1) != f"{len(expected):,}":
            probe.failures.append(f"{shown}: count {count[:120]!r}, expected {len(expected)}")
    assert not probe.failures, "\n".join(probe.failures)


def test_users_search__exact_payload_identifier__finds_only_that_identity(
    probe: Probe, world: World
) -> None:
    # Given identities whose identifiers are SQL payloads and decoys extending them
    for payload in STORED:
        # When each is searched as an exact (quoted) identifier
        response = probe.get(_users(world), {"q": quoted(payload)})
        # Then exactly that identity is listed
        assert listed_identifiers(response.get_data(as_text=True)) == [payload]
    assert not probe.failures, "\n".join(probe.failures)


def _forged_cursors() -> list[str]:
    cursors = [encode_cursor(sort, p, 1) for sort in ("identifier", "-identifier")
               for p in SQL_PAYLOADS[:6]]  # fmt: skip
    cursors += [encode_cursor("identifier", "a", 2**70), encode_cursor("identifier", "a", -1)]
    cursors += [encode_cursor("created", "2024-01-01T00:00:00' OR '1'='1", 1)]
    cursors += [encode_cursor("created", "9999-12-31T23:59:59", 2**63)]
    return cursors


PARAMETER_PAYLOADS = (*SQL_PAYLOADS, "99999999999999999999", "-1", "0", "1e308", "NaN")


def test_users_page__sort_cursor_and_filter_payloads__never_fail(
    probe: Probe, world: World
) -> None:
    # Given the Users page's sort, cursor and filter parameters
    everyone = set(world.people)
    for payload in (*PARAMETER_PAYLOADS, *_forged_cursors()):
        for name in ("sort", "after", "before", "has_overrides"):
            for partial in (False, True):
                # When each carries a payload
                response = probe.get(_users(world), {name: payload}, partial)
                # Then the page still lists only real identities
                found = set(listed_identifiers(response.get_data(as_text=True)))
                if not found <= everyone:
                    probe.failures.append(f"{name}={payload[:40]!r}: listed {found - everyone}")
        probe.get(_users(world) + "/count", {"q": "", "has_overrides": payload})
    assert not probe.failures, "\n".join(probe.failures)


def test_users_page__unknown_sort__falls_back_to_identifier_order(
    probe: Probe, world: World
) -> None:
    # Given a sort parameter that is SQL rather than a column name
    response = probe.get(_users(world), {"sort": "identifier; DROP TABLE identities; --"})
    default = probe.get(_users(world), {"sort": "identifier"})
    # Then the page is the default-sorted one
    assert response.status_code == 200
    found = listed_identifiers(response.get_data(as_text=True))
    assert found == listed_identifiers(default.get_data(as_text=True))
    assert len(found) == min(len(world.people), 50)
    assert not probe.failures, "\n".join(probe.failures)


AUDIT_FILTERS = ("environment", "actor", "object_type", "identity", "since", "until", "cursor")


def test_audit_log__filter_payloads__never_fail(probe: Probe, world: World) -> None:
    # Given every filter of the audit log
    path = f"/environments/{world.env}/audit"
    for payload in PARAMETER_PAYLOADS:
        for name in AUDIT_FILTERS:
            for partial in (False, True):
                # When it carries a payload, the page answers 200 or 422
                probe.get(path, {name: payload}, partial)
    assert not probe.failures, "\n".join(probe.failures)


def test_audit_log__identity_filter_payload__lists_only_that_identitys_events(
    probe: Probe, world: World
) -> None:
    # Given audited trait changes on identities whose identifiers are SQL payloads
    path = f"/environments/{world.env}/audit"
    for payload in STORED[:4]:
        # When the log is filtered by one of those identifiers
        body = probe.get(path, {"identity": payload}).get_data(as_text=True)
        # Then it lists exactly that identity's events
        wanted = db.session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.identity_id == world.ids[payload])
        )
        assert wanted == 1
        assert body.count('class="audit-event"') == wanted, payload
    # And an actor filter of SQL matches no event
    body = probe.get(path, {"actor": "' OR '1'='1"}).get_data(as_text=True)
    assert 'class="audit-event"' not in body
    assert not probe.failures, "\n".join(probe.failures)


_SEGMENT_LINK = re.compile(r'class="segment-link"[^>]*>([^<]*)</a>')
_FEATURE_LINK = re.compile(r'class="feature-name">\s*<a [^>]*>([^<]*)</a>')


def test_segments_and_features_lists__search_payload__literal_substring_only(
    probe: Probe, world: World
) -> None:
    segments_path = f"/environments/{world.env}/segments"
    features_path = f"/environments/{world.env}/features"
    for payload in PARAMETER_PAYLOADS:
        # When the lists are searched for a payload
        segments_body = probe.get(segments_path, {"q": payload}).get_data(as_text=True)
        features_body = probe.get(features_path, {"q": payload}).get_data(as_text=True)
        probe.get(segments_path, {"q": payload}, partial=True)
        probe.get(features_path, {"q": payload}, partial=True)
        # Then only names containing it literally (ignoring case) are listed
        needle = payload.strip().lower()
        segment_names = {html.unescape(n) for n in _SEGMENT_LINK.findall(segments_body)}
        feature_names = {html.unescape(n) for n in _FEATURE_LINK.findall(features_body)}
        if "\x00" in payload:
            wanted_segments: set[str] = set()
            wanted_features: set[str] = set()
        else:
            wanted_segments = {s for s in world.segments if needle in s.lower()}
            wanted_features = {f for f in world.features if needle in f.lower()}
        if segment_names != wanted_segments:
            probe.failures.append(f"segments q={payload[:30]!r}: {segment_names}")
        if feature_names != wanted_features:
            probe.failures.append(f"features q={payload[:30]!r}: {feature_names}")
    assert not probe.failures, "\n".join(probe.failures)


def test_segment_and_feature_pages__paging_payloads__never_fail(
    probe: Probe, world: World
) -> None:
    segment = next(iter(world.segments.values()))
    env = f"/environments/{world.env}"
    feature_id = next(iter(world.features.values()))
    for payload in PARAMETER_PAYLOADS:
        for partial in (False, True):
            probe.get(f"{env}/segments/{segment}/members", {"q": payload}, partial)
            probe.get(f"{env}/segments/{segment}/members", {"after": payload}, partial)
            probe.get(f"{env}/segments/{segment}", {"tab": payload}, partial)
            probe.get(f"{env}/segments/{segment}", {"tab": "members", "q": payload}, partial)
            probe.get(f"{env}/features/{feature_id}/identity-overrides", {"page": payload},
                      partial)  # fmt: skip
            probe.get(f"{env}/features/{feature_id}", {"page": payload}, partial)
    assert not probe.failures, "\n".join(probe.failures)


# ----------------------------------------------------------------------------- segments in SQL


def _rules_with(payload: str) -> list[list[dict[str, Any]]]:
    """Segment rules carrying a payload as value, list item, regex and property."""
    def one(operator: str, value: str | None, prop: str = "note") -> list[dict[str, Any]]:
        condition = {"property_": prop, "operator": operator, "value": value}
        return [{"type": "ALL", "rules": [], "conditions": [condition]}]

    # Every operator of the registry takes the payload as its value.
    rules = [one(operator, payload) for operator in OPERATORS]
    rules.append(one("IN", f"{payload},pro"))
    rules.append(one("IN", f'["{payload}", "1"]'))
    if len(payload) <= 200:
        rules += [one("IS_SET", None, payload), one("EQUAL", "keyed", payload)]
        rules.append(one("EQUAL", payload, "$.identity.identifier"))
    return rules


def _python_members(world: World, env: Environment, rules: list[dict[str, Any]]) -> int:
    segment = SegmentInput(key="77", name="s", rules=sql_membership.rules_from_document(rules))
    compiled = compile_snapshot(EnvironmentSnapshot(env.client_key, env.name, segments=(segment,)))
    return sum(
        1
        for identifier, traits_ in world.people.items()
        if evaluate(compiled, IdentityInput(identifier, traits_)).segments
    )


@pytest.mark.parametrize("payload", STORED, ids=lambda p: repr(p[:16]))
def test_count_members__sql_payload_rule_values__equal_python_evaluation(
    world: World, payload: str
) -> None:
    # Given segment rules whose values, list items and properties are SQL payloads
    env = db.session.get(Environment, world.env)
    assert env is not None
    before = dump()
    for rules in _rules_with(payload):
        # When members are counted in SQL
        counted = sql_membership.count_members(world.env, rules, "77")
        # Then the count equals evaluating every identity in Python
        assert counted == _python_members(world, env, rules), rules
    # And the payload matched its own identity literally, and nothing changed
    assert sql_membership.count_members(world.env, _note_rules(payload), "77") == 1
    assert dump() == before


def test_segments_list__payload_named_segments__member_counts_are_literal(
    probe: Probe, world: World
) -> None:
    # Given a segment per payload whose rule is `note EQUAL <payload>`
    body = probe.get(f"/environments/{world.env}/segments").get_data(as_text=True)
    # When the list shows their member counts
    counts = re.findall(r'class="member-count">([^<]*)</td>', body)
    # Then each has exactly one member: the identity whose note is the payload
    assert counts == ["1"] * len(world.segments)
    assert not probe.failures, "\n".join(probe.failures)
