"""Dashboard users, their roles per project and their linked identities."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import utcnow
from ..extensions import Model
from .base import UTCDateTime

if TYPE_CHECKING:
    from .identity import Identity
    from .organisation import Project

# Ordered from least to most powerful; a role includes everything before it.
ROLES = ("viewer", "qa", "editor", "admin")


class User(UserMixin, Model):  # type: ignore[misc]  # UserMixin is untyped
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so uniqueness is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Per-user dashboard choices, e.g. {"trait_columns": {"<environment id>": ["plan"]}}.
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    # Invited, not yet accepted: no usable password until the invitation link is used.
    invitation_pending: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Part of the login id kept in sessions and remember cookies: raising it (password
    # change or reset, disabling) ends every session opened before.
    session_version: Mapped[int] = mapped_column(Integer, default=0, nullable=False)

    roles: Mapped[list[ProjectRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_active(self) -> bool:
        return self.active and not self.invitation_pending

    def get_id(self) -> str:
        """Return the session's login id: the user id and the session version."""
        return f"{self.id}.{self.session_version}"


class ProjectRole(Model):
    """A user's role on one project, or on every project when ``project_id`` is NULL."""

    __tablename__ = "project_roles"
    __table_args__ = (
        UniqueConstraint("user_id", "project_id"),
        CheckConstraint("role IN ('viewer', 'qa', 'editor', 'admin')", name="role"),
        Index("ix_project_roles_project", "project_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))

    user: Mapped[User] = relationship(back_populates="roles")
    project: Mapped[Project | None] = relationship()


class IdentityLink(Model):
    """A QA user's claim "this identity is me", which lets them change it."""

    __tablename__ = "identity_links"
    __table_args__ = (
        UniqueConstraint("user_id", "identity_id"),
        Index("ix_identity_links_identity", "identity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    identity: Mapped[Identity] = relationship()


# What an account link is for: accepting an invitation, or choosing a new password.
TOKEN_PURPOSES = ("invitation", "password_reset")


class AccountToken(Model):
    """A one-time link for one account; only the SHA-256 of its secret is stored."""

    __tablename__ = "account_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('invitation', 'password_reset')", name="purpose"),
        Index("ix_account_tokens_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
