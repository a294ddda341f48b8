"""Features, their per-environment default states and multivariate options."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import TimestampMixin, TypedValueMixin, new_hash_key

if TYPE_CHECKING:
    from .organisation import Environment, Project
    from .segment import SegmentOverride

FEATURE_TYPES = ("STANDARD", "MULTIVARIATE")
FEATURE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,150}$"


class Feature(TimestampMixin, Model):
    __tablename__ = "features"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint("type IN ('STANDARD', 'MULTIVARIATE')", name="type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(150))
    type: Mapped[str] = mapped_column(String(16), default="STANDARD")
    description: Mapped[str] = mapped_column(Text, default="")
    server_key_only: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # The feature id a Flagsmith document gave it; SDKs see it as ``feature.id``.
    external_id: Mapped[int | None] = mapped_column(Integer)

    project: Mapped[Project] = relationship(back_populates="features")
    states: Mapped[list[FeatureState]] = relationship(
        back_populates="feature", cascade="all, delete-orphan", passive_deletes=True
    )
    options: Mapped[list[MultivariateOption]] = relationship(
        back_populates="feature",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="MultivariateOption.id",
    )

    @property
    def sdk_id(self) -> int:
        """Return the id SDKs see: the imported Flagsmith id when there is one."""
        return self.external_id if self.external_id is not None else self.id


class FeatureState(TypedValueMixin, TimestampMixin, Model):
    """A feature's default enabled/value in one environment."""

    __tablename__ = "feature_states"
    __table_args__ = (UniqueConstraint("environment_id", "feature_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), index=True
    )
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Seed for multivariate hashing; kept across rewrites so buckets never move.
    hash_key: Mapped[str] = mapped_column(String(64), default=new_hash_key, nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)

    feature: Mapped[Feature] = relationship(back_populates="states")
    environment: Mapped[Environment] = relationship()
    allocations: Mapped[list[MultivariateAllocation]] = relationship(
        back_populates="feature_state", cascade="all, delete-orphan", passive_deletes=True
    )


class MultivariateOption(TypedValueMixin, TimestampMixin, Model):
    """One possible value of a multivariate feature (shared by every environment)."""

    __tablename__ = "multivariate_options"

    id: Mapped[int] = mapped_column(primary_key=True)
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), index=True
    )
    default_allocation: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    external_id: Mapped[int | None] = mapped_column(Integer)

    feature: Mapped[Feature] = relationship(back_populates="options")


class MultivariateAllocation(Model):
    """An option's percentage in one environment default state or one segment override."""

    __tablename__ = "multivariate_allocations"
    __table_args__ = (
        CheckConstraint(
            "(feature_state_id IS NULL) <> (segment_override_id IS NULL)", name="one_owner"
        ),
        CheckConstraint("percentage >= 0 AND percentage <= 100", name="percentage_range"),
        UniqueConstraint("feature_state_id", "option_id"),
        UniqueConstraint("segment_override_id", "option_id"),
        Index("ix_multivariate_allocations_option", "option_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    option_id: Mapped[int] = mapped_column(
        ForeignKey("multivariate_options.id", ondelete="CASCADE")
    )
    feature_state_id: Mapped[int | None] = mapped_column(
        ForeignKey("feature_states.id", ondelete="CASCADE")
    )
    segment_override_id: Mapped[int | None] = mapped_column(
        ForeignKey("segment_overrides.id", ondelete="CASCADE")
    )
    percentage: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    # Ordering seed for the bucket walk: Flagsmith's multivariate value id, or a UUID.
    seed: Mapped[str] = mapped_column(String(64), default=new_hash_key, nullable=False)

    option: Mapped[MultivariateOption] = relationship()
    feature_state: Mapped[FeatureState | None] = relationship(back_populates="allocations")
    segment_override: Mapped[SegmentOverride | None] = relationship(back_populates="allocations")
