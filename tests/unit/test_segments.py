"""Segment membership: quantifiers, nesting, properties and rule validation."""

from __future__ import annotations

from typing import Any

import pytest

from webapp.evaluation import Condition, Rule, RuleError, SegmentInput, validate_rules
from webapp.evaluation.normalise import normalise
from webapp.evaluation.segments import (
    CompiledSegment,
    Subject,
    describe_property,
    parse_jsonpath,
    trait_keys,
)

TRUE = Condition("plan", "EQUAL", "pro")
FALSE = Condition("plan", "EQUAL", "free")


def in_segment(
    *rules: Rule, traits: dict[str, Any] | None = None, identifier: str = "alice"
) -> bool:
    """Evaluate a segment of the given rules for an identity on plan 'pro'."""
    subject = Subject(
        identifier, f"env_{identifier}", {"plan": "pro", **(traits or {})}, "env", "Production"
    )
    return CompiledSegment(SegmentInput("1", "s", rules), 0).matches(subject)


@pytest.mark.parametrize(
    ("kind", "conditions", "expected"),
    [
        ("ALL", (TRUE, TRUE), True),
        ("ALL", (TRUE, FALSE), False),
        ("ANY", (FALSE, TRUE), True),
        ("ANY", (FALSE, FALSE), False),
        ("NONE", (FALSE, FALSE), True),
        ("NONE", (FALSE, TRUE), False),
        ("ALL", (), True),
        ("ANY", (), True),
        ("NONE", (), True),
    ],
)
def test_rule__quantifier_over_conditions(
    kind: str, conditions: tuple[Condition, ...], expected: bool
) -> None:
    # Given a rule of one quantifier, When evaluated, Then (an empty list is satisfied)
    assert in_segment(Rule(kind, conditions)) is expected


def test_rule__nested_rules__use_the_same_quantifier() -> None:
    # Given ANY over a false condition, with nested rules one true, one false
    rule = Rule("ANY", (FALSE,), (Rule("ALL", (TRUE,)), Rule("ALL", (FALSE,))))

    # Then conditions fail the ANY, so the rule fails whatever its sub-rules do
    assert in_segment(rule) is False
    assert in_segment(Rule("ANY", (TRUE,), (Rule("ALL", (TRUE,)), Rule("ALL", (FALSE,))))) is True
    assert in_segment(Rule("NONE", (FALSE,), (Rule("ALL", (FALSE,)),))) is True
    assert (
        in_segment(Rule("ALL", (TRUE,), (Rule("ALL", (TRUE,), (Rule("NONE", (TRUE,)),)),))) is False
    )


def test_segment__without_rules__never_matches() -> None:
    assert in_segment() is False


def test_segment__every_top_level_rule_must_hold() -> None:
    assert in_segment(Rule("ALL", (TRUE,)), Rule("ANY", (TRUE,))) is True
    assert in_segment(Rule("ALL", (TRUE,)), Rule("ANY", (FALSE,))) is False


def test_rule__unknown_type__never_matches() -> None:
    assert in_segment(Rule("SOME", (TRUE,))) is False


@pytest.mark.parametrize(
    ("prop", "traits", "identifier", "value", "expected"),
    [
        ("$.identity.identifier", {}, "alice", "alice", True),
        ("$.identity.key", {}, "alice", "env_alice", True),
        ("$.environment.name", {}, "alice", "Production", True),
        ("$.environment.key", {}, "alice", "env", True),
        ("$.identity.traits.plan", {}, "alice", "pro", True),
        ("$.identity.traits['plan']", {}, "alice", "pro", True),
        ("$.identity .identifier", {}, "alice", "alice", True),
        ("$.identity.identifier", {"$.identity.identifier": "bob"}, "alice", "bob", True),
        ("$.identity.identifier", {"$.identity.identifier": "bob"}, "alice", "alice", False),
        ("$.identity.key ", {}, "alice", "env_alice", False),
        ("$.identity.key ", {"$.identity.key ": "x"}, "alice", "x", True),
        ("$.identity.traits", {}, "alice", "pro", False),
    ],
    ids=[
        "identifier",
        "identity key",
        "environment name",
        "environment key",
        "trait path",
        "bracket trait path",
        "blank between segments",
        "literal trait wins",
        "literal trait hides identifier",
        "invalid path reads as trait: missing",
        "invalid path reads as trait: present",
        "object is not a value",
    ],
)
def test_condition__jsonpath_properties(
    prop: str, traits: dict[str, Any], identifier: str, value: str, expected: bool
) -> None:
    assert (
        in_segment(
            Rule("ALL", (Condition(prop, "EQUAL", value),)), traits=traits, identifier=identifier
        )
        is expected
    )


