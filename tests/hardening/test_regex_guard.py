"""Pathological REGEX conditions: refused when saved, bounded when evaluated.

A pattern like ``(a+)+$`` against a 2,000-character trait backtracks for longer than the
universe exists, holding the GIL the whole time. Saving such a pattern (dashboard builder,
edit, live preview, document import) is refused with a message naming the condition; one
already in the database (inserted by SQL here, bypassing the guard) never matches on the SDK
path and in member counts instead of stalling the worker. Ordinary patterns are accepted and
evaluate exactly as flagsmith-flag-engine does.

Stall detection: ``re`` holds the GIL, so a watchdog *thread* could never wake up while a
match runs away. ``_re`` does check for signals, though, so a SIGALRM in the main thread
interrupts a runaway match and fails the test (never a timing benchmark: the bound is
generous, it only tells "finished" from "stalled").
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flag_engine.segments.evaluator import context_matches_condition
from sqlalchemy import func, select

from tests.factories import (
    features_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from webapp.evaluation import Condition, EnvironmentSnapshot, Rule, SegmentInput, compile_snapshot
from webapp.evaluation.segments import Subject
from webapp.extensions import db
from webapp.models import AuditEvent, Environment, Feature, Segment
from webapp.services import documents, regex_guard
from webapp.services.errors import ValidationError
from webapp.services.segments import sql_membership

# Database behaviour (stored patterns, segment SQL and the SDK read path):
# runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

CATASTROPHIC = [r"(a+)+$", r"(a|aa)+$", r"(.*a){12}", r"^(\w+\s?)*$", r"(x+x+)+y"]
# Not caught by the static check: only the probe (a timed run) refuses these.
PROBE_ONLY = [r"(a|a)*$", r".*.*.*x"]
ORDINARY = [r"^[a-z]+@example\.com$", r".*beta.*", r"^1\.[0-9]+", r"(foo|bar)baz", r"[A-Z]{3}-\d+"]
REALISTIC = [
    *ORDINARY,
    r"^[\w.+-]+@[\w-]+\.[\w.-]+$",
    r"^[^@\s]+@([\w-]+\.)+[\w-]{2,}$",
    r".*@acme\.com$",
    r"^[\w.%+-]+@(gmail|yahoo|hotmail)\.com$",
    r"^v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$",
    r"^2\.(1[0-9]|[2-9][0-9])\.",
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    r"^(DE|FR|ES|IT|NL|BE|AT)$",
    r"^[A-Z]{2}(,[A-Z]{2})*$",
    r"^(?i:pro|enterprise)$",
    r"(?i)^admin",
    r"^user_\d+$",
    r"^internal-",
    r"^(beta|alpha)-.*",
    r"^(?!test).*",
    r"^\+?[1-9]\d{1,14}$",
    r"^(?:\d{1,3}\.){3}\d{1,3}$",
    r"^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$",
    r"^[a-z0-9]+(-[a-z0-9]+)*$",
    r"^[a-z]+(?:[-_][a-z]+)*$",
    r"^([a-z]+\s)*[a-z]+$",
    r"^[^,]+(,[^,]+)*$",
    r"^(?:[0-9]+,)*[0-9]+$",
    r"^https?://([\w-]+\.)+[a-z]{2,}(/.*)?$",
    r"^\d{5}(-\d{4})?$",
    r"^[A-Z][a-z]+ [A-Z][a-z]+$",
    r"^(ios|android)$",
    r"^((?!spam).)*$",
    r"^#?([a-f0-9]{6}|[a-f0-9]{3})$",
    r"\d+",
]
LONG = "a" * 1999 + "!"
STALL_BOUND = 20.0  # seconds; a stalled match would run for years
RICH = Path(__file__).resolve().parents[1] / "data" / "flagsmith_environment_rich.json"
HX = {"HX-Request": "true"}


class Stalled(Exception):
    """Raised by the watchdog when a request did not finish within the bound."""


@contextmanager
def stall_watchdog(seconds: float = STALL_BOUND) -> Iterator[None]:
    """Interrupt the body (even a runaway regex match) after ``seconds`` of wall time."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("the stall watchdog needs signals, which only the main thread receives")

    def alarm(signum: int, frame: Any) -> None:
        raise Stalled(f"still running after {seconds} s: the worker would have stalled")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _rules(pattern: str, prop: str = "email") -> list[dict[str, Any]]:
    condition = {"property_": prop, "operator": "REGEX", "value": pattern}
    return [{"type": "ALL", "conditions": [],
             "rules": [{"type": "ANY", "rules": [], "conditions": [condition]}]}]  # fmt: skip


