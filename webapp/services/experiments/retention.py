"""Prune experiment data past the retention period (for ``flask prune-analytics``).

A running experiment keeps all its rows, whatever its age: its results must not change
because time passed. Once an experiment has been stopped for longer than the retention
period, its per-identity rows (exposures, conversions) are deleted; the experiment and its
per-variant counters stay, so its results page still reads the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from ...extensions import db
from ...models.experiment import Experiment, ExperimentConversion, ExperimentExposure

DEFAULT_RETENTION = timedelta(days=90)


def prune_experiments(now: datetime, retention: timedelta = DEFAULT_RETENTION) -> int:
    """Delete per-identity rows of experiments stopped before ``now - retention``.

    :return: how many exposure and conversion rows were deleted.
    """
    cutoff = now - retention
    ids = list(
        db.session.scalars(
            select(Experiment.id).where(
                Experiment.stopped_at.is_not(None),
                Experiment.stopped_at < cutoff,
                Experiment.pruned_at.is_(None),
            )
        )
    )
    deleted = 0
    for experiment_id in ids:
        for model in (ExperimentConversion, ExperimentExposure):
            result = db.session.execute(delete(model).where(model.experiment_id == experiment_id))
            deleted += int(getattr(result, "rowcount", 0) or 0)
        db.session.execute(
            update(Experiment).where(Experiment.id == experiment_id).values(pruned_at=now)
        )
        db.session.commit()
    return deleted
