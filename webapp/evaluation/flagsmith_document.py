"""Map a Flagsmith environment document to an EnvironmentSnapshot.

Mirrors ``flagsmith.mappers.map_environment_document_to_context`` so that hashing
keys, variant priorities, segment order and duplicate handling are the same.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .types import (
    Condition,
    EnvironmentSnapshot,
    FeatureInput,
    IdentityOverrideInput,
    Rule,
    SegmentInput,
    SegmentOverrideInput,
    Variant,
)

Document = Mapping[str, Any]


def snapshot_from_document(doc: Document) -> EnvironmentSnapshot:
    """Build a snapshot from the JSON the SDK's local evaluation downloads.

    :param doc: a Flagsmith environment document (``api_key``, ``name``,
        ``feature_states``, ``project.segments``, ``identity_overrides``)
    :return: the equivalent snapshot
    :raises KeyError: when a required document field is missing
    """
    # Like the SDK's dict comprehensions, a repeated name/id keeps its first
    # position and its last content.
    features: dict[str, FeatureInput] = {}
    for state in doc["feature_states"]:
        feature = _feature_state(state)
        features[feature.name] = feature
    segments: dict[str, SegmentInput] = {}
    for raw in doc["project"]["segments"]:
        segment = _segment(raw)
        segments[segment.key] = segment
    return EnvironmentSnapshot(
        key=doc["api_key"],
        name=doc["name"],
        features=tuple(features.values()),
        segments=tuple(segments.values()),
        identity_overrides=_identity_overrides(doc.get("identity_overrides") or ()),
    )


def _state_key(state: Document) -> str:
    return str(state.get("django_id") or state["featurestate_uuid"])


def _variants(state: Document) -> tuple[Variant, ...]:
    variants = []
    for mv_value in state.get("multivariate_feature_state_values") or ():
        option = mv_value["multivariate_feature_option"]
        priority = mv_value.get("id") or uuid.UUID(mv_value["mv_fs_value_uuid"]).int
        key = option.get("key")
        variants.append(
            Variant(
                value=option["value"],
                weight=mv_value["percentage_allocation"],
                priority=priority,
                key=None if key is None else str(key),
            )
        )
    return tuple(variants)


def _feature_state(state: Document) -> FeatureInput:
    return FeatureInput(
        feature_id=state["feature"]["id"],
        name=state["feature"]["name"],
        key=_state_key(state),
        enabled=state["enabled"],
        value=state["feature_state_value"],
        variants=_variants(state),
    )


def _segment_override(state: Document) -> SegmentOverrideInput:
    feature_segment = state.get("feature_segment")
    return SegmentOverrideInput(
        feature_id=state["feature"]["id"],
        feature_name=state["feature"]["name"],
        key=_state_key(state),
        enabled=state["enabled"],
        value=state["feature_state_value"],
        variants=_variants(state),
        priority=feature_segment["priority"] if feature_segment else None,
    )


def _segment(raw: Document) -> SegmentInput:
    return SegmentInput(
        key=str(raw["id"]),
        name=raw["name"],
        rules=_rules(raw["rules"]),
        overrides=tuple(_segment_override(s) for s in raw.get("feature_states") or ()),
    )


def _rules(rules: Iterable[Document]) -> tuple[Rule, ...]:
    return tuple(
        Rule(
            type=rule["type"],
            conditions=tuple(_condition(c) for c in rule.get("conditions", ())),
            rules=_rules(rule.get("rules", ())),
        )
        for rule in rules
    )


def _condition(raw: Document) -> Condition:
    value = raw["value"]
    if isinstance(value, list):
        # A list value only makes sense for IN, whose JSON reading gives the
        # same texts back (str of each non-string element).
        value = json.dumps(value)
    return Condition(property=raw.get("property_") or "", operator=raw["operator"], value=value)


def _identity_overrides(
    identities: Sequence[Document],
) -> dict[str, tuple[IdentityOverrideInput, ...]]:
    # The SDK groups identities with identical overrides into one pseudo-segment
    # each (priority -inf, so the first group in document order wins a clash).
    groups: dict[tuple[Any, ...], list[str]] = {}
    for identity in identities:
        states = identity["identity_features"]
        if not states:
            continue
        ordered = sorted(states, key=lambda state: state["feature"]["name"])
        # Equal tuples merge (True == 1 included), exactly as the SDK's dict does.
        group_key = tuple(
            (s["feature"]["id"], s["feature"]["name"], s["enabled"], s["feature_state_value"])
            for s in ordered
        )
        groups.setdefault(group_key, []).append(identity["identifier"])
    merged: dict[str, dict[str, IdentityOverrideInput]] = {}
    for group_key, identifiers in groups.items():
        for identifier in identifiers:
            per_feature = merged.setdefault(identifier, {})
            for feature_id, name, enabled, value in group_key:
                per_feature.setdefault(
                    name, IdentityOverrideInput(name, enabled, value, feature_id)
                )
    return {identifier: tuple(found.values()) for identifier, found in merged.items()}