def _builder(pattern: str, name: str = "Slow", version: int | None = None) -> dict[str, str]:
    data = {
        "name": name, "description": "", "match": "ALL",
        "groups-0-type": "ANY",
        "groups-0-conditions-0-property_": "plan", "groups-0-conditions-0-operator": "EQUAL",
        "groups-0-conditions-0-value": "pro",
        "groups-1-type": "ANY",
        "groups-1-conditions-0-property_": "email", "groups-1-conditions-0-operator": "REGEX",
        "groups-1-conditions-0-value": pattern,
    }  # fmt: skip
    if version is not None:
        data["version"] = str(version)
    return data


def _count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def world(app: Any) -> Any:
    project = make_project("Demo")
    env = make_environment(project, name="Production")
    make_user("editor@example.com", "editor", project)
    feature = make_feature(project, "gate", enabled=False, value="off")
    segment = make_segment(project, "Pro users")
    make_identity(env, "long", {"email": LONG, "plan": "pro"})
    db.session.commit()
    return {"project": project, "env": env, "feature": feature, "segment": segment}


# ---- refused on save ---------------------------------------------------------------
@pytest.mark.parametrize("pattern", CATASTROPHIC + PROBE_ONLY)
def test_create__catastrophic_regex__422_inline_message_and_nothing_saved(
    client: Any, auth: Any, world: Any, pattern: str
) -> None:
    # Given an editor
    auth.login("editor@example.com")
    env = world["env"]
    revision = env.revision
    # When saving a segment whose second group holds the pattern
    with stall_watchdog():
        response = client.post(
            f"/environments/{env.id}/segments/new", data=_builder(pattern), headers=HX
        )
    # Then the builder comes back with the message next to that condition
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    error = html.split('id="condition-1-0-error">')[1].split("</p>")[0]
    assert "catastrophic backtracking" in error
    # And nothing was written
    db.session.expire_all()
    assert _count(Segment) == 1 and _count(AuditEvent) == 0
    assert db.session.get(Environment, env.id).revision == revision


@pytest.mark.parametrize("pattern", CATASTROPHIC[:2])
def test_edit__catastrophic_regex__422_and_segment_unchanged(
    client: Any, auth: Any, world: Any, pattern: str
) -> None:
    # Given the saved segment
    auth.login("editor@example.com")
    env, segment = world["env"], world["segment"]
    before = (segment.name, segment.rules, segment.version)
    # When saving edited rules holding the pattern
    with stall_watchdog():
        response = client.put(
            f"/environments/{env.id}/segments/{segment.id}/edit",
            data=_builder(pattern, name="Renamed", version=segment.version),
            headers=HX,
        )
    # Then nothing is half-written: name, rules and version are as they were, no audit
    assert response.status_code == 422
    assert "catastrophic backtracking" in response.get_data(as_text=True)
    db.session.expire_all()
    saved = db.session.get(Segment, segment.id)
    assert (saved.name, saved.rules, saved.version) == before
    assert _count(AuditEvent) == 0


