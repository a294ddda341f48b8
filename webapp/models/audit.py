"""The audit log: who changed what, when, with the state before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import utcnow
from ..extensions import Model
from .base import UTCDateTime


class AuditEvent(Model):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_env_time", "environment_id", "created_at"),
        Index("ix_audit_events_project_time", "project_id", "created_at"),
        Index("ix_audit_events_object", "object_type", "object_id"),
        Index("ix_audit_events_identity", "identity_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Kept as text too, so the log still names the actor after the account is deleted.
    actor_label: Mapped[str] = mapped_column(String(254), default="system")
    # Plain integers, not foreign keys: the log outlives the objects it describes.
    project_id: Mapped[int | None] = mapped_column(Integer)
    environment_id: Mapped[int | None] = mapped_column(Integer)
    identity_id: Mapped[int | None] = mapped_column(Integer)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    object_label: Mapped[str] = mapped_column(String(300), default="")
    action: Mapped[str] = mapped_column(String(40))
    count: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    before: Mapped[Any] = mapped_column(JSON)
    after: Mapped[Any] = mapped_column(JSON)
