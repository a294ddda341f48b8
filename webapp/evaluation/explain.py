"""Why a flag has its value: full traces of rules, conditions and splits.

The traces re-run the compiled readers and predicates (no short-circuit, so
every condition is shown) and must agree with ``evaluate``; tests check that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .compile import CompiledEnvironment, Outcome
from .engine import evaluate, make_subject
from .hashing import hashed_percentage_of_text
from .operators import lookup, reads_identity_key
from .predicates import cast_condition_value, is_cast_failure
from .segments import CompiledCondition, CompiledRule, CompiledSegment, Subject, describe_property
from .types import (
    ContextValue,
    FeatureValue,
    FlagResult,
    FlagSource,
    IdentityInput,
    IdentityOverrideInput,
)


@dataclass(frozen=True, slots=True)
class ConditionTrace:
    """One condition as evaluated: what was read, how it was cast, the verdict."""

    property: str
    operator: str
    value: str | None
    source: str
    seen: ContextValue
    cast: str | None
    cast_value: Any
    bucket: float | None
    matched: bool


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One rule: its quantifier, verdict, and the traces beneath it."""

    type: str
    matched: bool
    conditions: tuple[ConditionTrace, ...]
    rules: tuple[RuleTrace, ...]


@dataclass(frozen=True, slots=True)
class SegmentTrace:
    """A segment's membership verdict and its rule traces."""

    key: str
    name: str
    matched: bool
    rules: tuple[RuleTrace, ...]


@dataclass(frozen=True, slots=True)
class SplitRange:
    """One multivariate option's bucket range ``start <= bucket < limit``."""

    start: float
    limit: float
    value: FeatureValue
    variant: str | None


@dataclass(frozen=True, slots=True)
class SplitTrace:
    """A multivariate split: the identity's bucket (0-100) and every range."""

    bucket: float
    ranges: tuple[SplitRange, ...]


@dataclass(frozen=True, slots=True)
class CandidateTrace:
    """A segment override considered for a feature, in the order tried."""

    segment_key: str
    segment_name: str
    priority: float
    matched: bool


@dataclass(frozen=True, slots=True)
class FeatureExplanation:
    """How one feature got its result (``source`` says from where)."""

    name: str
    result: FlagResult
    candidates: tuple[CandidateTrace, ...]
    split: SplitTrace | None

    @property
    def source(self) -> FlagSource:
        """Return where the result comes from."""
        return self.result.source


@dataclass(frozen=True, slots=True)
class Explanation:
    """Every feature and every segment, traced for one identity."""

    identity_key: str
    features: tuple[FeatureExplanation, ...]
    segments: tuple[SegmentTrace, ...]

    def feature(self, name: str) -> FeatureExplanation:
        """Return one feature's explanation.

        :raises KeyError: when there is no such feature
        """
        for item in self.features:
            if item.name == name:
                return item
        raise KeyError(name)

    def segment(self, key: str) -> SegmentTrace:
        """Return one segment's trace.

        :raises KeyError: when there is no such segment
        """
        for item in self.segments:
            if item.key == key:
                return item
        raise KeyError(key)


def explain(
    compiled: CompiledEnvironment,
    identity: IdentityInput,
    overrides: Sequence[IdentityOverrideInput] | None = None,
) -> Explanation:
    """Trace the evaluation of every feature and segment for an identity.

    :param compiled: the compiled environment
    :param identity: the identity to explain
    :param overrides: this identity's overrides, replacing the snapshot's for it
    :return: the traces; each feature's result equals ``evaluate``'s
    """
    subject = make_subject(compiled, identity)
    result = evaluate(compiled, identity, overrides=overrides)
    segments = tuple(trace_segment(s, subject) for s in compiled.segments)
    matched = {trace.key: trace.matched for trace in segments}
    features = tuple(
        _explain_feature(compiled, name, flag, matched, subject.key)
        for name, flag in result.flags.items()
    )
    return Explanation(subject.key, features, segments)


def trace_segment(segment: CompiledSegment, subject: Subject) -> SegmentTrace:
    """Trace every rule of a segment for a subject.

    :param segment: the compiled segment
    :param subject: the identity as conditions see it
    :return: the trace (a segment without rules never matches)
    """
    rules = tuple(_trace_rule(rule, subject) for rule in segment.rules)
    return SegmentTrace(segment.key, segment.name, segment.matches(subject), rules)


def _trace_rule(rule: CompiledRule, subject: Subject) -> RuleTrace:
    conditions = tuple(trace_condition(c, subject) for c in rule.conditions)
    rules = tuple(_trace_rule(r, subject) for r in rule.rules)
    return RuleTrace(rule.rule.type, rule.check(subject), conditions, rules)


def trace_condition(compiled: CompiledCondition, subject: Subject) -> ConditionTrace:
    """Trace one condition: the value read, the cast applied and the verdict.

    :param compiled: the compiled condition
    :param subject: the identity as conditions see it
    :return: the trace
    """
    condition = compiled.condition
    operator = lookup(condition.operator)
    seen = compiled.read(subject)
    cast, cast_value = None, None
    if operator.comparison is not None and seen is not None:
        cast, cast_value = cast_condition_value(condition.value, seen)
        cast_value = "<cast failed>" if is_cast_failure(cast_value) else cast_value
    bucket = None
    if operator.split and seen is not None:
        bucket = hashed_percentage_of_text(f"{compiled.segment_key},{seen}")
    return ConditionTrace(
        condition.property,
        condition.operator,
        condition.value,
        _source(condition.property, condition.operator),
        seen,
        cast,
        cast_value,
        bucket,
        compiled.test(seen),
    )


def _source(property_: str, operator: str) -> str:
    if reads_identity_key(operator, property_):
        return "identity key"
    return describe_property(property_)


def _explain_feature(
    compiled: CompiledEnvironment,
    name: str,
    flag: FlagResult,
    matched: dict[str, bool],
    identity_key: str,
) -> FeatureExplanation:
    plan = compiled.plans_by_name.get(name)
    candidates = tuple(
        CandidateTrace(
            compiled.segments[c.segment_index].key,
            compiled.segments[c.segment_index].name,
            c.priority,
            matched[compiled.segments[c.segment_index].key],
        )
        for c in (plan.candidates if plan else ())
    )
    if flag.source is FlagSource.IDENTITY_OVERRIDE:
        return FeatureExplanation(name, flag, candidates, None)
    outcome = _applied_outcome(compiled, name, flag)
    split = _split_trace(outcome, identity_key) if outcome and outcome.fixed is None else None
    return FeatureExplanation(name, flag, candidates, split)


def _applied_outcome(compiled: CompiledEnvironment, name: str, flag: FlagResult) -> Outcome | None:
    plan = compiled.plans_by_name.get(name)
    if plan is None:
        return None
    for candidate in plan.candidates:
        if compiled.segments[candidate.segment_index].key == flag.segment_key:
            return candidate.outcome
    return plan.default


def _split_trace(outcome: Outcome, identity_key: str) -> SplitTrace:
    bucket = hashed_percentage_of_text(outcome.prefix.decode("utf-8") + identity_key)
    ranges = tuple(
        SplitRange(start, limit, result.value, result.variant)
        for start, limit, result in outcome.ranges
    )
    return SplitTrace(bucket, ranges)
