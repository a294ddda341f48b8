"""Write buffered SDK events: exposures, conversions and the per-variant counters.

One exposure per experiment and identity (the first variant reported), one conversion per
experiment and identity (its first goal event once exposed; goal events of identities not
exposed yet are ignored). Counters are incremented by exactly the rows an insert created
(``ON CONFLICT DO NOTHING ... RETURNING``), so repeated or concurrent deliveries never
count twice; on PostgreSQL the experiments of a batch are locked (in id order) while it is
written, so an exposure and a conversion of one identity written by two workers cannot
miss each other.

Within one flush exposures are written before goal events, so a goal event sent in the
same batch as the identity's exposure counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from ...extensions import db
from ...models import Feature, Identity
from ...models.base import sha256_hex
from ...models.experiment import (
    Experiment,
    ExperimentArm,
    ExperimentConversion,
    ExperimentExposure,
)
from .arms import arms_of
from .events import SdkEvent

CHUNK = 500


@dataclass(frozen=True, slots=True)
class Delivery:
    """Events one request brought for one environment, and when they arrived."""

    environment_id: int
    received_at: datetime
    events: Sequence[SdkEvent]


@dataclass
class Stored:
    """What a flush wrote (ignored events are the rest)."""

    exposures: int = 0
    conversions: int = 0


def store_deliveries(deliveries: Iterable[Delivery]) -> Stored:
    """Write deliveries, one transaction per environment.

    :return: how many new exposures and conversions were recorded.
    """
    by_environment: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        by_environment.setdefault(delivery.environment_id, []).append(delivery)
    total = Stored()
    for environment_id in sorted(by_environment):
        stored = _store_environment(environment_id, by_environment[environment_id])
        total.exposures += stored.exposures
        total.conversions += stored.conversions
    return total


def _running(environment_id: int) -> list[Experiment]:
    statement = (
        select(Experiment)
        .where(Experiment.environment_id == environment_id, Experiment.stopped_at.is_(None))
        .options(selectinload(Experiment.feature).selectinload(Feature.options))
        .order_by(Experiment.id)
    )
    return list(db.session.scalars(statement))


Exposures = dict[tuple[int, str], tuple[str, datetime]]
Goals = dict[tuple[int, str], tuple[str | None, datetime]]


def _sort_events(
    experiments: list[Experiment], deliveries: list[Delivery]
) -> tuple[Exposures, Goals]:
    """Keep the first exposure and goal event per experiment and identifier; drop the rest.

    Exposures count only for a running experiment of their feature (and the one they name,
    when they name one) with a variant the feature has.
    """
    by_feature = {e.feature.name: (e, {arm.key for arm in arms_of(e.feature, None)})
                  for e in experiments}  # fmt: skip
    by_goal: dict[str, list[Experiment]] = {}
    for experiment in experiments:
        by_goal.setdefault(experiment.goal_event, []).append(experiment)
    exposures: Exposures = {}
    goals: Goals = {}
    for delivery in deliveries:
        for event in delivery.events:
            if event.identifier is None:
                continue
            if not event.is_exposure:
                for experiment in by_goal.get(event.name, ()):
                    key = (experiment.id, event.identifier)
                    goals.setdefault(key, (event.value, delivery.received_at))
                continue
            found = by_feature.get(event.feature_name or "")
            if found is None or event.value not in found[1]:
                continue
            if event.experiment_id in (None, found[0].id) and event.value is not None:
                key = (found[0].id, event.identifier)
                exposures.setdefault(key, (event.value, delivery.received_at))
    return exposures, goals


def _store_environment(environment_id: int, deliveries: list[Delivery]) -> Stored:
    experiments = _running(environment_id)
    if not experiments:
        return Stored()
    exposures, goals = _sort_events(experiments, deliveries)
    if not exposures and not goals:
        return Stored()
    identities = _identity_ids(environment_id, {i for _, i in exposures} | {i for _, i in goals})
    _lock(sorted({e for e, _ in exposures} | {e for e, _ in goals}))
    stored = Stored()
    stored.exposures = _write_exposures(
        [
            {"experiment_id": e, "identity_id": identities[i], "variant": v,
             "first_seen_at": at}
            for (e, i), (v, at) in exposures.items() if i in identities
        ]
    )  # fmt: skip
    stored.conversions = _write_conversions(
        {(e, identities[i]): goal for (e, i), goal in goals.items() if i in identities}
    )
    db.session.commit()
    return stored


def _identity_ids(environment_id: int, identifiers: set[str]) -> dict[str, int]:
    """Map identifiers to identity ids; unknown identifiers are left out (ignored)."""
    by_hash = {sha256_hex(identifier): identifier for identifier in identifiers}
    found: dict[str, int] = {}
    hashes = sorted(by_hash)
    for start in range(0, len(hashes), CHUNK):
        rows = db.session.execute(
            select(Identity.identifier_hash, Identity.id).where(
                Identity.environment_id == environment_id,
                Identity.identifier_hash.in_(hashes[start : start + CHUNK]),
            )
        )
        for identifier_hash, identity_id in rows:
            found[by_hash[identifier_hash]] = identity_id
    return found


def _insert(table: Any) -> Any:
    """Return the dialect's INSERT, which has ON CONFLICT on SQLite and PostgreSQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _lock(experiment_ids: list[int]) -> None:
    if experiment_ids and db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            select(Experiment.id)
            .where(Experiment.id.in_(experiment_ids))
            .order_by(Experiment.id)
            .with_for_update()
        ).all()


