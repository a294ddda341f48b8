"""Differential tests: Flagpost's engine against flagsmith-flag-engine 11.x (the oracle).

Hypothesis draws Flagsmith environment documents and identities; the official
path is ``flagsmith.mappers.map_environment_document_to_context`` +
``flag_engine.engine.get_evaluation_result`` (exactly what the SDK's local
evaluation runs), ours is ``snapshot_from_document`` + ``compile_snapshot`` +
``evaluate``. Every flag's enabled, value, variant and reason must agree, and so
must the list of matched project segments.

Settings: ``derandomize=False`` keeps exploring new examples on every CI run (a
fixed seed would re-check the same 2,000 forever). The example counts come from the
Hypothesis profile (``tests/hypothesis_profiles.py``: 2,000 under ``ci``, fewer under
``dev``); a failure is stored in the local example database (``.hypothesis/``,
git-ignored) and replayed first on the next run, and its ``@reproduce_failure`` blob is
printed to replay it elsewhere.
"""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import flagsmith.mappers
import pytest
from flag_engine.engine import get_evaluation_result
from flag_engine.segments.evaluator import context_matches_condition
from flagsmith.mappers import map_environment_document_to_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import (
    IN_VALUES,
    MODULO_VALUES,
    OPERATORS,
    REGEX_VALUES,
    SEMVER_VALUES,
    SPLIT_VALUES,
    TEXT_VALUES,
    documents,
    identities,
)

from tests.hypothesis_profiles import examples
from webapp.evaluation import (
    Condition,
    FlagSource,
    IdentityInput,
    compile_snapshot,
    evaluate,
    evaluate_feature,
    snapshot_from_document,
)
from webapp.evaluation.segments import CompiledCondition, Subject

