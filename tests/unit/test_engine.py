"""Evaluation: precedence, priorities, splits, reasons and the public entry points."""

from __future__ import annotations

from bisect import bisect_right

import pytest

from webapp.evaluation import (
    Condition,
    EnvironmentSnapshot,
    FeatureInput,
    FlagSource,
    IdentityInput,
    IdentityOverrideInput,
    Rule,
    SegmentInput,
    SegmentMatch,
    SegmentOverrideInput,
    Variant,
    compile_snapshot,
    evaluate,
    evaluate_feature,
    hashed_percentage,
)
from webapp.evaluation.compile import pick_option

PRO = Rule("ALL", (Condition("plan", "EQUAL", "pro"),))
ADULT = Rule("ALL", (Condition("age", "GREATER_THAN_INCLUSIVE", "18"),))
BANNER = FeatureInput(1, "banner", "101", False, "default")
COLOURS = FeatureInput(
    2,
    "colour",
    "102",
    True,
    "grey",
    (Variant("red", 30, 2, "r"), Variant("blue", 30.0, 1, "b")),
)
PLAIN = FeatureInput(3, "plain", "103", True, None)


def override(
    name: str, value: str, priority: float | None, key: str = "900"
) -> SegmentOverrideInput:
    feature_id = {"banner": 1, "colour": 2}[name]
    return SegmentOverrideInput(feature_id, name, key, True, value, (), priority)


def environment(
    *segments: SegmentInput,
    identity_overrides: dict[str, tuple[IdentityOverrideInput, ...]] | None = None,
) -> EnvironmentSnapshot:
    return EnvironmentSnapshot(
        "env", "Production", (BANNER, COLOURS, PLAIN), segments, identity_overrides or {}
    )


ALICE = IdentityInput("alice", {"plan": "pro", "age": 30})


def test_evaluate__no_identity__environment_defaults_without_split() -> None:
    # Given an environment with a segment override every identity matches
    compiled = compile_snapshot(
        environment(SegmentInput("1", "Pro", (PRO,), (override("banner", "pro", 1),)))
    )

    # When
    result = evaluate(compiled)

    # Then (the SDK drops segments for environment flags, so everything is STATIC)
    assert result.flags["banner"].value == "default"
    assert result.flags["colour"].variant is None
    assert {flag.reason for flag in result.flags.values()} == {"STATIC"}
    assert result.segments == ()


def test_evaluate__segment_override__wins_over_default() -> None:
    compiled = compile_snapshot(
        environment(SegmentInput("1", "Pro", (PRO,), (override("banner", "pro", 1),)))
    )

    flag = evaluate(compiled, ALICE).flags["banner"]

    assert (flag.enabled, flag.value) == (True, "pro")
    assert flag.reason == "TARGETING_MATCH; segment=Pro"
    assert (flag.reason_kind, flag.reason_detail, flag.segment_key) == (
        "TARGETING_MATCH",
        "segment=Pro",
        "1",
    )


def test_evaluate__not_in_segment__default_reason_for_targeted_static_for_others() -> None:
    compiled = compile_snapshot(
        environment(SegmentInput("1", "Pro", (PRO,), (override("banner", "pro", 1),)))
    )

    flags = evaluate(compiled, IdentityInput("bob", {"plan": "free"})).flags

    assert (flags["banner"].value, flags["banner"].reason) == ("default", "DEFAULT")
    assert flags["plain"].reason == "STATIC"


@pytest.mark.parametrize(
    ("first", "second", "winner"),
    [
        (2, 1, "adult"),
        (1, 2, "pro"),
        (1, 1, "pro"),
        (None, 5, "adult"),
        (None, None, "pro"),
        (-1, 0, "pro"),
    ],
    ids=[
        "lower wins",
        "lower wins (first)",
        "tie: project order",
        "missing is +inf",
        "both missing: project order",
        "negative",
    ],
)
def test_evaluate__matching_segments__lowest_priority_then_project_order(
    first: int | None, second: int | None, winner: str
) -> None:
    # Given two matching segments overriding the same feature
    compiled = compile_snapshot(
        environment(
            SegmentInput("7", "Pro", (PRO,), (override("banner", "pro", first),)),
            SegmentInput("3", "Adult", (ADULT,), (override("banner", "adult", second),)),
        )
    )

    # When / Then
    assert evaluate(compiled, ALICE).flags["banner"].value == winner


def test_evaluate__identity_override__wins_over_segment_and_is_never_split() -> None:
    compiled = compile_snapshot(
        environment(
            SegmentInput("1", "Pro", (PRO,), (override("banner", "pro", 0),)),
            identity_overrides={
                "alice": (
                    IdentityOverrideInput("banner", False, "mine"),
                    IdentityOverrideInput("colour", True, "fixed"),
                )
            },
        )
    )

    flags = evaluate(compiled, ALICE).flags

    assert (flags["banner"].enabled, flags["banner"].value) == (False, "mine")
    assert flags["banner"].reason == "TARGETING_MATCH; segment=identity_overrides"
    assert (flags["colour"].value, flags["colour"].variant) == ("fixed", None)
    assert {flags[n].source for n in ("banner", "colour")} == {FlagSource.IDENTITY_OVERRIDE}


