"""Fan-out inside one stream server: who listens to which environment, and the caps.

A change source (sources.py) tells the hub which environments changed; the hub reads their
revisions once (one query for all of them) and wakes every subscriber of an environment
whose revision moved. Subscribers hold no queue: each keeps the last revision it sent and,
when woken, sends the current one, so a slow client skips intermediate revisions instead of
buffering them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .store import Revision, Store

T = TypeVar("T")


@dataclass(eq=False)
class Subscriber:
    """One open stream: an SDK (by key) or a dashboard page (by user)."""

    environment_id: int
    cap_key: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a new stream is refused: HTTP status and a message."""

    status: int
    detail: str


class Hub:
    """Subscriptions per environment, connection caps and the current revisions."""

    def __init__(self, store: Store, max_per_key: int, max_total: int) -> None:
        self.store = store
        self.max_per_key = max_per_key
        self.max_total = max_total
        self.channels: dict[int, set[Subscriber]] = {}
        self.current: dict[int, Revision] = {}
        self.per_key: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[Any]] = set()
        # Set when the server stops: every stream ends at once instead of at the timeout.
        self.closing = False
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="stream-db")

    # Reads run in a small thread pool: the event loop never waits on the database.
    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run a blocking store read off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    @property
    def connections(self) -> int:
        """Open streams in this server."""
        return sum(len(subscribers) for subscribers in self.channels.values())

    def refusal(self, cap_key: str) -> Refusal | None:
        """Say why one more stream for ``cap_key`` would exceed a cap, or None."""
        if self.connections >= self.max_total:
            return Refusal(503, f"This stream server holds its maximum of {self.max_total} "
                           "streams; retry later or add a server.")  # fmt: skip
        if self.per_key[cap_key] >= self.max_per_key:
            return Refusal(429, f"This key already holds the maximum of {self.max_per_key} "
                           "streams; close one or retry later.")  # fmt: skip
        return None

    def subscribe(self, environment_id: int, cap_key: str) -> Subscriber:
        """Register a stream (the caller unsubscribes it in a ``finally``)."""
        subscriber = Subscriber(environment_id, cap_key)
        self.channels.setdefault(environment_id, set()).add(subscriber)
        self.per_key[cap_key] += 1
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a stream; the last one of an environment forgets its revision too."""
        subscribers = self.channels.get(subscriber.environment_id)
        if subscribers is not None and subscriber in subscribers:
            subscribers.discard(subscriber)
            self.per_key[subscriber.cap_key] -= 1
            if self.per_key[subscriber.cap_key] <= 0:
                del self.per_key[subscriber.cap_key]
            if not subscribers:
                del self.channels[subscriber.environment_id]
                self.current.pop(subscriber.environment_id, None)

    def watched(self) -> set[int]:
        """The environments at least one stream listens to."""
        return set(self.channels)

    async def revision_of(self, environment_id: int) -> Revision | None:
        """Return the environment's current revision (read once, then kept while watched)."""
        known = self.current.get(environment_id)
        if known is None:
            await self.refresh({environment_id})
            known = self.current.get(environment_id)
        return known

    async def refresh(self, environment_ids: set[int]) -> None:
        """Read the revisions of the watched ones among ``environment_ids``; wake on change."""
        wanted = environment_ids & self.watched()
        if wanted:
            found = await self.run(self.store.revisions, wanted)
            self.apply(found)
            self.forget(wanted - found.keys())

    def forget(self, environment_ids: set[int]) -> None:
        """End the streams of environments that no longer exist (their writers see no revision)."""
        for environment_id in environment_ids:
            if self.current.pop(environment_id, None) is not None:
                for subscriber in self.channels.get(environment_id, ()):
                    subscriber.wake.set()

    def apply(self, revisions: dict[int, Revision]) -> None:
        """Record revisions; wake the subscribers of each environment whose revision moved."""
        for environment_id, revision in revisions.items():
            subscribers = self.channels.get(environment_id)
            if subscribers is None:
                continue
            known = self.current.get(environment_id)
            if known is not None and known.revision >= revision.revision:
                continue
            self.current[environment_id] = revision
            if known is not None:
                for subscriber in subscribers:
                    subscriber.wake.set()

    def track(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        """Count a per-stream task until it ends (the health endpoint reports the count)."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def end_streams(self) -> None:
        """End every open stream (the server is stopping)."""
        self.closing = True
        for subscribers in self.channels.values():
            for subscriber in subscribers:
                subscriber.wake.set()

    def close(self) -> None:
        """Release the thread pool and the database connections."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.store.dispose()
