"""Segment overrides: a feature's enabled/value for a segment's members in one environment.

Values are flag values of the one typed value model (``values``): the same kinds, JSON and
"no value" included, as identity overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from sqlalchemy import select

from ...extensions import db
from ...models import Feature, MultivariateAllocation, Segment, SegmentOverride, TypedValue, User
from .. import audit, locking, revisions
from ..errors import NotFound, Stale, ValidationError


def list_overrides(segment: Segment, environment_id: int) -> list[SegmentOverride]:
    """Return the segment's overrides in one environment, by feature name."""
    query = (
        select(SegmentOverride)
        .join(Feature, Feature.id == SegmentOverride.feature_id)
        .where(
            SegmentOverride.segment_id == segment.id,
            SegmentOverride.environment_id == environment_id,
        )
        .order_by(Feature.name)
    )
    return list(db.session.scalars(query))


def available_features(segment: Segment, environment_id: int) -> list[Feature]:
    """Return the project's features this segment does not override in the environment yet."""
    taken = {o.feature_id for o in list_overrides(segment, environment_id)}
    query = select(Feature).where(Feature.project_id == segment.project_id).order_by(Feature.name)
    return [f for f in db.session.scalars(query) if f.id not in taken]


def get_override(segment: Segment, override_id: int, environment_id: int) -> SegmentOverride:
    """Return one of the segment's overrides in an environment.

    :raises NotFound: when it belongs elsewhere
    """
    row = db.session.get(SegmentOverride, override_id)
    if row is None or row.segment_id != segment.id or row.environment_id != environment_id:
        raise NotFound("Segment override not found.")
    return row


def _state(row: SegmentOverride) -> dict[str, Any]:
    return {
        "feature": row.feature.name,
        "enabled": row.enabled,
        "value": row.value,
        "priority": row.priority,
        "allocations": {str(a.option_id): a.percentage for a in row.allocations},
    }


def _check_allocations(feature: Feature, allocations: Mapping[int, float]) -> None:
    options = {o.id for o in feature.options}
    if set(allocations) - options:
        raise ValidationError("Allocations must name this feature's options.", "allocations")
    if any(not 0 <= p <= 100 for p in allocations.values()):
        raise ValidationError("Each allocation is between 0 and 100.", "allocations")
    if sum(allocations.values()) > 100:
        raise ValidationError("Allocations add up to more than 100%.", "allocations")


def _apply(
    row: SegmentOverride,
    enabled: bool,
    value: TypedValue,
    priority: int | None,
    allocations: Mapping[int, float],
) -> None:
    row.enabled, row.value, row.priority = enabled, value, priority
    existing = {a.option_id: a for a in row.allocations}
    for option_id, percentage in allocations.items():
        if option_id in existing:
            existing[option_id].percentage = percentage
        else:
            row.allocations.append(
                MultivariateAllocation(option_id=option_id, percentage=percentage)
            )


def create_override(
    segment: Segment,
    feature: Feature,
    environment_id: int,
    actor: User,
    *,
    enabled: bool,
    value: TypedValue,
    priority: int | None = None,
    allocations: Mapping[int, float] | None = None,
) -> SegmentOverride:
    """Create the segment's override of a feature in an environment (audited, bumped).

    :raises ValidationError: for a feature of another project, a duplicate or bad allocations
    """
    if feature.project_id != segment.project_id:
        raise ValidationError("Choose a feature of this project.", "feature_id")
    duplicate = db.session.scalar(
        select(SegmentOverride.id).where(
            SegmentOverride.segment_id == segment.id,
            SegmentOverride.feature_id == feature.id,
            SegmentOverride.environment_id == environment_id,
        )
    )
    if duplicate is not None:
        raise ValidationError(f"This segment already overrides {feature.name}.", "feature_id")
    _check_allocations(feature, allocations or {})
    row = SegmentOverride(segment=segment, feature=feature, environment_id=environment_id)
    _apply(row, enabled, value, priority, allocations or {})
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "create", "segment_override", object_id=row.id,
                 object_label=f"{segment.name} / {feature.name}", project_id=segment.project_id,
                 environment_id=environment_id, after=_state(row))  # fmt: skip
    revisions.bump_environment(environment_id)
    db.session.commit()
    return row


def _reject(row: SegmentOverride, actor: User, after: Any, version: int | None) -> NoReturn:
    """Audit a change refused because the override changed meanwhile, and raise."""
    audit.record(actor, "delete_rejected" if after is None else "update_rejected",
                 "segment_override", object_id=row.id,
                 object_label=f"{row.segment.name} / {row.feature.name}",
                 project_id=row.segment.project_id, environment_id=row.environment_id,
                 before=_state(row),
                 after=None if after is None else {**after, "version": version})  # fmt: skip
    db.session.commit()
    raise Stale("override")


def update_override(
    row: SegmentOverride,
    actor: User,
    *,
    enabled: bool,
    value: TypedValue,
    priority: int | None,
    allocations: Mapping[int, float] | None = None,
    version: int | None = None,
) -> SegmentOverride:
    """Change an override's enabled, value, priority and allocations (audited, bumped).

    :param version: the version the page showed; None skips the check
    :raises ValidationError: on bad allocations
    :raises Conflict: when the override changed since (the refused attempt is audited)
    """
    _check_allocations(row.feature, allocations or {})
    locking.relock(row, "This override no longer exists.")
    if version is not None and version != row.version:
        attempt = {"enabled": enabled, "value": value, "priority": priority,
                   "allocations": {str(k): v for k, v in (allocations or {}).items()}}  # fmt: skip
        _reject(row, actor, attempt, version)
    before = _state(row)
    _apply(row, enabled, value, priority, allocations or {})
    row.version += 1
    db.session.flush()
    audit.record(actor, "update", "segment_override", object_id=row.id,
                 object_label=f"{row.segment.name} / {row.feature.name}",
                 project_id=row.segment.project_id, environment_id=row.environment_id,
                 before=before, after=_state(row))  # fmt: skip
    revisions.bump_environment(row.environment_id)
    db.session.commit()
    return row


def delete_override(row: SegmentOverride, actor: User, *, version: int | None = None) -> None:
    """Delete an override (audited, bumped).

    :param version: the version the page showed; None skips the check
    :raises Conflict: when the override changed since (the refused attempt is audited)
    """
    locking.relock(row, "This override no longer exists.")
    if version is not None and version != row.version:
        _reject(row, actor, None, version)
    audit.record(actor, "delete", "segment_override", object_id=row.id,
                 object_label=f"{row.segment.name} / {row.feature.name}",
                 project_id=row.segment.project_id, environment_id=row.environment_id,
                 before=_state(row))  # fmt: skip
    revisions.bump_environment(row.environment_id)
    db.session.delete(row)
    db.session.commit()
