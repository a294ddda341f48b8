"""Keep SDK event writes off the request path: an in-process buffer and a flushing thread.

The events endpoint only parses a batch and appends it here (microseconds); a daemon
thread started with the first batch writes everything buffered every
``EVENTS_FLUSH_SECONDS`` (default 2 s) in its own app context. ``flush()`` writes now (tests,
shutdown). When more than ``EVENTS_BUFFER_MAX`` events wait (the database is down or far
behind), new batches are refused with 503, which the SDK answers by keeping and re-sending
its events; a failed write puts its events back while there is room.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Sequence
from datetime import datetime

from flask import Flask, current_app, has_app_context

from ...extensions import db
from ..errors import DomainError
from .events import SdkEvent
from .storing import Delivery, Stored, store_deliveries

log = logging.getLogger(__name__)
EXTENSION = "flagpost_event_buffer"
DEFAULT_FLUSH_SECONDS = 2.0
DEFAULT_BUFFER_MAX = 200_000


class BufferFull(DomainError):
    """The buffer holds as many events as it may: the SDK should send them again later."""

    status = 503


class EventBuffer:
    """Batches of events waiting to be written, per worker process."""

    def __init__(self, app: Flask, interval: float, capacity: int) -> None:
        self._app = app
        self.interval = interval
        self.capacity = capacity
        self._pending: list[Delivery] = []
        self._count = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.flushes = 0  # completed writes of a non-empty buffer (tests wait on it)

    @property
    def pending(self) -> int:
        """Return how many events wait to be written."""
        return self._count

    def add(self, environment_id: int, events: Sequence[SdkEvent], now: datetime) -> None:
        """Queue one request's events (nothing is written here).

        :raises BufferFull: when the events would pass the buffer's capacity.
        """
        if not events:
            return
        with self._lock:
            if self._count + len(events) > self.capacity:
                raise BufferFull("Too many events are waiting to be written; send them later")
            self._pending.append(Delivery(environment_id, now, events))
            self._count += len(events)
            if self._thread is None and self.interval > 0:
                self._start()

    def _take(self) -> list[Delivery]:
        with self._lock:
            taken, self._pending, self._count = self._pending, [], 0
        return taken

    def _put_back(self, deliveries: list[Delivery]) -> None:
        with self._lock:
            for delivery in deliveries:
                if self._count + len(delivery.events) <= self.capacity:
                    self._pending.insert(0, delivery)
                    self._count += len(delivery.events)

    def flush(self) -> Stored:
        """Write every buffered event now, in this app's context.

        :return: the exposures and conversions recorded.
        """
        with self._flush_lock:
            taken = self._take()
            if not taken:
                return Stored()
            if has_app_context() and current_app._get_current_object() is self._app:  # type: ignore[attr-defined]
                return self._store(taken)  # a test (or CLI) already in this app's context
            with self._app.app_context():
                try:
                    return self._store(taken)
                finally:
                    db.session.remove()

    def _store(self, taken: list[Delivery]) -> Stored:
        try:
            stored = store_deliveries(taken)
            self.flushes += 1
            return stored
        except Exception:
            db.session.rollback()
            self._put_back(taken)
            raise

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flagpost-events", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # keep flushing later batches; this one was put back
                log.exception("Writing SDK events failed; they stay buffered")

    def close(self) -> None:
        """Stop the thread and write what is left (at exit)."""
        atexit.unregister(self.close)
        self._stop.set()
        try:
            self.flush()
        except Exception:
            log.exception("Writing SDK events at exit failed")


def app_buffer() -> EventBuffer:
    """Return this worker's event buffer (one per app), creating it on first use."""
    buffer: EventBuffer | None = current_app.extensions.get(EXTENSION)
    if buffer is None:
        config = current_app.config
        buffer = EventBuffer(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            float(config.get("EVENTS_FLUSH_SECONDS", DEFAULT_FLUSH_SECONDS)),
            int(config.get("EVENTS_BUFFER_MAX", DEFAULT_BUFFER_MAX)),
        )
        current_app.extensions[EXTENSION] = buffer
    return buffer