def test_preview__catastrophic_regex__reports_it_without_counting(
    client: Any, auth: Any, world: Any
) -> None:
    # Given an identity whose email is 2,000 characters of "a" and a "!"
    auth.login("editor@example.com")
    # When previewing the unsaved rules
    with stall_watchdog():
        response = client.post(
            f"/environments/{world['env'].id}/segments/preview", data=_builder(r"(a+)+$")
        )
    # Then the preview asks to fix the rules rather than counting members
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="preview-invalid"' in html and 'id="preview-count"' not in html


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_import__catastrophic_regex__refused_naming_the_condition_and_nothing_written(
    app: Any, pattern: str
) -> None:
    # Given a valid document with the pattern in its first segment's nested rule
    doc = json.loads(RICH.read_text())
    conditions = doc["project"]["segments"][0]["rules"][0]["rules"][0]["conditions"]
    conditions.append({"operator": "REGEX", "property_": "email", "value": pattern})
    index = len(conditions) - 1
    # When importing it
    with stall_watchdog(), pytest.raises(ValidationError) as raised:
        documents.import_environment_document(doc)
    # Then the error names the segment's condition and the pattern; nothing was imported
    message = str(raised.value)
    assert message.startswith(
        f"project.segments[0].rules[0].rules[0].conditions[{index}].value: "
    )
    assert "catastrophic backtracking" in message and repr(pattern) in message
    assert _count(Environment) == 0 and _count(Feature) == 0


def test_import_cli__catastrophic_regex__fails_and_writes_nothing(
    runner: Any, tmp_path: Path
) -> None:
    # Given the document on disk with a catastrophic pattern
    doc = json.loads(RICH.read_text())
    rule = doc["project"]["segments"][0]["rules"][0]["rules"][0]
    rule["conditions"] = [{"operator": "REGEX", "property_": "email", "value": r"(x+x+)+y"}]
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(doc))
    # When
    result = runner.invoke(args=["import-environment", str(path)])
    # Then
    assert result.exit_code != 0
    assert "catastrophic backtracking" in result.output
    assert _count(Environment) == 0


# ---- bounded on the SDK path ---------------------------------------------------------
@pytest.fixture
def slow_segment(world: Any) -> Any:
    """A catastrophic segment inserted directly (as by SQL or before the guard existed)."""
    slow = make_segment(world["project"], "Slow", _rules(r"(a+)+$"))
    features_make_segment_override(slow, world["feature"], world["env"], value="on", priority=1)
    db.session.commit()
    return slow


def _identify(client: Any, env: Environment, traits: dict[str, Any]) -> dict[str, Any]:
    body = {"identifier": "visitor",
            "traits": [{"trait_key": k, "trait_value": v} for k, v in traits.items()]}  # fmt: skip
    with stall_watchdog():
        response = client.post(
            "/api/v1/identities/", json=body, headers={"X-Environment-Key": env.client_key}
        )
    assert response.status_code == 200
    return {f["feature"]["name"]: f for f in response.get_json()["flags"]}


def test_identify__catastrophic_segment_and_2000_char_trait__returns_and_does_not_match(
    client: Any, world: Any, slow_segment: Any
) -> None:
    # When an SDK identifies with a trait the pattern would backtrack on for ever
    flags = _identify(client, world["env"], {"email": LONG})
    # Then the request finishes and the segment does not match (the flag keeps its default)
    assert flags["gate"]["enabled"] is False and flags["gate"]["feature_state_value"] == "off"


def test_identify__catastrophic_segment__never_matches_even_short_values(
    client: Any, world: Any, slow_segment: Any
) -> None:
    # Given "aaa", which the official engine matches (quickly) with (a+)+$
    # When / Then: a refused pattern never matches: one rule, not a length-dependent one
    flags = _identify(client, world["env"], {"email": "aaa"})
    assert flags["gate"]["feature_state_value"] == "off"


