"""Overrides of one feature in one environment: segment override priorities and identity
overrides (list and remove).

Priority and identity override changes belong to one environment (``bump_environment``);
every change is audited in the same transaction and committed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from ...extensions import db
from ...models import (
    Environment,
    Feature,
    Identity,
    IdentityOverride,
    Segment,
    SegmentOverride,
    User,
)
from .. import audit, revisions
from ..errors import Conflict, NotFound, Stale, ValidationError
from ..identities.identity_overrides import snapshot

IDENTITY_OVERRIDES_PER_PAGE = 25


@dataclass(frozen=True)
class OverrideList:
    """A feature's segment overrides in one environment, winner first, with move orders."""

    rows: list[SegmentOverride]
    token: str

    def moved(self, index: int, step: int) -> str:
        """Return the id order after moving row ``index`` by ``step`` (for up/down buttons)."""
        ids = [row.id for row in self.rows]
        target = index + step
        ids[index], ids[target] = ids[target], ids[index]
        return ",".join(str(i) for i in ids)


@dataclass(frozen=True)
class IdentityOverridePage:
    items: list[tuple[IdentityOverride, Identity]]
    page: int
    per_page: int
    total: int

    @property
    def has_next(self) -> bool:
        return self.page * self.per_page < self.total


# ----------------------------------------------------------------------------- reads


def list_segment_overrides(environment_id: int, feature_id: int) -> OverrideList:
    """Return a feature's segment overrides in ``environment_id`` in evaluation order.

    Lowest priority first, missing priority last, ties by the project's segment order: the
    first row is the one that wins for an identity in every listed segment.
    """
    rows = list(
        db.session.scalars(
            select(SegmentOverride)
            .join(Segment, Segment.id == SegmentOverride.segment_id)
            .where(
                SegmentOverride.environment_id == environment_id,
                SegmentOverride.feature_id == feature_id,
            )
            .order_by(
                SegmentOverride.priority.is_(None),
                SegmentOverride.priority,
                Segment.position,
                Segment.id,
            )
        )
    )
    return OverrideList(rows, ",".join(str(r.id) for r in rows))


def list_identity_overrides(
    environment_id: int, feature_id: int, page: int = 1, per_page: int = IDENTITY_OVERRIDES_PER_PAGE
) -> IdentityOverridePage:
    """Page through the identities that override a feature, by identifier."""
    page = max(page, 1)
    where = (
        IdentityOverride.environment_id == environment_id,
        IdentityOverride.feature_id == feature_id,
    )
    total = int(db.session.scalar(select(func.count(IdentityOverride.id)).where(*where)) or 0)
    offset = (page - 1) * per_page
    # A page past the end is empty without asking: a huge ?page= overflows OFFSET (a 500).
    rows = [] if offset >= total else db.session.execute(
        select(IdentityOverride, Identity)
        .join(Identity, Identity.id == IdentityOverride.identity_id)
        .where(*where)
        .order_by(Identity.identifier_prefix, Identity.id)
        .limit(per_page)
        .offset(offset)
    ).all()
    return IdentityOverridePage([(o, i) for o, i in rows], page, per_page, total)


# ----------------------------------------------------------------------------- writes


def reorder_segment_overrides(
    environment: Environment,
    feature: Feature,
    order: Sequence[int],
    expected: Sequence[int],
    actor: User | None,
) -> OverrideList:
    """Rewrite the priorities of a feature's segment overrides to 0..n-1 in ``order``.

    :param expected: the order the user saw; it must still be the current one.
    :raises Conflict: when the list changed since the user opened it.
    :raises ValidationError: when ``order`` is not a permutation of the current overrides.
    """
    current = list_segment_overrides(environment.id, feature.id)
    ids = [row.id for row in current.rows]
    if list(expected) != ids:
        raise Conflict(
            "The segment overrides changed since you opened this page; "
            "nothing was moved. Here is the current order."
        )
    if sorted(order) != sorted(ids) or len(order) != len(ids):
        raise ValidationError("The new order must list each segment override once", "order")
    by_id = {row.id: row for row in current.rows}
    # Keyed by segment name, so the audit diff highlights exactly the priorities that moved.
    before = {row.segment.name: row.priority for row in current.rows}
    for priority, override_id in enumerate(order):
        by_id[override_id].priority = priority
    after = {by_id[i].segment.name: by_id[i].priority for i in order}
    if before != after:
        audit.record(
            actor,
            "reorder",
            "segment_override",
            object_id=feature.id,
            object_label=feature.name,
            project_id=environment.project_id,
            environment_id=environment.id,
            before=before,
            after=after,
            count=len(order),
        )
        revisions.bump_environment(environment.id)
    db.session.commit()
    return list_segment_overrides(environment.id, feature.id)


def remove_identity_override(
    environment: Environment,
    feature: Feature,
    override_id: int,
    actor: User | None,
    *,
    version: int | None = None,
) -> None:
    """Delete one identity's override of a feature in this environment.

    :param version: the override version the page showed; None skips the check.
    :raises NotFound: when the override is not this feature's in this environment.
    :raises Conflict: when the override changed since the page showed it (the refused
        attempt is audited as ``delete_rejected``).
    """
    # FOR UPDATE: a concurrent change of this override waits, then its version check sees ours.
    override = db.session.get(
        IdentityOverride, override_id, with_for_update=True, populate_existing=True
    )
    if (
        override is None
        or override.feature_id != feature.id
        or override.environment_id != environment.id
    ):
        raise NotFound("This identity override no longer exists")
    identity = override.identity
    stale = version is not None and version != override.version
    audit.record(
        actor,
        "delete_rejected" if stale else "delete",
        "identity_override",
        # The feature's id and the exact state, like the Identity page's override events
        # (its history and undo read both).
        object_id=feature.id,
        object_label=f"{identity.identifier[:200]} · {feature.name}",
        project_id=environment.project_id,
        environment_id=environment.id,
        identity_id=identity.id,
        before=snapshot(override),
        after=None,
    )
    if stale:
        db.session.commit()
        raise Stale("override")
    revisions.bump_environment(environment.id)
    db.session.delete(override)
    db.session.commit()