def test_evaluate__overrides_argument__replaces_snapshot_overrides() -> None:
    compiled = compile_snapshot(
        environment(identity_overrides={"alice": (IdentityOverrideInput("banner", True, "snap"),)})
    )

    flags = evaluate(compiled, ALICE, overrides=[IdentityOverrideInput("plain", False, "db")]).flags

    assert flags["banner"].value == "default"
    assert (flags["plain"].enabled, flags["plain"].value) == (False, "db")
    assert evaluate(compiled, ALICE, overrides=[]).flags["banner"].value == "default"


def test_evaluate__override_for_unknown_feature__is_ignored() -> None:
    compiled = compile_snapshot(environment())
    flags = evaluate(compiled, ALICE, overrides=[IdentityOverrideInput("ghost", True, 1)]).flags
    assert "ghost" not in flags


def test_evaluate__multivariate__options_walked_by_priority() -> None:
    # Given options sorted by priority: blue [0, 30), red [30, 60), control above
    compiled = compile_snapshot(environment())

    for identifier in ["a", "b", "c", "d", "e", "f", "g", "h"]:
        # When
        flag = evaluate(compiled, IdentityInput(identifier)).flags["colour"]

        # Then
        bucket = hashed_percentage(["102", f"env_{identifier}"])
        if bucket < 30:
            assert (flag.value, flag.variant, flag.reason) == ("blue", "b", "SPLIT; weight=30.0")
        elif bucket < 60:
            assert (flag.value, flag.variant, flag.reason) == ("red", "r", "SPLIT; weight=30")
        else:
            assert (flag.value, flag.variant, flag.reason) == ("grey", "control", "STATIC")


def test_evaluate__explicit_identity_key__used_for_hashing() -> None:
    compiled = compile_snapshot(environment())
    by_key = evaluate(compiled, IdentityInput("x", key="env_a")).flags["colour"]
    assert by_key == evaluate(compiled, IdentityInput("a")).flags["colour"]


def test_evaluate__segments__reported_lazily_in_project_order() -> None:
    compiled = compile_snapshot(
        environment(
            SegmentInput("5", "Adult", (ADULT,)),
            SegmentInput("2", "Pro", (PRO,)),
            SegmentInput("9", "Empty"),
        )
    )

    result = evaluate(compiled, ALICE)

    assert result.segments == (SegmentMatch("5", "Adult"), SegmentMatch("2", "Pro"))
    assert "Adult" in repr(result)


def test_evaluate_feature__equals_evaluate() -> None:
    compiled = compile_snapshot(
        environment(
            SegmentInput("1", "Pro", (PRO,), (override("banner", "pro", 1),)),
            identity_overrides={"bob": (IdentityOverrideInput("plain", False, 0),)},
        )
    )
    for identity in [ALICE, IdentityInput("bob"), None]:
        flags = evaluate(compiled, identity).flags
        for name, flag in flags.items():
            assert evaluate_feature(compiled, name, identity) == flag


def test_evaluate_feature__unknown_feature__raises_key_error() -> None:
    with pytest.raises(KeyError):
        evaluate_feature(compile_snapshot(environment()), "ghost", ALICE)


def test_compiled_environment__is_reusable_and_inputs_untouched() -> None:
    snapshot = environment(SegmentInput("1", "Pro", (PRO,), (override("banner", "pro", 1),)))
    compiled = compile_snapshot(snapshot)
    first = evaluate(compiled, ALICE).flags
    evaluate(compiled, IdentityInput("bob", {"plan": "free"}))
    assert evaluate(compiled, ALICE).flags == first
    assert compiled.snapshot is snapshot


@pytest.mark.parametrize(
    "weights",
    [(30, 30.0), (33.3, 33.3, 33.4), (0, 100), (12.5,), (50, -10, 30), (0.01, 99.98)],
)
def test_split_table__every_bucket__picks_like_the_allocation_walk(
    weights: tuple[float, ...],
) -> None:
    # Given options with these weights (negative ones included: the walk still runs)
    variants = tuple(Variant(f"v{i}", w, i) for i, w in enumerate(weights))
    feature = FeatureInput(9, "mv", "909", True, "control-value", variants)
    outcome = compile_snapshot(EnvironmentSnapshot("env", "n", (feature,))).plans[0].default

    # When / Then: the bisect table agrees with the walk for every possible hash
    for number in range(9998):
        expected = pick_option(outcome.ranges, outcome.control, number / 9998 * 100)
        assert outcome.picks[bisect_right(outcome.cuts, number) - 1] is expected
