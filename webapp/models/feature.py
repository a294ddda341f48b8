"""Features, their per-environment default states and multivariate options."""

from __future__ import annotations

import re
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
    event,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from ..extensions import Model
from .base import TimestampMixin, TypedValue, TypedValueMixin, new_hash_key

if TYPE_CHECKING:
    from .organisation import Environment, Project
    from .segment import SegmentOverride

FEATURE_TYPES = ("STANDARD", "MULTIVARIATE")
FEATURE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,150}$"
OPTION_KEY_MAX = 100


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
    __table_args__ = (UniqueConstraint("feature_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), index=True
    )
    default_allocation: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    external_id: Mapped[int | None] = mapped_column(Integer)
    # The variant name SDKs see (Flagsmith's ``multivariate_feature_option.key``).
    key: Mapped[str] = mapped_column(String(OPTION_KEY_MAX), nullable=False)

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


def default_option_key(value: TypedValue, taken: set[str]) -> str:
    """Name a new option's variant from its value (``blue``), else ``variant-N``.

    "control" is the name of the feature's own value, so an option never takes it.
    """
    text = "" if value is None else str(value).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:50].strip("-")
    if slug and slug != "control" and slug not in taken:
        return slug
    number = len(taken) + 1
    while f"variant-{number}" in taken:
        number += 1
    return f"variant-{number}"


@event.listens_for(Session, "before_flush")
def _name_new_options(session: Session, _context: object, _instances: object) -> None:
    """Give every new option without a key its default key, unique within its feature."""
    for option in [o for o in session.new if isinstance(o, MultivariateOption) and not o.key]:
        feature = option.feature or session.get(Feature, option.feature_id)
        siblings = list(feature.options) if feature is not None else []
        if feature is not None and option.feature_id is not None and feature.id is not None:
            # Options added by id alone are not in the loaded collection yet.
            siblings += [
                o for o in session.new if isinstance(o, MultivariateOption)
                and o.feature_id == feature.id and o not in siblings
            ]  # fmt: skip
        taken = {o.key for o in siblings if o.key}
        option.key = default_option_key(option.value, taken)
