"""``metadata.experiment`` on identity flags: the SDK's cue to send ``$flag_exposure`` events.

The official SDK's ``get_experiment_flag()`` sends an exposure only for an enabled flag with
a ``variant`` whose ``metadata.experiment.in_experiment`` is true. An identity is in the
experiment when the flag's variant was decided by the split (not an identity override or a
fixed segment override) and, for an experiment with a segment, it belongs to the segment.

This runs on the identify hot path: the running experiments of an environment are read once
per environment revision (starting and stopping bump it) and kept per worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ...evaluation import EvaluationResult
from ...extensions import db
from ...models import Feature
from ...models.experiment import Experiment
from ..documents.exporting import segment_id
from ..sdk.snapshots import EnvironmentBundle
from .arms import Arm, arms_of, variant_of

CACHE_EXTENSION = "flagpost_experiments"


@dataclass(frozen=True, slots=True)
class RunningExperiment:
    """What the identify path needs to know about one running experiment."""

    id: int
    name: str
    feature_name: str
    segment_key: str | None  # the key evaluation gives the enrolling segment
    arms: tuple[Arm, ...]


def load_running(environment_id: int) -> tuple[RunningExperiment, ...]:
    """Read the environment's running experiments (one query, options preloaded)."""
    rows = db.session.scalars(
        select(Experiment)
        .where(Experiment.environment_id == environment_id, Experiment.stopped_at.is_(None))
        .options(
            selectinload(Experiment.feature).selectinload(Feature.options),
            selectinload(Experiment.segment),
        )
        .order_by(Experiment.id)
    ).all()
    return tuple(
        RunningExperiment(
            id=row.id,
            name=row.name,
            feature_name=row.feature.name,
            segment_key=None if row.segment is None else str(segment_id(row.segment)),
            arms=arms_of(row.feature, None),
        )
        for row in rows
    )


def running_for(bundle: EnvironmentBundle) -> tuple[RunningExperiment, ...]:
    """Return the running experiments of the bundle's environment at its revision (cached)."""
    cache: dict[int, tuple[int, tuple[RunningExperiment, ...]]] = current_app.extensions.setdefault(
        CACHE_EXTENSION, {}
    )
    cached = cache.get(bundle.environment_id)
    if cached is not None and cached[0] == bundle.revision:
        return cached[1]
    running = load_running(bundle.environment_id)
    cache[bundle.environment_id] = (bundle.revision, running)
    return running


def annotate_flags(
    bundle: EnvironmentBundle, evaluation: EvaluationResult, flags: list[dict[str, Any]]
) -> None:
    """Add ``metadata.experiment`` (and ``variant``) to the flags of running experiments.

    :param flags: the serialised identity flags; changed in place.
    """
    running = running_for(bundle)
    if not running:
        return
    by_name = {flag["feature"]["name"]: flag for flag in flags}
    matched: set[str] | None = None
    for experiment in running:
        flag = by_name.get(experiment.feature_name)
        result = evaluation.flags.get(experiment.feature_name)
        if flag is None or result is None:
            continue
        variant = variant_of(result, experiment.arms)
        enrolled = variant is not None
        if enrolled and experiment.segment_key is not None:
            if matched is None:
                matched = {match.key for match in evaluation.segments}
            enrolled = experiment.segment_key in matched
        if variant is not None:
            flag.setdefault("variant", variant)
        flag["metadata"] = {
            "experiment": {"id": experiment.id, "name": experiment.name, "in_experiment": enrolled}
        }
