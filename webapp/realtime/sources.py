"""Where a stream server learns that environments changed.

- ``RedisSource``: Redis pub/sub, when ``FLAGPOST_REDIS_URL`` is set (the app publishes
  after commit, services/change_events.py).
- ``PostgresSource``: PostgreSQL ``LISTEN`` (the app's ``pg_notify`` is delivered on commit).
- ``PollingSource``: the embedded SQLite has no notifications; read the watched
  environments' revisions every ``interval`` seconds (one indexed query).

A source that (re)connects refreshes every watched environment first, so a change made while
it was disconnected is still delivered. Each retries forever with a short pause.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Protocol

from sqlalchemy.engine import make_url

from .hub import Hub

logger = logging.getLogger(__name__)
RETRY_SECONDS = 1.0
CHANNEL_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Source(Protocol):
    connected: asyncio.Event

    async def run(self, hub: Hub) -> None: ...


def _ids(payload: str | bytes) -> set[int]:
    text = payload.decode() if isinstance(payload, bytes) else payload
    return {int(part) for part in text.split(",") if part.strip().isdigit()}


class PollingSource:
    """Poll the watched environments' revisions (SQLite)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.connected = asyncio.Event()

    async def run(self, hub: Hub) -> None:
        self.connected.set()
        while True:
            try:
                await hub.refresh(hub.watched())
            except Exception:  # noqa: BLE001 - a locked or busy database: try again
                logger.exception("could not poll environment revisions")
            await asyncio.sleep(self.interval)


class PostgresSource:
    """``LISTEN`` on the app's notification channel."""

    def __init__(self, database_url: str, channel: str) -> None:
        if not CHANNEL_NAME.match(channel):
            raise ValueError(f"not a channel name: {channel!r}")
        url = make_url(database_url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.channel = channel
        self.connected = asyncio.Event()

    async def run(self, hub: Hub) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {self.channel}")
                    await hub.refresh(hub.watched())
                    self.connected.set()
                    async for notice in connection.notifies():
                        await hub.refresh(_ids(notice.payload))
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - server restart, network: reconnect
                logger.exception("PostgreSQL LISTEN failed; reconnecting")
            self.connected.clear()
            await asyncio.sleep(RETRY_SECONDS)


class RedisSource:
    """Subscribe to the app's Redis channel."""

    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.channel = channel
        self.connected = asyncio.Event()

    async def run(self, hub: Hub) -> None:
        import redis.asyncio as redis

        while True:
            client = redis.Redis.from_url(self.url)
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(self.channel)
                await hub.refresh(hub.watched())
                self.connected.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await hub.refresh(_ids(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - server restart, network: reconnect
                logger.exception("Redis subscription failed; reconnecting")
            finally:
                await client.aclose()
            self.connected.clear()
            await asyncio.sleep(RETRY_SECONDS)
