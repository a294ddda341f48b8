"""The stream server's few database reads (synchronous; the hub runs them in threads).

Reads only: which environment a key opens, environments' current revisions, whether a
dashboard user may watch an environment, and who made its latest change. Each is one
indexed query, run on connect or once per change (never per client per change).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, or_, select, text, update

from ..clock import utcnow
from ..models import Environment, IdentityOverride, ServerKey
from ..models.account import ProjectRole, User
from ..models.audit import AuditEvent
from ..models.organisation import SERVER_KEY_PREFIX

KEY_MAX = 255
KEY_CACHE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Revision:
    """An environment's revision and its document's ``updated_at`` (epoch seconds)."""

    revision: int
    updated_at: float
    project_id: int


def epoch(moment: datetime) -> float:
    """Return epoch seconds for a stored (aware UTC) datetime, as the SDK reads them back."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def is_plausible_key(key: str) -> bool:
    """Reject keys that cannot exist without touching the database (as the SDK API does)."""
    return 0 < len(key) <= KEY_MAX and key.isprintable()


class Store:
    """Synchronous reads on a small pool of the app's database."""

    def __init__(
        self, database_url: str, pool_size: int = 4, notify_channel: str | None = None
    ) -> None:
        self.notify_channel = notify_channel
        options: dict[str, Any] = {"pool_pre_ping": True}
        if database_url.startswith("postgresql"):
            options.update(pool_size=pool_size, max_overflow=0)
        self.engine: Engine = create_engine(database_url, **options)
        self._keys: dict[str, tuple[float, int | None]] = {}

    def environment_for_key(self, key: str) -> int | None:
        """Return the environment a client key or an active server key opens, else None."""
        now = time.monotonic()
        cached = self._keys.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._lookup(key)
        if len(self._keys) > 10_000:
            self._keys.clear()  # unknown keys must not grow the cache without bound
        self._keys[key] = (now + KEY_CACHE_SECONDS, found)
        return found

    def cached_environment_for_key(self, key: str) -> int | None | bool:
        """Return the cached answer of ``environment_for_key``, or False when not cached."""
        cached = self._keys.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return False

    def _lookup(self, key: str) -> int | None:
        with self.engine.connect() as connection:
            if key.startswith(SERVER_KEY_PREFIX):
                row = connection.execute(
                    select(ServerKey.environment_id, ServerKey.revoked_at).where(
                        ServerKey.key == key
                    )
                ).first()
                if row is not None:
                    return None if row.revoked_at is not None else int(row.environment_id)
            found = connection.scalar(select(Environment.id).where(Environment.client_key == key))
            return None if found is None else int(found)

    def revisions(self, environment_ids: set[int]) -> dict[int, Revision]:
        """Return the current revision of each environment that still exists."""
        if not environment_ids:
            return {}
        table = Environment.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table.c.id, table.c.revision, table.c.revised_at, table.c.project_id).where(
                    table.c.id.in_(sorted(environment_ids))
                )
            ).all()
        return {
            int(row.id): Revision(int(row.revision), epoch(_aware(row.revised_at)), row.project_id)
            for row in rows
        }

    def may_watch(self, user_id: int, environment_id: int) -> bool:
        """Whether an active dashboard user has a role on the environment's project."""
        with self.engine.connect() as connection:
            project_id = connection.scalar(
                select(Environment.project_id).where(Environment.id == environment_id)
            )
            if project_id is None:
                return False
            found = connection.scalar(
                select(ProjectRole.id)
                .join(User, User.id == ProjectRole.user_id)
                .where(
                    ProjectRole.user_id == user_id,
                    User.active.is_(True),
                    or_(ProjectRole.project_id == project_id, ProjectRole.project_id.is_(None)),
                )
                .limit(1)
            )
            return found is not None

    def latest_change(self, environment_id: int, project_id: int) -> dict[str, Any]:
        """Describe the newest audited change to an environment (or its project) for pages."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(
                    AuditEvent.actor_id,
                    AuditEvent.actor_label,
                    AuditEvent.object_label,
                    AuditEvent.identity_id,
                )
                .where(
                    or_(
                        AuditEvent.environment_id == environment_id,
                        (AuditEvent.project_id == project_id) & AuditEvent.environment_id.is_(None),
                    )
                )
                .order_by(AuditEvent.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return {}
        return {
            "by_id": row.actor_id,
            "by": row.actor_label,
            "object": row.object_label,
            "identity_id": row.identity_id,
        }

    def expire_due(self, environment_ids: set[int]) -> set[int]:
        """Bump the environments where an identity override ran out since their last change.

        An override that expires changes what local evaluation must see, but nothing was
        committed: bumping the revision (``revised_at`` = now) makes the SDKs' documents and
        every worker's snapshot drop it, like any other change. Announced on PostgreSQL with
        ``pg_notify`` so other stream servers hear it too.
        """
        if not environment_ids:
            return set()
        now = utcnow()
        with self.engine.begin() as connection:
            due = set(
                connection.scalars(
                    select(IdentityOverride.environment_id)
                    .distinct()
                    .join(Environment, Environment.id == IdentityOverride.environment_id)
                    .where(
                        IdentityOverride.environment_id.in_(sorted(environment_ids)),
                        IdentityOverride.expires_at <= now,
                        IdentityOverride.expires_at > Environment.revised_at,
                    )
                )
            )
            if due:
                connection.execute(
                    update(Environment)
                    .where(Environment.id.in_(sorted(due)))
                    .values(revision=Environment.revision + 1, revised_at=now)
                )
                if self.notify_channel and connection.dialect.name == "postgresql":
                    for environment_id in sorted(due):
                        connection.execute(
                            text("SELECT pg_notify(:channel, :payload)"),
                            {"channel": self.notify_channel, "payload": str(environment_id)},
                        )
        return due

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _aware(value: Any) -> datetime:
    # Core selects skip the UTCDateTime decorator's aware result only if the column type is
    # lost; keep the read explicit either way.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
