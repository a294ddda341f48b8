"""Typed inputs and outputs of flag evaluation (frozen, slotted, hashable where possible)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

FeatureValue = str | int | float | bool | None
TraitValue = str | int | float | bool
# A trait or JSONPath value after normalisation; None means "not set".
ContextValue = str | int | float | bool | None
RuleType = Literal["ALL", "ANY", "NONE"]

REASON_DEFAULT = "DEFAULT"
REASON_STATIC = "STATIC"
REASON_TARGETING_MATCH = "TARGETING_MATCH"
REASON_SPLIT = "SPLIT"
# The official SDK maps identity overrides to a pseudo-segment of this name, so the
# engine's reason reads "TARGETING_MATCH; segment=identity_overrides".
IDENTITY_OVERRIDES_SEGMENT_NAME = "identity_overrides"


class FlagSource(StrEnum):
    """Where a flag's state comes from; the reason string is the SDK's spelling of it.

    A split is a multivariate option picked by the identity's bucket (of the segment
    override named by ``segment_key``, else of the default); a split's control value
    counts as its segment's or the default's.
    """

    IDENTITY_OVERRIDE = "identity_override"
    SEGMENT = "segment"
    SPLIT = "split"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Variant:
    """One multivariate option and its percentage allocation.

    ``priority`` is the sort key of the allocation walk (Flagsmith: the multivariate
    feature-state value id, or the int of its uuid); ``weight`` keeps its original
    type because the SPLIT reason prints it (``weight=30`` vs ``weight=30.0``).
    """

    value: FeatureValue
    weight: float
    priority: int
    key: str | None = None


@dataclass(frozen=True, slots=True)
class FeatureInput:
    """An environment's default state of one feature; ``key`` seeds the split hash."""

    feature_id: int
    name: str
    key: str
    enabled: bool
    value: FeatureValue
    variants: tuple[Variant, ...] = ()


@dataclass(frozen=True, slots=True)
class SegmentOverrideInput:
    """A segment's state for one feature; a lower ``priority`` wins, None is +infinity."""

    feature_id: int
    feature_name: str
    key: str
    enabled: bool
    value: FeatureValue
    variants: tuple[Variant, ...] = ()
    priority: float | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """One segment condition; ``property`` is a trait key or a ``$.`` JSONPath."""

    property: str
    operator: str
    value: str | None


@dataclass(frozen=True, slots=True)
class Rule:
    """A quantified group of conditions and nested rules."""

    type: str
    conditions: tuple[Condition, ...] = ()
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class SegmentInput:
    """A project segment; ``key`` (the Flagsmith segment id as text) seeds split hashes."""

    key: str
    name: str
    rules: tuple[Rule, ...] = ()
    overrides: tuple[SegmentOverrideInput, ...] = ()


@dataclass(frozen=True, slots=True)
class IdentityOverrideInput:
    """One identity's fixed state for one feature; never split."""

    feature_name: str
    enabled: bool
    value: FeatureValue
    feature_id: int | None = None


@dataclass(frozen=True, slots=True)
class EnvironmentSnapshot:
    """Everything evaluation needs about one environment.

    ``segments`` keep the project's segment order: it breaks priority ties.
    ``refused_patterns`` are REGEX values the caller found to backtrack catastrophically:
    they never match (the official engine would hang on them instead).
    """

    key: str
    name: str
    features: tuple[FeatureInput, ...] = ()
    segments: tuple[SegmentInput, ...] = ()
    identity_overrides: Mapping[str, tuple[IdentityOverrideInput, ...]] = field(
        default_factory=dict
    )
    refused_patterns: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class IdentityInput:
    """The identity being evaluated; ``key`` defaults to ``"{env key}_{identifier}"``."""

    identifier: str
    traits: Mapping[str, TraitValue | None] = field(default_factory=dict)
    key: str | None = None


@dataclass(frozen=True, slots=True)
class FlagResult:
    """The evaluated state of one feature.

    ``reason`` is the official engine's string (``"TARGETING_MATCH; segment=Beta"``,
    ``"SPLIT; weight=30"``, ``"DEFAULT"``, ``"STATIC"``), for the APIs that return it;
    ``source`` says the same as a fixed value, so nothing parses the reason (a segment
    may be named ``identity_overrides``). ``segment_key`` names the segment whose
    override applied, if any.
    """

    feature_id: int
    name: str
    enabled: bool
    value: FeatureValue
    variant: str | None
    reason: str
    source: FlagSource
    segment_key: str | None = None

    @property
    def reason_kind(self) -> str:
        """Return the reason without its detail (``TARGETING_MATCH``, ``SPLIT``, ...)."""
        return self.reason.partition(";")[0]

    @property
    def reason_detail(self) -> str | None:
        """Return the reason's detail (``segment=Beta``, ``weight=30``) or None."""
        _, sep, detail = self.reason.partition("; ")
        return detail if sep else None


@dataclass(frozen=True, slots=True)
class SegmentMatch:
    """A project segment the identity belongs to."""

    key: str
    name: str


@dataclass(frozen=True, slots=True)
class RuleError:
    """A problem found in segment rules; ``path`` leads to the offending element."""

    path: tuple[int | str, ...]
    message: str
