"""Explanations name the failing condition and the value seen; counterfactuals flip membership."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from strategies import documents, identities

from tests.hypothesis_profiles import examples
from webapp.evaluation import (
    Condition,
    EnvironmentSnapshot,
    FeatureInput,
    FlagSource,
    IdentityInput,
    IdentityOverrideInput,
    Rule,
    SegmentInput,
    SegmentOverrideInput,
    Variant,
    compile_snapshot,
    counterfactual,
    evaluate,
    explain,
    snapshot_from_document,
)

PRO_USERS = SegmentInput(
    "1",
    "Pro users",
    (
        Rule(
            "ALL",
            (Condition("plan", "EQUAL", "pro"), Condition("age", "GREATER_THAN", "17")),
        ),
    ),
    (SegmentOverrideInput(1, "banner", "900", True, "pro banner", (), 1),),
)
EVERYONE_HALF = SegmentInput(
    "2", "Half", (Rule("ALL", (Condition("", "PERCENTAGE_SPLIT", "50"),)),)
)
SNAPSHOT = EnvironmentSnapshot(
    "env",
    "Production",
    (
        FeatureInput(1, "banner", "101", False, "default"),
        FeatureInput(2, "colour", "102", True, "grey", (Variant("red", 50, 1, "r"),)),
    ),
    (PRO_USERS, EVERYONE_HALF),
)
COMPILED = compile_snapshot(SNAPSHOT)


def test_explain__names_the_failing_condition_and_the_value_seen() -> None:
    # Given a free-plan identity whose age arrives as numeric text
    identity = IdentityInput("alice", {"plan": "free", "age": "030"})

    # When
    trace = explain(COMPILED, identity).segment("1")

    # Then
    plan, age = trace.rules[0].conditions
    assert trace.matched is False
    assert (plan.property, plan.operator, plan.value, plan.seen, plan.matched) == (
        "plan",
        "EQUAL",
        "pro",
        "free",
        False,
    )
    assert (plan.source, plan.cast, plan.cast_value) == ("trait", "str", "pro")
    assert (age.seen, age.cast, age.cast_value, age.matched) == (30, "int", 17, True)


def test_explain__missing_trait_and_failed_cast() -> None:
    trace = explain(COMPILED, IdentityInput("bob", {"plan": "pro", "age": 1.5})).segment("1")
    plan, age = trace.rules[0].conditions
    assert plan.matched is True
    assert (age.seen, age.cast, age.cast_value, age.matched) == (1.5, "float", 17.0, False)
    missing = explain(COMPILED, IdentityInput("bob", {})).segment("1").rules[0].conditions[0]
    assert (missing.seen, missing.cast, missing.matched) == (None, None, False)


def test_explain__percentage_split_shows_the_bucket() -> None:
    trace = explain(COMPILED, IdentityInput("alice")).segment("2")
    condition = trace.rules[0].conditions[0]
    assert condition.source == "identity key"
    assert condition.seen == "env_alice"
    assert condition.bucket is not None
    assert condition.matched is (condition.bucket <= 50)


def test_explain__feature_sources_candidates_and_split() -> None:
    # Given a pro user
    explanation = explain(COMPILED, IdentityInput("carol", {"plan": "pro", "age": 40}))

    # Then
    banner = explanation.feature("banner")
    assert banner.source is FlagSource.SEGMENT
    assert [(c.segment_name, c.priority, c.matched) for c in banner.candidates] == [
        ("Pro users", 1, True)
    ]
    colour = explanation.feature("colour")
    assert colour.split is not None
    assert [(r.start, r.limit, r.value) for r in colour.split.ranges] == [(0.0, 50.0, "red")]
    assert (colour.result.value == "red") is (colour.split.bucket < 50)
    # The control value of a split is the default's, not the split's
    assert colour.source is (FlagSource.SPLIT if colour.split.bucket < 50 else FlagSource.DEFAULT)


def test_explain__identity_override_source() -> None:
    explanation = explain(
        COMPILED, IdentityInput("d"), [IdentityOverrideInput("banner", True, "x")]
    )
    assert explanation.feature("banner").source is FlagSource.IDENTITY_OVERRIDE


def test_explain__segment_named_like_the_overrides_pseudo_segment__is_a_segment_source() -> None:
    # Given a segment whose name makes its reason read like an identity override's
    named = dataclasses.replace(PRO_USERS, name="identity_overrides")
    compiled = compile_snapshot(dataclasses.replace(SNAPSHOT, segments=(named,)))

    # When
    banner = explain(compiled, IdentityInput("e", {"plan": "pro", "age": 40})).feature("banner")

    # Then the reason is the SDK's, and the source is still the segment
    assert banner.result.reason == "TARGETING_MATCH; segment=identity_overrides"
    assert (banner.source, banner.result.segment_key) == (FlagSource.SEGMENT, "1")


def test_explain__agrees_with_evaluate() -> None:
    for identity in [IdentityInput("a", {"plan": "pro", "age": 20}), IdentityInput("b")]:
        explanation = explain(COMPILED, identity)
        result = evaluate(COMPILED, identity)
        assert {f.name: f.result for f in explanation.features} == dict(result.flags)
        assert [s.key for s in explanation.segments if s.matched] == [
            s.key for s in result.segments
        ]


def test_counterfactual__suggests_the_plan_change() -> None:
    # Given a free-plan adult
    identity = IdentityInput("alice", {"plan": "free", "age": 30})

    # When
    change = counterfactual(COMPILED, "1", identity)

    # Then
    assert (change.is_member, change.trait_key, change.new_value, change.remove) == (
        False,
        "plan",
        "pro",
        False,
    )
    assert change.statement == "plan is 'free'; set plan = 'pro' to enter 'Pro users'"


def test_counterfactual__leaving_by_removing_a_trait() -> None:
    change = counterfactual(COMPILED, "1", IdentityInput("alice", {"plan": "pro", "age": 30}))
    assert (change.is_member, change.trait_key, change.remove) == (True, "plan", True)
    assert change.statement == "plan is 'pro'; remove plan to leave 'Pro users'"


def test_counterfactual__split_on_identity_key__no_trait_change_can() -> None:
    change = counterfactual(COMPILED, "2", IdentityInput("alice"))
    assert change.trait_key is None
    assert "percentage split on the identity key" in change.statement


def _member(compiled: Any, segment_key: str, identity: IdentityInput) -> bool:
    return segment_key in {s.key for s in evaluate(compiled, identity).segments}


@settings(
    max_examples=examples(150),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(doc=documents(), identity=identities())
def test_counterfactual__applying_the_suggestion__flips_membership(
    doc: dict[str, Any], identity: dict[str, Any]
) -> None:
    # Given
    compiled = compile_snapshot(snapshot_from_document(doc))
    subject = IdentityInput(identity["identifier"], identity["traits"], identity.get("key"))
    for segment in compiled.segments:
        # When
        change = counterfactual(compiled, segment.key, subject)
        assert change.is_member is _member(compiled, segment.key, subject)
        if change.trait_key is None:
            continue
        traits = dict(subject.traits)
        if change.remove:
            traits.pop(change.trait_key, None)
        else:
            traits[change.trait_key] = change.new_value

        # Then
        changed = dataclasses.replace(subject, traits=traits)
        assert _member(compiled, segment.key, changed) is not change.is_member