def _insert_new(model: Any, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Insert rows, skipping those that exist; return (experiment, variant) of the new ones."""
    created: list[tuple[int, str]] = []
    for start in range(0, len(rows), CHUNK):
        statement = (
            _insert(model)
            .values(rows[start : start + CHUNK])
            .on_conflict_do_nothing(index_elements=["experiment_id", "identity_id"])
            .returning(model.experiment_id, model.variant)
        )
        created.extend((int(e), str(v)) for e, v in db.session.execute(statement))
    return created


def _count(created: list[tuple[int, str]], column: str) -> int:
    for (experiment_id, variant), count in sorted(Counter(created).items()):
        statement = _insert(ExperimentArm).values(
            experiment_id=experiment_id,
            variant=variant,
            exposures=count if column == "exposures" else 0,
            conversions=count if column == "conversions" else 0,
        )
        target = getattr(ExperimentArm, column)
        db.session.execute(
            statement.on_conflict_do_update(
                index_elements=["experiment_id", "variant"],
                set_={column: target + getattr(statement.excluded, column)},
            )
        )
    return len(created)


def _write_exposures(rows: list[dict[str, Any]]) -> int:
    return _count(_insert_new(ExperimentExposure, rows), "exposures") if rows else 0


def _write_conversions(goals: dict[tuple[int, int], tuple[str | None, datetime]]) -> int:
    """Record first goal events of exposed identities, in the variant they were exposed to."""
    if not goals:
        return 0
    keys = sorted(goals)
    variants: dict[tuple[int, int], str] = {}
    for start in range(0, len(keys), CHUNK):
        rows = db.session.execute(
            select(ExperimentExposure.experiment_id, ExperimentExposure.identity_id,
                   ExperimentExposure.variant)
            .where(tuple_(ExperimentExposure.experiment_id, ExperimentExposure.identity_id)
                   .in_(keys[start : start + CHUNK]))
        )  # fmt: skip
        for experiment_id, identity_id, variant in rows:
            variants[(experiment_id, identity_id)] = variant
    rows_to_add = [
        {"experiment_id": e, "identity_id": i, "variant": variants[(e, i)],
         "converted_at": goals[(e, i)][1], "value": goals[(e, i)][0]}
        for e, i in keys if (e, i) in variants
    ]  # fmt: skip
    if not rows_to_add:
        return 0
    return _count(_insert_new(ExperimentConversion, rows_to_add), "conversions")