def test_condition__identifier_looking_like_a_number__is_normalised() -> None:
    # "007" reads as the integer 7 through $.identity.identifier
    rule = Rule("ALL", (Condition("$.identity.identifier", "EQUAL", "7"),))
    assert in_segment(rule, identifier="007") is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7", 7),
        ("-7", -7),
        ("007", 7),
        ("1.50", 1.5),
        ("1.", "1."),
        (".5", ".5"),
        ("1e3", "1e3"),
        ("٣", "٣"),
        ("", ""),
        (3.0, 3.0),
        (True, True),
        (None, None),
        ("1.2.3", "1.2.3"),
    ],
)
def test_normalise__numeric_looking_text_only(raw: Any, expected: Any) -> None:
    value = normalise(raw)
    assert (type(value), value) == (type(expected), expected)


def test_parse_jsonpath__subset() -> None:
    assert parse_jsonpath("$.identity.traits.my-trait") == ("identity", "traits", "my-trait")
    assert parse_jsonpath('$["identity"]') == ("identity",)
    assert describe_property("$..identifier") == "unsupported jsonpath"
    assert describe_property("plan") == "trait"
    assert describe_property("$.environment.name") == "jsonpath"


def test_trait_keys__a_subject_holding_only_them__matches_alike() -> None:
    # Given rules over a trait, a trait path, a literal trait named like a path, and an
    # identity-key split, and identities holding more traits than the rules read
    rules = (
        Rule("ALL", (Condition("$.identity.traits.age", "GREATER_THAN", "30"),), (
            Rule("ANY", (Condition("$.identity.identifier", "EQUAL", "bob"),
                         Condition("", "PERCENTAGE_SPLIT", "50"))),
        )),
        Rule("NONE", (Condition("country", "EQUAL", "FR"),)),
    )  # fmt: skip
    segment = CompiledSegment(SegmentInput("1", "s", rules), 0)
    # When listing the keys the rules read
    keys = trait_keys(rules)
    # Then they are exactly those, and a subject holding only them matches alike
    assert keys == {"$.identity.traits.age", "age", "$.identity.identifier", "country"}
    verdicts = []
    for n in range(40):
        traits = {"age": 20 + n, "country": ["DE", "FR"][n % 2], "plan": "pro", "x": n}
        if n % 3 == 0:
            traits["$.identity.identifier"] = "bob"
        read = {key: value for key, value in traits.items() if key in keys}
        full, only = (Subject(f"u{n}", f"env_u{n}", t, "env", "P") for t in (traits, read))
        verdicts.append(segment.matches(full))
        assert segment.matches(only) is verdicts[-1], traits
    assert True in verdicts and False in verdicts


def test_validate_rules__reports_each_problem_with_its_path() -> None:
    # Given rules with one problem per condition
    rules = (
        Rule(
            "ALL",
            (
                Condition("email", "REGEX", "(unclosed"),
                Condition("version", "GREATER_THAN", "1.2:semver"),
                Condition("logins", "MODULO", "0|1"),
                Condition("", "PERCENTAGE_SPLIT", "half"),
                Condition("plan", "LIKE", "pro"),
                Condition("plan", "EQUAL", "pro"),
            ),
            (Rule("SOME", (Condition("n", "MODULO", "2"),)),),
        ),
    )

    # When
    errors = validate_rules(rules)

    # Then
    paths = [error.path for error in errors]
    assert paths == [
        ("rules", 0, "conditions", 0),
        ("rules", 0, "conditions", 1),
        ("rules", 0, "conditions", 2),
        ("rules", 0, "conditions", 3),
        ("rules", 0, "conditions", 4),
        ("rules", 0, "rules", 0),
        ("rules", 0, "rules", 0, "conditions", 0),
    ]
    assert "regular expression" in errors[0].message
    assert "semantic version" in errors[1].message
    assert "zero" in errors[2].message
    assert "unknown operator" in errors[4].message


def test_validate_rules__empty_segment() -> None:
    assert validate_rules(()) == [RuleError((), "the segment has no rules, so it never matches")]


def test_validate_rules__invalid_rules_still_evaluate_to_false() -> None:
    assert in_segment(Rule("ALL", (Condition("plan", "REGEX", "(unclosed"),))) is False
    assert in_segment(Rule("ALL", (Condition("n", "MODULO", "0|0"),)), traits={"n": 4}) is False
