"""Clone an environment so that every identity evaluates exactly as in the source.

An identity's buckets (multivariate splits, PERCENTAGE_SPLIT) hash the identity key
``"{environment key}_{identifier}"`` with per-state seeds. The clone gets a new client key,
so it keeps the source's *hashing key* (``Environment.hashing_key``, served as the document's
``api_key``) and copies every seed (feature-state and segment-override ``hash_key``,
allocation ``seed``): the same identifier then lands in the same bucket in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, insert, literal, select

from ...extensions import db
from ...models import (
    Environment,
    FeatureState,
    Identity,
    IdentityOverride,
    MultivariateAllocation,
    SegmentOverride,
    Trait,
    User,
)
from .admin import check_environment_name, environment_losses, flush_named, record_environment


@dataclass(frozen=True)
class CloneRequest:
    """What to clone: the new name, and whether identities come along."""

    name: str
    with_identities: bool = False


def clone_environment(
    source: Environment, request: CloneRequest, actor: User | None
) -> Environment:
    """Create a new environment in the source's project with the source's flags.

    Copies flag states (enabled, value, multivariate weights), segment overrides with their
    priorities and weights, and, when asked, identities with their traits and identity
    overrides. Keys are new; server keys are not copied.

    :raises ValidationError: bad or duplicate name
    """
    name = check_environment_name(source.project_id, request.name)
    clone = Environment(
        project_id=source.project_id,
        name=name,
        hashing_key=source.identity_hashing_key,
        allow_client_traits=source.allow_client_traits,
        hide_disabled_flags=source.hide_disabled_flags,
        production=False,  # a copy starts as a place to try things; an admin marks it
    )
    db.session.add(clone)
    flush_named(name)
    _copy_states(source, clone)
    if request.with_identities:
        _copy_identities(source.id, clone.id)
    counts = environment_losses(clone).as_dict()
    del counts["environments"], counts["features"], counts["segments"], counts["server_keys"]
    record_environment(
        actor, "clone", clone,
        after={"name": name, "source": source.name, "with_identities": request.with_identities,
               **counts},
    )  # fmt: skip
    db.session.commit()
    return clone


def _allocations(rows: list[MultivariateAllocation]) -> list[MultivariateAllocation]:
    return [
        MultivariateAllocation(option_id=a.option_id, percentage=a.percentage, seed=a.seed)
        for a in rows
    ]


def _copy_states(source: Environment, clone: Environment) -> None:
    states = db.session.scalars(
        select(FeatureState).where(FeatureState.environment_id == source.id)
    ).all()
    for state in states:
        copy = FeatureState(
            feature_id=state.feature_id, environment_id=clone.id, enabled=state.enabled,
            hash_key=state.hash_key, value_type=state.value_type, value_text=state.value_text,
        )  # fmt: skip
        copy.allocations = _allocations(state.allocations)
        db.session.add(copy)
    overrides = db.session.scalars(
        select(SegmentOverride).where(SegmentOverride.environment_id == source.id)
    ).all()
    for override in overrides:
        copy_override = SegmentOverride(
            segment_id=override.segment_id, feature_id=override.feature_id,
            environment_id=clone.id, enabled=override.enabled, priority=override.priority,
            hash_key=override.hash_key, value_type=override.value_type,
            value_text=override.value_text,
        )  # fmt: skip
        copy_override.allocations = _allocations(override.allocations)
        db.session.add(copy_override)
    db.session.flush()


def _copied_columns(table: Table, skip: set[str]) -> list[str]:
    """Every column but the id and the ones rewritten (so new columns are copied too)."""
    return [c.name for c in table.columns if c.name not in skip and not c.primary_key]


def _copy_identities(source_id: int, clone_id: int) -> None:
    """Copy identities, traits and identity overrides in three INSERT … SELECT statements."""
    identities: Table = Identity.__table__  # type: ignore[assignment]
    names = _copied_columns(identities, {"environment_id"})
    db.session.execute(
        insert(identities).from_select(
            ["environment_id", *names],
            select(literal(clone_id), *[identities.c[n] for n in names]).where(
                identities.c.environment_id == source_id
            ),
        )
    )
    for model in (Trait, IdentityOverride):
        _copy_identity_rows(model.__table__, source_id, clone_id)  # type: ignore[arg-type]


def _copy_identity_rows(table: Table, source_id: int, clone_id: int) -> None:
    """Copy one per-identity table, pointing each row at the clone's identity."""
    old = Identity.__table__.alias("old_identity")
    new = Identity.__table__.alias("new_identity")
    names = _copied_columns(table, {"environment_id", "identity_id"})
    columns: list[Any] = [literal(clone_id), new.c.id, *[table.c[n] for n in names]]
    query = (
        select(*columns)
        .join(old, old.c.id == table.c.identity_id)
        .join(
            new,
            and_(new.c.environment_id == clone_id, new.c.identifier_hash == old.c.identifier_hash),
        )
        .where(table.c.environment_id == source_id)
    )
    db.session.execute(insert(table).from_select(["environment_id", "identity_id", *names], query))
