"""Turn an EnvironmentSnapshot into a CompiledEnvironment, once per snapshot.

Everything that does not depend on the identity is done here: conditions parsed,
regexes and versions compiled, IN lists frozen, every possible FlagResult built,
and each feature's segment overrides sorted into the order they are tried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .segments import Check, CompiledSegment
from .types import (
    IDENTITY_OVERRIDES_SEGMENT_NAME,
    REASON_DEFAULT,
    REASON_SPLIT,
    REASON_STATIC,
    REASON_TARGETING_MATCH,
    EnvironmentSnapshot,
    FeatureInput,
    FeatureValue,
    FlagResult,
    FlagSource,
    IdentityOverrideInput,
    SegmentOverrideInput,
    Variant,
)

IDENTITY_OVERRIDE_REASON = f"{REASON_TARGETING_MATCH}; segment={IDENTITY_OVERRIDES_SEGMENT_NAME}"


class Outcome:
    """What a feature evaluates to from one source: a fixed result or a split."""

    __slots__ = ("fixed", "prefix", "ranges", "control", "cuts", "picks")

    def __init__(
        self,
        fixed: FlagResult | None,
        prefix: str = "",
        ranges: tuple[tuple[float, float, FlagResult], ...] = (),
        control: FlagResult | None = None,
    ) -> None:
        self.fixed = fixed
        # The split hashes "{state key},{identity key}": the first half is fixed.
        self.prefix = prefix.encode("utf-8")
        self.ranges = ranges
        self.control = control
        # The bucket is (n % 9999) / 9998 * 100, monotonic in n: precompute the
        # n at which the chosen option can change, so a split is one bisect.
        self.cuts, self.picks = _bucket_table(ranges, control) if fixed is None else ((), ())


@dataclass(frozen=True, slots=True)
class Candidate:
    """One segment override of a feature, in the order candidates are tried."""

    segment_index: int
    matches: Check
    outcome: Outcome
    priority: float


@dataclass(frozen=True, slots=True)
class FeaturePlan:
    """Per-identity work for one feature: overrides to try, then its default."""

    name: str
    feature: FeatureInput
    candidates: tuple[Candidate, ...]
    default: Outcome


@dataclass(frozen=True, slots=True)
class CompiledEnvironment:
    """A snapshot prepared for fast, repeated evaluation (immutable, shareable)."""

    snapshot: EnvironmentSnapshot
    key: str
    name: str
    features: Mapping[str, FeatureInput]
    segments: tuple[CompiledSegment, ...]
    segments_by_key: Mapping[str, CompiledSegment]
    static_flags: Mapping[str, FlagResult]
    identity_defaults: Mapping[str, FlagResult]
    plans: tuple[FeaturePlan, ...]
    plans_by_name: Mapping[str, FeaturePlan]
    # Hot-path views of ``plans``: features with overrides as plain tuples, and
    # multivariate features nobody overrides (they only need a split).
    targeted: tuple[tuple[str, tuple[tuple[int, Check, Outcome], ...], Outcome], ...]
    split_only: tuple[tuple[str, Outcome], ...]
    identity_overrides: Mapping[str, Mapping[str, FlagResult]]


def compile_snapshot(snapshot: EnvironmentSnapshot) -> CompiledEnvironment:
    """Compile an environment snapshot for evaluation.

    :param snapshot: the environment's features, segments and identity overrides
    :return: the compiled environment, to be reused across identities
    """
    features = {feature.name: feature for feature in snapshot.features}
    refused = snapshot.refused_patterns
    segments = tuple(CompiledSegment(s, i, refused) for i, s in enumerate(snapshot.segments))
    targeted = _targeted_names(snapshot)
    plans = tuple(
        plan
        for feature in features.values()
        if (plan := _plan(feature, segments, targeted)).candidates or feature.variants
    )
    return CompiledEnvironment(
        snapshot=snapshot,
        key=snapshot.key,
        name=snapshot.name,
        features=features,
        segments=segments,
        segments_by_key={s.key: s for s in segments},
        static_flags={n: _fixed_result(f, REASON_STATIC) for n, f in features.items()},
        identity_defaults={
            n: _fixed_result(f, _fallback_reason(n, targeted)) for n, f in features.items()
        },
        plans=plans,
        plans_by_name={plan.name: plan for plan in plans},
        targeted=tuple(
            (p.name, tuple(_candidate_tuple(c) for c in p.candidates), p.default)
            for p in plans
            if p.candidates
        ),
        split_only=tuple((p.name, p.default) for p in plans if not p.candidates),
        identity_overrides={
            identifier: compile_identity_overrides(features, overrides)
            for identifier, overrides in snapshot.identity_overrides.items()
        },
    )


def _candidate_tuple(candidate: Candidate) -> tuple[int, Check, Outcome]:
    return candidate.segment_index, candidate.matches, candidate.outcome


def _targeted_names(snapshot: EnvironmentSnapshot) -> frozenset[str]:
    # The engine calls a feature "targeted" (reason DEFAULT, not STATIC) when any
    # segment overrides it; the SDK turns identity overrides into segments too.
    names = {o.feature_name for s in snapshot.segments for o in s.overrides}
    for overrides in snapshot.identity_overrides.values():
        names.update(o.feature_name for o in overrides)
    return frozenset(names)


def _fallback_reason(name: str, targeted: frozenset[str]) -> str:
    return REASON_DEFAULT if name in targeted else REASON_STATIC


def _fixed_result(feature: FeatureInput, reason: str) -> FlagResult:
    return FlagResult(
        feature.feature_id,
        feature.name,
        feature.enabled,
        feature.value,
        None,
        reason,
        FlagSource.DEFAULT,
    )


def _plan(
    feature: FeatureInput, segments: tuple[CompiledSegment, ...], targeted: frozenset[str]
) -> FeaturePlan:
    found: list[tuple[float, int, int, Candidate]] = []
    for segment in segments:
        for position, override in enumerate(segment.segment.overrides):
            if override.feature_name != feature.name:
                continue
            priority = float("inf") if override.priority is None else override.priority
            reason = f"{REASON_TARGETING_MATCH}; segment={segment.name}"
            outcome = _outcome(feature, override, reason, segment.key)
            candidate = Candidate(segment.index, segment.matches, outcome, priority)
            found.append((priority, segment.index, position, candidate))
    # Lowest priority first; ties go to the earlier segment in project order.
    found.sort(key=lambda item: item[:3])
    default = _outcome(feature, feature, _fallback_reason(feature.name, targeted), None)
    return FeaturePlan(feature.name, feature, tuple(item[3] for item in found), default)


def _outcome(
    feature: FeatureInput,
    source: FeatureInput | SegmentOverrideInput,
    reason: str,
    segment_key: str | None,
) -> Outcome:
    fixed = FlagSource.DEFAULT if segment_key is None else FlagSource.SEGMENT

    def result(value: FeatureValue, variant: str | None, why: str, kind: FlagSource) -> FlagResult:
        return FlagResult(
            feature.feature_id,
            feature.name,
            source.enabled,
            value,
            variant,
            why,
            kind,
            segment_key,
        )

    if not source.variants:
        return Outcome(result(source.value, None, reason, fixed))
    return Outcome(
        None,
        prefix=source.key + ",",
        ranges=_ranges(
            source.variants,
            lambda v: result(
                v.value, v.key, f"{REASON_SPLIT}; weight={v.weight}", FlagSource.SPLIT
            ),
        ),
        control=result(source.value, "control", reason, fixed),
    )


def pick_option(
    ranges: tuple[tuple[float, float, FlagResult], ...], control: FlagResult | None, bucket: float
) -> FlagResult:
    """Return the first option whose range holds the bucket, else the control result.

    :param ranges: ``(start, limit, result)`` in priority order
    :param control: the result when no range holds the bucket
    :param bucket: the identity's bucket in [0, 100)
    :return: the chosen result
    """
    for start, limit, result in ranges:
        if start <= bucket < limit:
            return result
    assert control is not None
    return control


def _bucket_table(
    ranges: tuple[tuple[float, float, FlagResult], ...], control: FlagResult | None
) -> tuple[tuple[int, ...], tuple[FlagResult, ...]]:
    # The choice only changes where the bucket crosses a range bound, so it is
    # constant between the first n reaching each bound.
    bounds = {_first_reaching(bound) for start, limit, _ in ranges for bound in (start, limit)}
    cuts = tuple(sorted(n for n in bounds | {0} if n < _SCALE))
    return cuts, tuple(pick_option(ranges, control, n / _SCALE * 100) for n in cuts)


_SCALE = 9998


def _first_reaching(bound: float) -> int:
    low, high = 0, _SCALE + 1
    while low < high:
        middle = (low + high) // 2
        if middle / _SCALE * 100 >= bound:
            high = middle
        else:
            low = middle + 1
    return low


def _ranges(
    variants: Iterable[Variant], make: Callable[[Variant], FlagResult]
) -> tuple[tuple[float, float, FlagResult], ...]:
    ranges = []
    start = 0.0
    # Same float arithmetic, in the same order, as the engine's allocation walk.
    for variant in sorted(variants, key=lambda v: v.priority):
        limit = variant.weight + start
        ranges.append((start, limit, make(variant)))
        start = limit
    return tuple(ranges)


def compile_identity_overrides(
    features: Mapping[str, FeatureInput], overrides: Iterable[IdentityOverrideInput]
) -> Mapping[str, FlagResult]:
    """Build the fixed results of one identity's overrides (first per feature wins).

    :param features: the environment's features by name; unknown names are ignored
    :param overrides: the identity's overrides
    :return: results by feature name
    """
    results: dict[str, FlagResult] = {}
    for override in overrides:
        feature = features.get(override.feature_name)
        if feature is None or override.feature_name in results:
            continue
        results[override.feature_name] = FlagResult(
            feature.feature_id,
            feature.name,
            override.enabled,
            override.value,
            None,
            IDENTITY_OVERRIDE_REASON,
            FlagSource.IDENTITY_OVERRIDE,
        )
    return results
