"""Segments (rules over traits) and their per-environment feature overrides."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import TimestampMixin, TypedValueMixin, new_hash_key

if TYPE_CHECKING:
    from .feature import Feature, MultivariateAllocation
    from .organisation import Environment, Project


class Segment(TimestampMixin, Model):
    """Named rules over traits, evaluated per identity.

    ``rules`` holds the rule tree in the Flagsmith document shape
    (``[{"type": "ALL", "rules": [...], "conditions": [{"operator", "property_", "value"}]}]``)
    so the evaluation module, the SQL translator and import/export all read one format.
    """

    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_project_position", "project_id", "position", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Project segment order: decides priority ties, as in the environment document.
    position: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # PERCENTAGE_SPLIT hashes the segment id; an imported segment keeps its Flagsmith id here.
    hash_seed: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)

    project: Mapped[Project] = relationship(back_populates="segments")
    overrides: Mapped[list[SegmentOverride]] = relationship(
        back_populates="segment", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def hash_id(self) -> str:
        """Return the id PERCENTAGE_SPLIT hashes and SDKs see."""
        return self.hash_seed if self.hash_seed is not None else str(self.id)


class SegmentOverride(TypedValueMixin, TimestampMixin, Model):
    """A feature's enabled/value for identities in a segment, in one environment."""

    __tablename__ = "segment_overrides"
    __table_args__ = (
        UniqueConstraint("segment_id", "feature_id", "environment_id"),
        Index("ix_segment_overrides_env_feature", "environment_id", "feature_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    feature_id: Mapped[int] = mapped_column(ForeignKey("features.id", ondelete="CASCADE"))
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Lower wins; NULL counts as +infinity (SPEC §2).
    priority: Mapped[int | None] = mapped_column(Integer)
    hash_key: Mapped[str] = mapped_column(String(64), default=new_hash_key, nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)

    segment: Mapped[Segment] = relationship(back_populates="overrides")
    feature: Mapped[Feature] = relationship()
    environment: Mapped[Environment] = relationship()
    allocations: Mapped[list[MultivariateAllocation]] = relationship(
        back_populates="segment_override", cascade="all, delete-orphan", passive_deletes=True
    )
