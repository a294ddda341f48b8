"""Refused REGEX patterns in the pure engine: they never match; every other pattern is untouched.

The service layer (``webapp.services.regex_guard``) decides which patterns backtrack
catastrophically and hands them over as plain data (``EnvironmentSnapshot.refused_patterns``
or the ``refused`` argument); these tests only cover how the engine honours that set.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flag_engine.segments.evaluator import context_matches_condition

from webapp.evaluation import (
    Condition,
    EnvironmentSnapshot,
    FeatureInput,
    IdentityInput,
    Rule,
    SegmentInput,
    SegmentOverrideInput,
    compile_snapshot,
    evaluate,
    validate_rules,
)
from webapp.evaluation.operators import build_predicate
from webapp.evaluation.segments import CompiledCondition, CompiledSegment, Subject

SLOW = r"(a+)+$"
OTHER = r"^[a-z]+@example\.com$"
TRAITS: list[Any] = ["aaa", "a", "", "bob@example.com", "x", 12, 1.5, True, None]


def _official(pattern: str, trait: Any) -> bool:
    context: Any = {
        "environment": {"key": "k", "name": "n"},
        "identity": {"identifier": "u", "key": "k_u", "traits": {"t": trait}},
    }
    condition: Any = {"property": "t", "operator": "REGEX", "value": pattern}
    return bool(context_matches_condition(context, condition, "7"))


def _subject(trait: Any) -> Subject:
    return Subject("u", "k_u", {"t": trait}, "k", "n")


def _snapshot(pattern: str, refused: frozenset[str] = frozenset()) -> EnvironmentSnapshot:
    rule = Rule("ALL", (Condition("t", "REGEX", pattern),))
    override = SegmentOverrideInput(1, "gate", "s1", True, "on")
    return EnvironmentSnapshot(
        "k", "n", (FeatureInput(1, "gate", "f1", False, "off"),),
        (SegmentInput("7", "regex", (rule,), (override,)),), refused_patterns=refused,
    )  # fmt: skip


@pytest.mark.parametrize("trait", TRAITS)
def test_build_predicate__refused_pattern__never_matches(trait: Any) -> None:
    # Given a pattern the caller refused (the engine itself matches "aaa")
    test = build_predicate("REGEX", SLOW, "7", frozenset({SLOW}))
    # When / Then: a deliberate difference from the engine, which would hang on long values
    assert test(trait) is False


@pytest.mark.parametrize("trait", TRAITS)
def test_build_predicate__other_patterns_with_a_refused_set__equal_official_engine(
    trait: Any,
) -> None:
    # Given a refused set that does not hold the pattern
    compiled = CompiledCondition(Condition("t", "REGEX", OTHER), "7", frozenset({SLOW}))
    # When / Then
    assert compiled.check(_subject(trait)) is _official(OTHER, trait)


def test_build_predicate__refused_set__only_applies_to_regex() -> None:
    # Given the same text as the value of an EQUAL condition
    test = build_predicate("EQUAL", SLOW, "7", frozenset({SLOW}))
    # When / Then: only REGEX conditions are affected
    assert test(SLOW) is True


def test_compiled_segment__refused_pattern_in_nested_rule__never_matches() -> None:
    # Given a segment whose nested rule holds a refused pattern
    inner = Rule("ANY", (Condition("t", "REGEX", SLOW),))
    segment = SegmentInput("7", "s", (Rule("ALL", rules=(inner,)),))
    # When
    plain = CompiledSegment(segment, 0).matches(_subject("aaa"))
    guarded = CompiledSegment(segment, 0, frozenset({SLOW})).matches(_subject("aaa"))
    # Then
    assert (plain, guarded) == (True, False)


def test_compile_snapshot__refused_patterns__segment_never_matches() -> None:
    # Given the same environment without and with the pattern refused
    alice = IdentityInput("alice", {"t": "aaa"})
    # When
    plain = evaluate(compile_snapshot(_snapshot(SLOW)), alice)
    guarded = evaluate(compile_snapshot(_snapshot(SLOW, frozenset({SLOW}))), alice)
    # Then
    assert plain.flags["gate"].value == "on" and [s.key for s in plain.segments] == ["7"]
    assert guarded.flags["gate"].value == "off" and guarded.segments == ()


def test_snapshot__replace__keeps_refused_patterns() -> None:
    # Given a snapshot with refusals, edited the way the change-impact preview edits it
    snapshot = _snapshot(SLOW, frozenset({SLOW}))
    # When
    edited = dataclasses.replace(snapshot, segments=snapshot.segments[:1])
    # Then
    assert edited.refused_patterns == frozenset({SLOW})
    assert evaluate(compile_snapshot(edited), IdentityInput("a", {"t": "aaa"})).segments == ()


def test_regex__parentheses_nested_too_deeply__false_where_the_engine_raises() -> None:
    # Given a pattern re.compile cannot parse without exhausting the stack
    deep = "(" * 1000 + "a" + ")" * 1000
    with pytest.raises(RecursionError):
        _official(deep, "a")
    # When / Then: the condition fails instead of the whole request, and validation says so
    assert CompiledCondition(Condition("t", "REGEX", deep), "7").check(_subject("a")) is False
    errors = validate_rules((Rule("ALL", (Condition("t", "REGEX", deep),)),))
    assert [e.message for e in errors] == [
        "invalid regular expression: parentheses nested too deeply"
    ]
