"""Mapping a Flagsmith environment document exactly like flagsmith.mappers does."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from flag_engine.engine import get_evaluation_result
from flagsmith.mappers import map_environment_document_to_context

from webapp.evaluation import (
    IdentityInput,
    IdentityOverrideInput,
    compile_snapshot,
    evaluate,
    snapshot_from_document,
)

CASE = Path(__file__).parent / "cases" / "environment_document.json"


@pytest.fixture
def document() -> dict[str, Any]:
    return json.loads(CASE.read_text())  # type: ignore[no-any-return]


def test_snapshot__environment_and_feature_keys(document: dict[str, Any]) -> None:
    # When
    snapshot = snapshot_from_document(document)

    # Then: the hashing key is django_id, else the feature-state uuid
    assert (snapshot.key, snapshot.name) == ("client_key", "Production")
    assert [(f.name, f.key) for f in snapshot.features] == [
        ("banner", "11"),
        ("colour", "a3d5c7e9-1b2d-4f60-8a9b-c0d1e2f3a4b5"),
    ]


def test_snapshot__variant_priority_is_id_else_uuid_int(document: dict[str, Any]) -> None:
    variants = snapshot_from_document(document).features[1].variants
    assert [(v.value, v.priority, v.key, v.weight) for v in variants] == [
        ("red", 7, "r", 25),
        ("blue", uuid.UUID("00000000-0000-4000-8000-000000000001").int, None, 25.5),
    ]


def test_snapshot__repeated_segment_id__first_position_last_content(
    document: dict[str, Any],
) -> None:
    segments = snapshot_from_document(document).segments
    assert [(s.key, s.name) for s in segments] == [("5", "Pro users (renamed)"), ("3", "Everyone")]


def test_snapshot__segment_overrides_and_priorities() -> None:
    doc = json.loads(CASE.read_text())
    doc["project"]["segments"].pop()  # keep the first "5"
    overrides = snapshot_from_document(doc).segments[0].overrides
    assert [(o.feature_name, o.key, o.priority) for o in overrides] == [
        ("banner", "51", 2),
        ("colour", "ffffffff-ffff-4fff-bfff-ffffffffffff", None),
    ]
    conditions = snapshot_from_document(doc).segments[0].rules[0].conditions
    assert conditions[1].property == ""
    assert conditions[2].value == '["uk", true, 3]'


def test_snapshot__identity_overrides__equal_tuples_merge_like_the_sdk(
    document: dict[str, Any],
) -> None:
    # Given alice (value 1) and bob (value True): equal tuples for the SDK's dict
    overrides = snapshot_from_document(document).identity_overrides

    # Then bob joins alice's group and gets her value; carol (no features) is absent
    assert overrides == {
        "alice": (IdentityOverrideInput("banner", True, 1, 1),),
        "bob": (IdentityOverrideInput("banner", True, 1, 1),),
    }


@pytest.mark.parametrize("identifier", ["alice", "bob", "carol", "dave"])
@pytest.mark.parametrize("traits", [{}, {"plan": "pro", "country": "True"}, {"plan": "free"}])
def test_document__evaluates_like_the_official_engine(
    document: dict[str, Any], identifier: str, traits: dict[str, Any]
) -> None:
    # Given
    context: Any = {
        **map_environment_document_to_context(document),
        "identity": {"identifier": identifier, "traits": traits},
    }

    # When
    official = get_evaluation_result(context)
    ours = evaluate(
        compile_snapshot(snapshot_from_document(document)), IdentityInput(identifier, traits)
    )

    # Then
    for name, flag in official["flags"].items():
        mine = ours.flags[name]
        assert (mine.enabled, mine.value, type(mine.value), mine.variant, mine.reason) == (
            flag["enabled"],
            flag["value"],
            type(flag["value"]),
            flag["variant"],
            flag["reason"],
        )
