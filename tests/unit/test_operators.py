"""Each operator as a Given/When/Then table: trait value, condition value, expected.

Every row is also checked against the official engine, so the tables document
the engine's quirks rather than our guesses.
"""

from __future__ import annotations

from typing import Any

import pytest
from flag_engine.segments.evaluator import context_matches_condition

from webapp.evaluation import Condition
from webapp.evaluation.segments import CompiledCondition, Subject

MISSING: Any = object()


def given_trait_when_condition(operator: str, value: str | None, trait: Any) -> bool:
    """Evaluate one condition on trait ``t`` and assert the engine agrees."""
    traits = {} if trait is MISSING else {"t": trait}
    ours = CompiledCondition(Condition("t", operator, value), "1").check(
        Subject("alice", "env_alice", traits, "env", "Production")
    )
    context: Any = {
        "environment": {"key": "env", "name": "Production"},
        "identity": {"identifier": "alice", "key": "env_alice", "traits": traits},
    }
    official = context_matches_condition(
        context, {"property": "t", "operator": operator, "value": value}, "1"
    )
    assert ours == official, "differs from flag_engine"
    return ours


def table(*rows: tuple[Any, str | None, bool, str]) -> Any:
    return pytest.mark.parametrize(
        ("trait", "value", "expected"), [pytest.param(t, v, e, id=i) for t, v, e, i in rows]
    )


@table(
    ("pro", "pro", True, "same text"),
    ("Pro", "pro", False, "case-sensitive"),
    (7, "7", True, "int trait casts value to int"),
    ("007", "7", True, "numeric-looking text trait becomes 7"),
    (42, "42.0", False, "int('42.0') fails"),
    (3.0, "3", True, "float trait casts value to float"),
    (True, "true", True, "bool trait: anything but False/false is true"),
    (True, "False", False, "bool trait vs 'False'"),
    (False, "0", False, "'0' is true for bools"),
    ("None", None, True, "null value compares as the text 'None'"),
    ("1.2.3", "1.2.3:semver", True, "semver equal"),
    ("1.2.3+build.9", "1.2.3:semver", True, "build metadata ignored"),
    ("1.2", "1.2.0:semver", False, "invalid trait version"),
    (MISSING, "pro", False, "missing trait"),
)
def test_equal(trait: Any, value: str | None, expected: bool) -> None:
    # Given a trait, When EQUAL is evaluated, Then:
    assert given_trait_when_condition("EQUAL", value, trait) is expected


