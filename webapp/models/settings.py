"""Per-environment settings chosen by admins (kept apart from the environment row itself)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import TimestampMixin


class TraitColumnDefault(TimestampMixin, Model):
    """The trait columns everyone sees on an environment's Users page until they choose."""

    __tablename__ = "trait_column_defaults"

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    keys: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
