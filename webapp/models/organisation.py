"""Organisation, project, environment and the environment's keys."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    Interval,
    String,
    UniqueConstraint,
    func,
    inspect,
    literal,
)
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from ..clock import utcnow
from ..extensions import Model
from .base import TimestampMixin, UTCDateTime

if TYPE_CHECKING:
    from .feature import Feature
    from .segment import Segment

SERVER_KEY_PREFIX = "ser."


def new_client_key() -> str:
    """Return a client-side environment key: 22 random URL-safe characters, never a "-"
    first (one key in 64 would be, and a command line such as ``flask erase-identity KEY …``
    would then take it for an option)."""
    while True:
        key = secrets.token_urlsafe(16)[:22]
        if not key.startswith("-"):
            return key


def new_server_key() -> str:
    """Return a server-side environment key: ``ser.`` and random URL-safe characters."""
    return SERVER_KEY_PREFIX + secrets.token_urlsafe(30)


class Organisation(TimestampMixin, Model):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)

    projects: Mapped[list[Project]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan", order_by="Project.id"
    )


class Project(TimestampMixin, Model):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))

    organisation: Mapped[Organisation] = relationship(back_populates="projects")
    environments: Mapped[list[Environment]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="Environment.id"
    )
    features: Mapped[list[Feature]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="Feature.name"
    )
    segments: Mapped[list[Segment]] = relationship(
        back_populates="project",
        cascade="all, delete-orphan",
        order_by="(Segment.position, Segment.id)",
    )


_ONE_MICROSECOND = timedelta(microseconds=1)


class Environment(TimestampMixin, Model):
    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # Imported documents keep their own api_key whatever its form, hence the generous length.
    client_key: Mapped[str] = mapped_column(String(255), unique=True, default=new_client_key)
    # The key identities hash with ("{key}_{identifier}", SPEC §2); NULL means the client key.
    # A clone keeps its source's, so every identity stays in the same buckets (README).
    hashing_key: Mapped[str | None] = mapped_column(String(255))
    allow_client_traits: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    hide_disabled_flags: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Real customers live here: QA users may link only identities that are their own (qa.py).
    production: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Bumped by every change that affects evaluation; SDK workers compare it to their cache.
    revision: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    revised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    project: Mapped[Project] = relationship(back_populates="environments")
    server_keys: Mapped[list[ServerKey]] = relationship(
        back_populates="environment", cascade="all, delete-orphan", order_by="ServerKey.id"
    )

    @property
    def identity_hashing_key(self) -> str:
        """Return the key identity keys are built from (the document's ``api_key``)."""
        return self.hashing_key if self.hashing_key is not None else self.client_key

    def bump_revision(self) -> None:
        """Mark the environment's evaluation data as changed (caches reload it).

        A stored row is bumped in SQL (``revision = revision + 1``): two concurrent changes
        then get two revisions, never the same one with only one of them compiled.
        """
        now = utcnow()
        if inspect(self).persistent:
            self.revision = Environment.revision + 1
            session = object_session(self)
            if session is not None and session.get_bind().dialect.name == "postgresql":
                # Two concurrent bumps: the second waits on the row lock, then (READ
                # COMMITTED) computes this from the committed row, so ``revised_at`` never
                # goes back to an earlier time than one already committed. An SDK keeps only
                # events newer than its document, so an older time would lose a change.
                # SQLite has one writer at a time and needs no more than ``now``.
                step = literal(_ONE_MICROSECOND, Interval())
                self.revised_at = func.greatest(
                    literal(now, UTCDateTime()), Environment.revised_at + step
                )
                return
        else:
            self.revision = (self.revision or 0) + 1
        self.revised_at = now


class ServerKey(Model):
    __tablename__ = "server_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(255), unique=True, default=new_server_key)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Written by the SDK API at most once a minute per key and worker (key_usage.py).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    environment: Mapped[Environment] = relationship(back_populates="server_keys")

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def prefix(self) -> str:
        """Return the part of the key shown after creation: ``ser.`` and four characters."""
        return self.key[: len(SERVER_KEY_PREFIX) + 4]
