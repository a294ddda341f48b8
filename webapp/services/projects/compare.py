"""Two environments side by side, feature by feature, the differences first."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from ...extensions import db
from ...models import (
    Environment,
    Feature,
    FeatureState,
    MultivariateAllocation,
    SegmentOverride,
    TypedValue,
)
from .. import values
from ..errors import ValidationError

# (option id, option value as text, percentage), in option order
Weights = tuple[tuple[int, str, float], ...]


@dataclass(frozen=True)
class OverrideSide:
    """One segment override as one environment has it."""

    enabled: bool
    value: TypedValue
    priority: int | None
    weights: Weights


@dataclass(frozen=True)
class Side:
    """A feature's default state in one environment (None fields: no state there)."""

    enabled: bool
    value: TypedValue
    weights: Weights
    overrides: dict[str, OverrideSide]  # segment name -> override


@dataclass(frozen=True)
class SegmentRow:
    segment: str
    left: OverrideSide | None
    right: OverrideSide | None
    differs: bool


@dataclass(frozen=True)
class FeatureComparison:
    feature: Feature
    left: Side
    right: Side
    differences: tuple[str, ...]  # "enabled", "value", "weights", "segment overrides"
    segments: tuple[SegmentRow, ...]


@dataclass(frozen=True)
class Comparison:
    left: Environment
    right: Environment
    features: tuple[FeatureComparison, ...]

    @property
    def differing(self) -> int:
        return sum(1 for f in self.features if f.differences)


def _weights(rows: list[MultivariateAllocation]) -> Weights:
    ordered = sorted(rows, key=lambda a: (a.option_id, a.id))
    return tuple((a.option_id, values.as_text(a.option.value), a.percentage) for a in ordered)


def _sides(environment: Environment) -> dict[int, Side]:
    states = db.session.scalars(
        select(FeatureState)
        .where(FeatureState.environment_id == environment.id)
        .options(selectinload(FeatureState.allocations).joinedload(MultivariateAllocation.option))
    ).unique()
    overrides: dict[int, dict[str, OverrideSide]] = defaultdict(dict)
    for row in db.session.scalars(
        select(SegmentOverride)
        .where(SegmentOverride.environment_id == environment.id)
        .options(
            joinedload(SegmentOverride.segment),
            selectinload(SegmentOverride.allocations).joinedload(MultivariateAllocation.option),
        )
    ).unique():
        overrides[row.feature_id][row.segment.name] = OverrideSide(
            row.enabled, row.value, row.priority, _weights(row.allocations)
        )
    sides = {
        s.feature_id: Side(s.enabled, s.value, _weights(s.allocations), overrides[s.feature_id])
        for s in states
    }
    for feature_id, found in overrides.items():
        sides.setdefault(feature_id, Side(False, None, (), found))
    return sides


def _same_override(a: OverrideSide | None, b: OverrideSide | None) -> bool:
    if a is None or b is None:
        return a is b
    return (
        a.enabled == b.enabled
        and values.same(a.value, b.value)
        and a.priority == b.priority
        and a.weights == b.weights
    )


def _compare_feature(feature: Feature, left: Side, right: Side) -> FeatureComparison:
    names = sorted(set(left.overrides) | set(right.overrides), key=str.lower)
    rows = []
    for name in names:
        a, b = left.overrides.get(name), right.overrides.get(name)
        rows.append(SegmentRow(name, a, b, not _same_override(a, b)))
    differences = [
        label
        for label, differs in (
            ("enabled", left.enabled != right.enabled),
            ("value", not values.same(left.value, right.value)),
            ("weights", left.weights != right.weights),
            ("segment overrides", any(r.differs for r in rows)),
        )
        if differs
    ]
    return FeatureComparison(feature, left, right, tuple(differences), tuple(rows))


def compare_environments(left: Environment, right: Environment) -> Comparison:
    """Compare two environments of one project, differing features first, then by name.

    :raises ValidationError: when the environments belong to different projects
    """
    if left.project_id != right.project_id:
        raise ValidationError("Compare two environments of the same project.", "right")
    features = db.session.scalars(
        select(Feature).where(Feature.project_id == left.project_id).order_by(Feature.name)
    ).all()
    left_sides, right_sides = _sides(left), _sides(right)
    empty = Side(False, None, (), {})
    rows = [
        _compare_feature(f, left_sides.get(f.id, empty), right_sides.get(f.id, empty))
        for f in features
    ]
    rows.sort(key=lambda r: (not r.differences, r.feature.name.lower(), r.feature.name))
    return Comparison(left, right, tuple(rows))
