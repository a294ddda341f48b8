"""Start, stop, list and read experiments (every change audited and committed here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import Environment, Feature, Segment, User
from ...models.experiment import EVENT_NAME_MAX, EXPERIMENT_NAME_MAX, Experiment
from .. import audit, revisions
from ..errors import Conflict, NotFound, ValidationError


def _snapshot(experiment: Experiment) -> dict[str, object]:
    return {
        "name": experiment.name,
        "goal_event": experiment.goal_event,
        "segment": experiment.segment.name if experiment.segment else None,
        "feature": experiment.feature.name,
        "started_at": experiment.started_at.isoformat(),
        "stopped_at": experiment.stopped_at.isoformat() if experiment.stopped_at else None,
    }


def _check_text(text: str, field: str, limit: int, what: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise ValidationError(f"Give the experiment a {what}", field)
    if len(cleaned) > limit:
        raise ValidationError(f"The {what} has at most {limit:,} characters", field)
    if not cleaned.isprintable():
        raise ValidationError(f"The {what} cannot contain control characters", field)
    return cleaned


def enrolling_segments(project_id: int) -> Sequence[Segment]:
    """Return the project's segments an experiment may enrol by, in the project's order."""
    return db.session.scalars(
        select(Segment)
        .where(Segment.project_id == project_id)
        .order_by(Segment.position, Segment.id)
    ).all()


def running_experiment(environment_id: int, feature_id: int) -> Experiment | None:
    """Return the feature's running experiment in the environment, if any."""
    return db.session.scalar(
        select(Experiment).where(
            Experiment.environment_id == environment_id,
            Experiment.feature_id == feature_id,
            Experiment.stopped_at.is_(None),
        )
    )


def list_experiments(environment_id: int, feature_id: int) -> Sequence[Experiment]:
    """Return the feature's experiments in the environment, newest first."""
    return db.session.scalars(
        select(Experiment)
        .where(Experiment.environment_id == environment_id, Experiment.feature_id == feature_id)
        .order_by(Experiment.started_at.desc(), Experiment.id.desc())
    ).all()


def get_experiment(environment_id: int, experiment_id: int) -> Experiment:
    """Return one experiment of the environment.

    :raises NotFound: when it does not exist or belongs to another environment.
    """
    experiment = db.session.get(Experiment, experiment_id)
    if experiment is None or experiment.environment_id != environment_id:
        raise NotFound("No such experiment in this environment.")
    return experiment


def start_experiment(
    environment: Environment,
    feature: Feature,
    name: str,
    goal_event: str,
    segment_id: int | None,
    actor: User | None,
    now: datetime,
) -> Experiment:
    """Start an experiment on a multivariate feature (one running per feature and environment).

    :param segment_id: the segment that enrols identities; None enrols everyone.
    :raises ValidationError: not multivariate, no options, bad name, goal event or segment.
    :raises Conflict: when an experiment already runs on the feature here.
    """
    if feature.type != "MULTIVARIATE" or not feature.options:
        raise ValidationError("Experiments need a multivariate feature with variants")
    name = _check_text(name, "name", EXPERIMENT_NAME_MAX, "name")
    goal_event = _check_text(goal_event, "goal_event", EVENT_NAME_MAX, "goal event")
    if goal_event.startswith("$"):
        raise ValidationError("Names starting with $ are the SDK's own events", "goal_event")
    segment = None
    if segment_id is not None:
        segment = db.session.get(Segment, segment_id)
        if segment is None or segment.project_id != feature.project_id:
            raise ValidationError("No such segment in this project", "segment_id")
    if running_experiment(environment.id, feature.id) is not None:
        raise Conflict("An experiment already runs on this feature here; stop it first.")
    experiment = Experiment(
        environment_id=environment.id,
        feature_id=feature.id,
        name=name,
        goal_event=goal_event,
        segment_id=segment.id if segment else None,
        started_at=now,
    )
    experiment.feature, experiment.segment = feature, segment
    db.session.add(experiment)
    try:
        db.session.flush()
    except IntegrityError as exc:  # a concurrent start won the unique index
        db.session.rollback()
        raise Conflict("An experiment already runs on this feature here; stop it first.") from exc
    _audit(actor, "start", experiment, None, _snapshot(experiment))
    revisions.bump_environment(environment.id)
    db.session.commit()
    return experiment


def stop_experiment(
    environment: Environment, experiment_id: int, actor: User | None, now: datetime
) -> Experiment:
    """Stop a running experiment; its results stay readable.

    :raises NotFound: when it is not this environment's.
    :raises Conflict: when it has already stopped.
    """
    experiment = get_experiment(environment.id, experiment_id)
    if experiment.stopped_at is not None:
        raise Conflict("This experiment has already stopped.")
    before = _snapshot(experiment)
    experiment.stopped_at = now
    _audit(actor, "stop", experiment, before, _snapshot(experiment))
    revisions.bump_environment(environment.id)
    db.session.commit()
    return experiment


def _audit(
    actor: User | None, action: str, experiment: Experiment, before: object, after: object
) -> None:
    audit.record(
        actor,
        action,
        "experiment",
        object_id=experiment.id,
        object_label=f"{experiment.name} ({experiment.feature.name})",
        project_id=experiment.feature.project_id,
        environment_id=experiment.environment_id,
        before=before,
        after=after,
    )