def test_identify__ordinary_regex_segment__still_matches(client: Any, world: Any) -> None:
    # Given a segment with an ordinary pattern, inserted the same way
    segment = make_segment(world["project"], "Example", _rules(r"^[a-z]+@example\.com$"))
    features_make_segment_override(segment, world["feature"], world["env"], value="on")
    db.session.commit()
    # When / Then
    assert _identify(client, world["env"], {"email": "bob@example.com"})["gate"][
        "feature_state_value"
    ] == "on"


def test_segments_page__catastrophic_segment__member_counts_return(
    client: Any, auth: Any, world: Any, slow_segment: Any
) -> None:
    # Given a stored identity whose email is 2,000 characters long
    auth.login("editor@example.com")
    # When listing segments (every segment's members are counted) and counting directly
    with stall_watchdog():
        response = client.get(f"/environments/{world['env'].id}/segments")
        members = sql_membership.count_members(world["env"].id, slow_segment.rules, "x")
    # Then both finish and nobody is a member
    assert response.status_code == 200 and "Slow" in response.get_data(as_text=True)
    assert members == 0


# ---- accepted patterns: no false positives, same results as the engine ---------------
@pytest.mark.parametrize("pattern", REALISTIC)
def test_guard__realistic_pattern__accepted(pattern: str) -> None:
    assert regex_guard.pattern_problem(pattern) is None


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_guard__classic_catastrophic_pattern__refused_without_running(pattern: str) -> None:
    assert regex_guard.has_nested_quantifier(pattern)
    assert regex_guard.pattern_problem(pattern) == regex_guard.MESSAGE


@pytest.mark.parametrize("pattern", PROBE_ONLY)
def test_guard__slow_pattern_without_nested_quantifier__refused_by_the_probe(
    pattern: str,
) -> None:
    assert not regex_guard.has_nested_quantifier(pattern)
    with stall_watchdog():
        assert regex_guard.is_refused(pattern)


def test_guard__invalid_pattern__left_to_validation() -> None:
    # Invalid patterns never match, so they cannot be slow; validation reports them.
    assert regex_guard.pattern_problem("(unclosed") is None


def test_probe_subjects__at_most_2000_characters_and_derived_from_the_pattern() -> None:
    subjects = regex_guard.probe_subjects(r"^user-(\d+)+$")
    assert subjects and all(len(s) <= regex_guard.SUBJECT_LENGTH for s in subjects)
    assert any(s.startswith("user-000") for s in subjects)


ORACLE_TRAITS: list[Any] = [
    "bob@example.com", "Bob@example.com", "bob@example.com.evil", "beta", "xbetax", "alpha",
    "1.2", "1.x", "1.23.4", "foobaz", "barbaz", "bazfoo", "ABC-123", "AB-1", "abc-123", "",
    "a" * 2000, "beta" * 500, "1." + "9" * 1998, 7, 1.5, True, False, None,
]  # fmt: skip


@pytest.mark.parametrize("pattern", ORDINARY)
def test_evaluate__accepted_pattern__equals_official_engine(pattern: str) -> None:
    # Given the pattern in a segment compiled the way the SDK path compiles it
    rule = Rule("ALL", (Condition("t", "REGEX", pattern),))
    snapshot = regex_guard.with_refusals(
        EnvironmentSnapshot("k", "n", segments=(SegmentInput("7", "s", (rule,)),))
    )
    segment = compile_snapshot(snapshot).segments[0]
    assert snapshot.refused_patterns == frozenset()
    outcomes = set()
    for trait in ORACLE_TRAITS:
        context: Any = {
            "environment": {"key": "k", "name": "n"},
            "identity": {"identifier": "u", "key": "k_u", "traits": {"t": trait}},
        }
        official = {"property": "t", "operator": "REGEX", "value": pattern}
        # When
        expected = context_matches_condition(context, official, "7")
        got = segment.matches(Subject("u", "k_u", {"t": trait}, "k", "n"))
        # Then
        assert got == expected, (pattern, trait)
        outcomes.add(got)
    assert outcomes == {True, False}, pattern
