"""When each server-side key was last used, written without slowing the SDK path.

Each worker writes a key's ``last_used_at`` at most once a minute: the hot path pays one
dict lookup; the write is one guarded UPDATE in its own short transaction (the guard keeps
several workers from rewriting the same minute). A failed write never fails the request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, update

from ...clock import utcnow
from ...extensions import db
from ...models import ServerKey

INTERVAL = 60.0
log = logging.getLogger(__name__)


class KeyUsage:
    """This worker's record of when it last wrote each key's use."""

    def __init__(self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._next: dict[str, float] = {}

    def touch(self, key: str) -> bool:
        """Note that ``key`` was just used; return True when this call wrote it."""
        now = self._clock()
        due = self._next.get(key)
        if due is not None and now < due:
            return False
        if len(self._next) > 10_000:
            self._next.clear()  # revoked and rotated keys must not grow it without bound
        self._next[key] = now + self.interval
        try:
            write_last_used(key, self.interval)
        except Exception:  # noqa: BLE001 - bookkeeping must never fail an SDK request
            log.warning("could not record the use of a server key", exc_info=True)
            return False
        return True


def write_last_used(key: str, interval: float = INTERVAL) -> None:
    """Set the key's ``last_used_at`` to now unless another worker did within ``interval``."""
    now = utcnow()
    with db.engine.begin() as connection:
        connection.execute(
            update(ServerKey)
            .where(
                ServerKey.key == key,
                or_(
                    ServerKey.last_used_at.is_(None),
                    ServerKey.last_used_at < now - timedelta(seconds=interval),
                ),
            )
            .values(last_used_at=now)
        )


USAGE_EXTENSION = "flagpost_key_usage"


def app_usage() -> KeyUsage:
    """Return this worker's key-usage record (one per app), creating it on first use."""
    usage: KeyUsage | None = current_app.extensions.get(USAGE_EXTENSION)
    if usage is None:
        usage = current_app.extensions[USAGE_EXTENSION] = KeyUsage(
            current_app.config.get("SERVER_KEY_USAGE_INTERVAL", INTERVAL)
        )
    return usage