@table(
    ("pro", "free", True, "different text"),
    ("pro", "pro", False, "same text"),
    (7, "seven", False, "failed cast makes it false, even for NOT_EQUAL"),
    (MISSING, "pro", False, "missing trait is false, NOT_EQUAL included"),
    ("1.2.3", "1.2.4:semver", True, "semver differs"),
    ("1.2.3", "bad:semver", False, "invalid condition version"),
)
def test_not_equal(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("NOT_EQUAL", value, trait) is expected


@table(
    (10, "9", True, "int above"),
    (9, "9", False, "int equal"),
    ("10", "9", True, "numeric text compares as int"),
    ("b", "a", True, "plain strings compare lexically"),
    ("10.0.0", "9.0.0", False, "without :semver, versions compare as text"),
    ("10.0.0", "9.0.0:semver", True, "with :semver, by precedence"),
    ("1.0.0", "1.0.0-rc.1:semver", True, "release sorts after its pre-release"),
    ("1.0.0-beta.11", "1.0.0-beta.2:semver", True, "numeric identifiers compare as numbers"),
    ("1.0.0-alpha.1", "1.0.0-alpha:semver", True, "more identifiers sort later"),
    (True, "false", True, "True > False"),
    (10.5, "10.25", True, "float"),
    (10, "9.5", False, "int trait, int('9.5') fails"),
)
def test_greater_than(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("GREATER_THAN", value, trait) is expected


@table(
    (9, "9", True, "equal ints"),
    ("2.0.0", "2.0.0:semver", True, "equal versions"),
    (8, "9", False, "below"),
)
def test_greater_than_inclusive(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("GREATER_THAN_INCLUSIVE", value, trait) is expected


@table(
    (8, "9", True, "int below"),
    ("-3", "0", True, "negative numeric text"),
    ("1.0.0-alpha", "1.0.0:semver", True, "pre-release below release"),
    ("a", "b", True, "text"),
    (MISSING, "9", False, "missing"),
)
def test_less_than(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("LESS_THAN", value, trait) is expected


@table(
    (9, "9", True, "equal"),
    (9.5, "9.5", True, "equal floats"),
    (10, "9", False, "above"),
)
def test_less_than_inclusive(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("LESS_THAN_INCLUSIVE", value, trait) is expected


@table(
    ("Acme Corp", "Corp", True, "substring"),
    ("Acme Corp", "corp", False, "case-sensitive"),
    (1234, "23", False, "false for numbers"),
    ("1.2.3-beta", "beta:semver", True, "semver quirk: equals the pre-release part"),
    ("1.2.3-beta", "1.2:semver", False, "semver quirk: not a substring test"),
)
def test_contains(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("CONTAINS", value, trait) is expected


@table(
    ("Acme Corp", "Globex", True, "not a substring"),
    ("Acme Corp", "Corp", False, "substring"),
    (1234, "5", False, "false for non-strings"),
    (MISSING, "x", False, "missing"),
)
def test_not_contains(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("NOT_CONTAINS", value, trait) is expected


@table(
    ("pro-plan", "pro", True, "anchored at the start"),
    ("my-pro", "pro", False, "re.match, not re.search"),
    ("a@example.com", r".*@example\.com$", True, "full pattern"),
    (42, "4", True, "matches str(trait)"),
    ("007", "007", False, "trait normalised to 7 before str()"),
    (True, "Tru", True, "str(True)"),
)
def test_regex(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("REGEX", value, trait) is expected


@table(
    ("", None, True, "empty string counts as set"),
    (0, None, True, "zero is set"),
    (MISSING, None, False, "missing"),
)
def test_is_set(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("IS_SET", value, trait) is expected


@table(
    (MISSING, None, True, "missing"),
    ("", None, False, "empty string is set"),
)
def test_is_not_set(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("IS_NOT_SET", value, trait) is expected


@table(
    (4, "2|0", True, "even"),
    (5, "2|1", True, "odd"),
    ("4", "2|0", True, "numeric text becomes an int"),
    (True, "2|1", True, "booleans count as 1"),
    (2.5, "0.5|0", True, "float divisor"),
    ("four", "2|0", False, "text trait"),
    (4, "2", False, "no remainder part"),
    (4, "a|b", False, "not numbers"),
    (4, "2|0|1", False, "too many parts"),
)
def test_modulo(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("MODULO", value, trait) is expected


@table(
    ("uk", "uk,fr", True, "comma list"),
    ("fr", "uk, fr", False, "no trimming"),
    (7, "7,8", True, "ints compare as text"),
    ("007", "7", True, "numeric text is an int first"),
    ("007", "007", False, "... so '007' no longer matches '007'"),
    (1.5, "1.5", False, "floats never match"),
    (True, "True", False, "booleans never match"),
    ("pro", '["pro", "free"]', True, "JSON array"),
    ("True", "[true]", True, "JSON true becomes 'True'"),
    ("[pro", "[pro,free", True, "invalid JSON falls back to splitting"),
    ("", "", True, "empty value holds the empty string"),
)
def test_in(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("IN", value, trait) is expected


@table(
    ("x", "100", True, "100 holds everyone"),
    ("x", "0", False, "0 holds (almost) nobody"),
    ("x", "abc", False, "not a number"),
    (MISSING, "100", False, "missing trait"),
)
def test_percentage_split_on_trait(trait: Any, value: str | None, expected: bool) -> None:
    assert given_trait_when_condition("PERCENTAGE_SPLIT", value, trait) is expected


def test_percentage_split__no_property__hashes_segment_and_identity_key() -> None:
    # Given a split without property: bucket of ["1", "env_user1"] is 34.53 (SPEC vector)
    subject = Subject("user1", "env_user1", {}, "env", "Production")

    def split(threshold: str) -> bool:
        condition = Condition("", "PERCENTAGE_SPLIT", threshold)
        return CompiledCondition(condition, "1").check(subject)

    # When / Then
    assert split("34.53") is True
    assert split("34.52") is False


def test_unknown_operator__never_matches() -> None:
    assert given_trait_when_condition("SOUNDS_LIKE", "pro", "pro") is False
