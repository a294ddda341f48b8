"""Evaluate a compiled environment for an identity: the one precedence rule.

identity override > segment override (lowest priority, then project order) >
environment default (split for multivariate features when an identity is given).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence

from .compile import (
    CompiledEnvironment,
    FeaturePlan,
    Outcome,
    compile_identity_overrides,
    pick_option,
)
from .hashing import hashed_percentage_of_bytes, md5
from .segments import Subject
from .types import FlagResult, IdentityInput, IdentityOverrideInput, SegmentMatch

# Per-evaluation memo of segment membership: None = not evaluated yet.
Memo = list[bool | None]


class EvaluationResult:
    """All flags for one evaluation; matched segments are computed on first access."""

    __slots__ = ("flags", "_compiled", "_subject", "_memo", "_segments")

    def __init__(
        self,
        flags: Mapping[str, FlagResult],
        compiled: CompiledEnvironment,
        subject: Subject | None = None,
        memo: Memo | None = None,
    ) -> None:
        self.flags = flags
        self._compiled = compiled
        self._subject = subject
        self._memo = memo
        self._segments: tuple[SegmentMatch, ...] | None = None

    @property
    def segments(self) -> tuple[SegmentMatch, ...]:
        """Return the project segments the identity belongs to, in project order."""
        if self._segments is None:
            self._segments = _matched_segments(self._compiled, self._subject, self._memo)
        return self._segments

    def __repr__(self) -> str:
        return f"EvaluationResult(flags={self.flags!r}, segments={self.segments!r})"


def _matched_segments(
    compiled: CompiledEnvironment, subject: Subject | None, memo: Memo | None
) -> tuple[SegmentMatch, ...]:
    if subject is None or memo is None:
        # Environment flags are evaluated without segments, as the SDK does.
        return ()
    matched = []
    for segment in compiled.segments:
        known = memo[segment.index]
        if known is None:
            known = memo[segment.index] = segment.matches(subject)
        if known:
            matched.append(SegmentMatch(segment.key, segment.name))
    return tuple(matched)


def make_subject(compiled: CompiledEnvironment, identity: IdentityInput) -> Subject:
    """Build the per-evaluation view of an identity (its hashing key defaulted).

    :param compiled: the compiled environment
    :param identity: identifier, traits and optional key
    :return: the subject conditions read
    """
    return Subject(
        identity.identifier,
        identity.key or f"{compiled.key}_{identity.identifier}",
        identity.traits,
        compiled.key,
        compiled.name,
    )


def evaluate(
    compiled: CompiledEnvironment,
    identity: IdentityInput | None = None,
    *,
    overrides: Sequence[IdentityOverrideInput] | None = None,
) -> EvaluationResult:
    """Evaluate every flag of the environment, for an identity or for nobody.

    :param compiled: the result of ``compile_snapshot``
    :param identity: the identity; None gives environment defaults (no split, no segments)
    :param overrides: this identity's overrides, replacing the snapshot's for it
    :return: flags by feature name, and (lazily) the matched segments
    """
    if identity is None:
        return EvaluationResult(dict(compiled.static_flags), compiled)
    subject = make_subject(compiled, identity)
    memo: Memo = [None] * len(compiled.segments)
    flags = dict(compiled.identity_defaults)
    key = subject.key.encode("utf-8")
    # _resolve inlined: this loop is the hot path of every SDK request.
    for name, candidates, outcome in compiled.targeted:
        for index, matches, candidate_outcome in candidates:
            hit = memo[index]
            if hit is None:
                hit = memo[index] = matches(subject)
            if hit:
                outcome = candidate_outcome
                break
        flags[name] = outcome.fixed or split(outcome, key)
    for name, outcome in compiled.split_only:
        number = int.from_bytes(md5(outcome.prefix + key).digest(), "big") % 9999
        # Inlined split(): 9998 means a bucket of exactly 100, which rehashes.
        flags[name] = (
            outcome.picks[bisect_right(outcome.cuts, number) - 1]
            if number != 9998
            else split(outcome, key)
        )
    flags.update(_identity_overrides(compiled, identity.identifier, overrides))
    return EvaluationResult(flags, compiled, subject, memo)


def evaluate_feature(
    compiled: CompiledEnvironment,
    name: str,
    identity: IdentityInput | None = None,
    *,
    overrides: Sequence[IdentityOverrideInput] | None = None,
) -> FlagResult:
    """Evaluate one feature, trying only the segments that override it.

    :param compiled: the result of ``compile_snapshot``
    :param name: the feature name
    :param identity: the identity; None gives the environment default
    :param overrides: this identity's overrides, replacing the snapshot's for it
    :return: the feature's result
    :raises KeyError: when the environment has no such feature
    """
    if identity is None:
        return compiled.static_flags[name]
    override = _identity_overrides(compiled, identity.identifier, overrides).get(name)
    if override is not None:
        return override
    plan = compiled.plans_by_name.get(name)
    if plan is None:
        return compiled.identity_defaults[name]
    subject = make_subject(compiled, identity)
    return _resolve(plan, subject, [None] * len(compiled.segments), subject.key.encode("utf-8"))


def _identity_overrides(
    compiled: CompiledEnvironment,
    identifier: str,
    overrides: Sequence[IdentityOverrideInput] | None,
) -> Mapping[str, FlagResult]:
    if overrides is None:
        return compiled.identity_overrides.get(identifier, _EMPTY)
    return compile_identity_overrides(compiled.features, overrides)


_EMPTY: Mapping[str, FlagResult] = {}


def _resolve(plan: FeaturePlan, subject: Subject, memo: Memo, key: bytes) -> FlagResult:
    outcome = plan.default
    for candidate in plan.candidates:
        matched = memo[candidate.segment_index]
        if matched is None:
            matched = memo[candidate.segment_index] = candidate.matches(subject)
        if matched:
            outcome = candidate.outcome
            break
    fixed = outcome.fixed
    return fixed if fixed is not None else split(outcome, key)


def split(outcome: Outcome, identity_key: bytes) -> FlagResult:
    """Pick a multivariate option by the identity's bucket.

    :param outcome: a split outcome (its hash prefix is the feature-state key)
    :param identity_key: the identity's hashing key, UTF-8 encoded
    :return: the option whose range holds the bucket, else the control result
    """
    number = int.from_bytes(md5(outcome.prefix + identity_key).digest(), "big") % 9999
    if number != 9998:
        return outcome.picks[bisect_right(outcome.cuts, number) - 1]
    # A bucket of exactly 100 rehashes the doubled id list.
    bucket = hashed_percentage_of_bytes(outcome.prefix + identity_key)
    return pick_option(outcome.ranges, outcome.control, bucket)
