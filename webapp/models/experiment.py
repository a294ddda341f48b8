"""Experiments on multivariate features, and what the SDK events tell about them.

Storage stays small whatever the traffic: one exposure row per experiment and identity
(the variant it saw first, and when), one conversion row per experiment and identity (its
first goal event after exposure), and per-variant counters kept up to date as rows are
inserted, so the experiment page reads a handful of rows however many identities took part.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import UTCDateTime
from .feature import Feature
from .segment import Segment

EXPERIMENT_NAME_MAX = 200
EVENT_NAME_MAX = 200
VARIANT_KEY_MAX = 200
EVENT_VALUE_MAX = 200
CONTROL = "control"


class Experiment(Model):
    """One run of an experiment on a feature in an environment (running while not stopped)."""

    __tablename__ = "experiments"
    __table_args__ = (
        # At most one running experiment per feature and environment.
        Index(
            "uq_experiments_running",
            "environment_id",
            "feature_id",
            unique=True,
            sqlite_where=text("stopped_at IS NULL"),
            postgresql_where=text("stopped_at IS NULL"),
        ),
        Index("ix_experiments_feature", "feature_id", "environment_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(EXPERIMENT_NAME_MAX))
    goal_event: Mapped[str] = mapped_column(String(EVENT_NAME_MAX))
    # Deleting the segment ends enrolment by segment: everyone is enrolled from then on.
    segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("segments.id", ondelete="SET NULL"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when prune removed the per-identity rows; the counters remain.
    pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    feature: Mapped[Feature] = relationship()
    segment: Mapped[Segment | None] = relationship()

    @property
    def running(self) -> bool:
        return self.stopped_at is None


class ExperimentExposure(Model):
    """An identity exposed to an experiment: the variant it saw first, and when."""

    __tablename__ = "experiment_exposures"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    variant: Mapped[str] = mapped_column(String(VARIANT_KEY_MAX))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ExperimentConversion(Model):
    """An exposed identity's first goal event in an experiment."""

    __tablename__ = "experiment_conversions"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    variant: Mapped[str] = mapped_column(String(VARIANT_KEY_MAX))
    converted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    value: Mapped[str | None] = mapped_column(String(EVENT_VALUE_MAX))


class ExperimentArm(Model):
    """Counters of one variant of an experiment, kept as exposures and conversions arrive."""

    __tablename__ = "experiment_arms"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    variant: Mapped[str] = mapped_column(String(VARIANT_KEY_MAX), primary_key=True)
    exposures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    conversions: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
