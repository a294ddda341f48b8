"""Announce committed environment changes to the stream servers (webapp/realtime/).

Every change that alters evaluation bumps ``Environment.revision`` (revisions.py, imports,
environment settings). This module watches the session for those bumps, in one place, and
announces the environment ids once the transaction commits:

- with ``FLAGPOST_REDIS_URL`` set: ``PUBLISH`` on a Redis channel after the commit;
- on PostgreSQL otherwise: ``pg_notify`` inside the transaction, which PostgreSQL delivers on
  commit and drops on rollback (so a rolled-back change never announces anything);
- on SQLite: nothing; the stream server polls the revisions (one indexed read every 0.5 s).

The stream server reads the environment's ``revised_at`` itself, so an event's
``updated_at`` is always the environment document's ``updated_at``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy import event, inspect, text
from sqlalchemy.orm import Session, UOWTransaction

from ..models import Environment

logger = logging.getLogger(__name__)

CHANNEL = "flagpost_changes"
PENDING = "flagpost_changed_environments"
FLUSHING = "flagpost_flushing_environments"
PUBLISHER_EXTENSION = "flagpost_change_publisher"


def changed_environments(session: Session) -> list[Environment]:
    """Return the environments whose revision the coming flush writes.

    Read before the flush: a revision set to a SQL expression (``revision + 1``) is expired
    by the flush, and its history with it.
    """
    found: list[Environment] = []
    for instance in list(session.new) + list(session.dirty):
        if (
            isinstance(instance, Environment)
            and inspect(instance).attrs.revision.history.has_changes()
        ):
            found.append(instance)
    return found


class RedisPublisher:
    """Publish environment ids on a Redis channel (after commit)."""

    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        import redis

        self.channel = channel
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def publish(self, environment_ids: set[int]) -> None:
        """Publish each id; a Redis outage is logged, never raised (the change is committed)."""
        try:
            for environment_id in sorted(environment_ids):
                self.client.publish(self.channel, str(environment_id))
        except Exception:  # noqa: BLE001 - any client error: the commit already happened
            logger.exception("could not announce a change on Redis")


def init_app(app: Flask) -> None:
    """Choose how this app announces changes (Redis, PostgreSQL NOTIFY or nothing)."""
    redis_url = app.config.get("REDIS_URL")
    channel = app.config.get("STREAM_CHANNEL", CHANNEL)
    if redis_url:
        app.extensions[PUBLISHER_EXTENSION] = RedisPublisher(redis_url, channel)
    elif app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        app.extensions[PUBLISHER_EXTENSION] = ("notify", channel)
    _listen_once()


def _publisher() -> Any:
    from flask import current_app, has_app_context

    if not has_app_context():
        return None
    return current_app.extensions.get(PUBLISHER_EXTENSION)


def _before_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    changed = changed_environments(session)
    if changed:
        session.info.setdefault(FLUSHING, []).extend(changed)


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    changed: list[Environment] = session.info.pop(FLUSHING, [])
    ids = {environment.id for environment in changed if environment.id is not None}
    if not ids:
        return
    publisher = _publisher()
    if isinstance(publisher, tuple):
        # Transactional: delivered on commit, dropped on rollback; PostgreSQL folds
        # identical notifications of one transaction into one.
        connection = session.connection()
        for environment_id in sorted(ids):
            connection.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": publisher[1], "payload": str(environment_id)},
            )
    elif publisher is not None:
        session.info.setdefault(PENDING, set()).update(ids)


def _after_commit(session: Session) -> None:
    pending: set[int] | None = session.info.pop(PENDING, None)
    if pending:
        publisher = _publisher()
        if isinstance(publisher, RedisPublisher):
            publisher.publish(pending)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)
    session.info.pop(FLUSHING, None)


_LISTENING: list[bool] = []


def _listen_once() -> None:
    # Session-class events: every app in the process shares the session class; each event
    # looks up the current app's publisher, so apps on different databases stay apart.
    if _LISTENING:
        return
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_rollback", _after_rollback)
    _LISTENING.append(True)