DIFFERENTIAL = settings(
    max_examples=examples(2000),
    deadline=None,
    derandomize=False,
    # A failure prints its @reproduce_failure blob (and is kept in .hypothesis/ locally).
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _typed(value: Any) -> tuple[str, Any]:
    # True == 1 == 1.0 in Python; the type is part of the answer.
    return type(value).__name__, value


def official_context(doc: dict[str, Any]) -> Any:
    """Map ``doc`` as the official SDK does, with one upstream bug kept out.

    The SDK's mapper keys each group of identity overrides by ``str(hash(values))``, and in
    Python ``hash("") == hash(0) == hash(False) == hash(0.0) == 0``: with one identity
    overridden to ``""`` and another to ``0``, both groups get the same key and the first
    identity loses its override (``test_sdk_mapper__empty_string_and_zero__collide`` shows
    it). Flagpost keeps both, so the mapper is given a key that tells the values' types apart
    and the official engine then decides from the same overrides.
    """
    with mock.patch.object(flagsmith.mappers, "hash", repr, create=True):
        return map_environment_document_to_context(doc)


def _official_identity_context(doc: dict[str, Any], identity: dict[str, Any]) -> Any:
    context = official_context(doc)
    identity_context: dict[str, Any] = {
        "identifier": identity["identifier"],
        "traits": identity["traits"],
    }
    if "key" in identity:
        identity_context["key"] = identity["key"]
    return {**context, "identity": identity_context}


def _without_override_hijack(doc: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
    # Known, deliberate difference (SPEC §2): the SDK applies identity overrides
    # via `$.identity.identifier IN [...]`, which a trait literally named
    # "$.identity.identifier" hijacks. Flagpost applies overrides by identity.
    traits = identity["traits"]
    if doc["identity_overrides"] and traits.get("$.identity.identifier") is not None:
        traits = {**traits, "$.identity.identifier": identity["identifier"]}
    return {**identity, "traits": traits}


def _source_said_by(reason: str, segment_key: str | None) -> FlagSource:
    """Read the source off the official reason (a segment may be named identity_overrides)."""
    kind = reason.partition(";")[0]
    if kind == "SPLIT":
        return FlagSource.SPLIT
    if kind in ("DEFAULT", "STATIC"):
        return FlagSource.DEFAULT
    if reason == "TARGETING_MATCH; segment=identity_overrides" and segment_key is None:
        return FlagSource.IDENTITY_OVERRIDE
    return FlagSource.SEGMENT


def assert_same_flags(official: dict[str, Any], ours: Any) -> None:
    """Assert both engines produced the same flags, feature by feature, sources agreeing."""
    assert set(official) == set(ours)
    for name, flag in official.items():
        mine = ours[name]
        got = (mine.enabled, _typed(mine.value), mine.variant, mine.reason)
        expected = (flag["enabled"], _typed(flag["value"]), flag["variant"], flag["reason"])
        assert got == expected, name
        assert mine.source is _source_said_by(flag["reason"], mine.segment_key), name


def official_segments(result: Any) -> list[tuple[str, str]]:
    """Return the engine's matched project segments (the SDK drops override pseudo-segments)."""
    return [
        (str(s["metadata"]["id"]), s["name"])
        for s in result["segments"]
        if s.get("metadata", {}).get("source") == "api"
    ]


@pytest.mark.heavy(seconds=35)
@DIFFERENTIAL
@given(doc=documents(), identity=identities(), data=st.data())
def test_evaluate__random_documents__equal_official_engine(
    doc: dict[str, Any], identity: dict[str, Any], data: st.DataObject
) -> None:
    # Given
    identity = _without_override_hijack(doc, identity)
    compiled = compile_snapshot(snapshot_from_document(doc))
    subject = IdentityInput(identity["identifier"], identity["traits"], identity.get("key"))

    # When
    official = get_evaluation_result(_official_identity_context(doc, identity))
    ours = evaluate(compiled, subject)

    # Then
    assert_same_flags(official["flags"], ours.flags)
    assert [(s.key, s.name) for s in ours.segments] == official_segments(official)
    name = data.draw(st.sampled_from(sorted(official["flags"])))
    assert evaluate_feature(compiled, name, subject) == ours.flags[name]


@settings(max_examples=examples(200), deadline=None, print_blob=True)
@given(doc=documents())
def test_evaluate__no_identity__equals_sdk_environment_flags(doc: dict[str, Any]) -> None:
    # Given: the SDK evaluates environment flags with the segments removed
    context = official_context(doc)
    context.pop("segments", None)
    compiled = compile_snapshot(snapshot_from_document(doc))

    # When
    official = get_evaluation_result(context)
    ours = evaluate(compiled)

    # Then
    assert_same_flags(official["flags"], ours.flags)
    assert ours.segments == ()


def test_sdk_mapper__empty_string_and_zero__collide() -> None:
    """The upstream bug ``official_context`` works around: while it lasts, this passes; once
    the SDK tells the two overrides apart, it fails and the workaround can go."""
    # Given: alice is overridden to "" and bob to 0
    state = {"feature": {"id": 1, "name": "f0", "type": "STANDARD"}, "enabled": False,
             "feature_state_value": "on", "multivariate_feature_state_values": [],
             "featurestate_uuid": "0b1c3a52-7f8e-4d21-9a57-3c2e1f0d9b84"}  # fmt: skip
    features = [state]
    overrides = [
        {"identifier": name, "identity_features": [{**features[0], "enabled": True,
                                                    "feature_state_value": value}]}
        for name, value in (("alice", ""), ("bob", 0))
    ]  # fmt: skip
    doc = {"api_key": "k", "name": "e", "feature_states": features,
           "project": {"id": 1, "name": "p", "segments": []},
           "identity_overrides": overrides}  # fmt: skip
    alice = {"identifier": "alice", "traits": {}}

    # When
    upstream = get_evaluation_result({**map_environment_document_to_context(doc),
                                      "identity": alice})  # fmt: skip
    kept_apart = get_evaluation_result(_official_identity_context(doc, alice))
    ours = evaluate(compile_snapshot(snapshot_from_document(doc)), IdentityInput("alice", {}))

    # Then: upstream, alice lost her override; with the types kept apart, both engines agree
    assert upstream["flags"]["f0"]["reason"] == "DEFAULT"
    assert_same_flags(kept_apart["flags"], ours.flags)
    assert _typed(ours.flags["f0"].value) == ("str", "")


# ---- condition level: an exhaustive grid ----------------------------------------
_GRID_TRAITS: list[Any] = [
    *TEXT_VALUES,
    *[v[:-7] for v in SEMVER_VALUES],
    "1.2.3+build.5",
    "beta",
    0,
    7,
    10,
    -3,
    10.5,
    3.0,
    1e16,
    True,
    False,
    None,
]


def _grid() -> list[tuple[str, str | None]]:
    pools = {
        "REGEX": REGEX_VALUES,
        "MODULO": [*MODULO_VALUES, None],
        "IN": IN_VALUES,
        "PERCENTAGE_SPLIT": SPLIT_VALUES,
    }
    default = [*TEXT_VALUES, *SEMVER_VALUES, None]
    return [(op, v) for op in [*OPERATORS, "UNKNOWN_OP"] for v in pools.get(op, default)]


def test_conditions__operator_value_trait_grid__equal_official_engine() -> None:
    # Given every operator with every pooled value, against every kind of trait
    outcomes: dict[str, set[bool]] = {}
    for operator, value in _grid():
        condition = Condition("t", operator, value)
        compiled = CompiledCondition(condition, "7")
        for trait in _GRID_TRAITS:
            context: Any = {
                "environment": {"key": "k", "name": "n"},
                "identity": {"identifier": "u", "key": "k_u", "traits": {"t": trait}},
            }
            subject = Subject("u", "k_u", {"t": trait}, "k", "n")
            official_condition = {"property": "t", "operator": operator, "value": value}

            # When
            expected = context_matches_condition(context, official_condition, "7")
            got = compiled.check(subject)

            # Then
            assert got == expected, (operator, value, trait)
            outcomes.setdefault(operator, set()).add(got)
    # Every real operator both matched and failed somewhere in the grid.
    assert all(outcomes[op] == {True, False} for op in OPERATORS), outcomes


@pytest.mark.parametrize(
    ("operator", "value", "trait", "error"),
    [
        ("REGEX", "(unclosed", "x", re.error),
        ("MODULO", "0|0", 4, ZeroDivisionError),
        ("PERCENTAGE_SPLIT", None, "x", TypeError),
        ("IN", None, "x", AttributeError),
    ],
)
def test_conditions__where_the_engine_raises__we_evaluate_to_false(
    operator: str, value: str | None, trait: Any, error: type[Exception]
) -> None:
    # Given a condition the official engine crashes on (a documented difference)
    context: Any = {
        "environment": {"key": "k", "name": "n"},
        "identity": {"identifier": "u", "key": "k_u", "traits": {"t": trait}},
    }
    official_condition: Any = {"property": "t", "operator": operator, "value": value}
    with pytest.raises(error):
        context_matches_condition(context, official_condition, "7")

    # When / Then: Flagpost fails the condition instead of the whole request
    compiled = CompiledCondition(Condition("t", operator, value), "7")
    assert compiled.check(Subject("u", "k_u", {"t": trait}, "k", "n")) is False
