"""The stream server: server-sent events for SDKs and dashboard pages (Starlette, uvicorn).

Long-lived streams never hold the WSGI workers that serve the dashboard and the SDK API:
this small ASGI app runs beside them (``flask run-streams``, or uvicorn in production behind
a reverse proxy that routes ``/sse/``). It reads the database only on connect and once per
change, never Flask's request machinery.

- ``GET /sse/environments/<key>/stream``: what the official SDKs open in local evaluation
  with real-time updates (``realtime_api_url``). The key is the environment's client key
  (the document's ``api_key``, which is what the SDKs use) or an active server key. Events::

      id: <revision>
      event: environment_updated
      data: {"updated_at": <epoch seconds of the environment document's updated_at>}

  The first event is sent on connect, so a reconnecting SDK always learns the fresh
  ``updated_at`` (unless its ``Last-Event-ID`` is already the current revision).
- ``GET /sse/pages/environments/<id>/stream?token=…``: dashboard pages (tokens.py); events
  ``environment-changed`` carry the revision and who made the latest change.
- ``GET /sse/health``: open streams and per-stream tasks (tests check both return to zero).

Heartbeats are comment lines every ``heartbeat`` seconds; caps per key (per user for
pages) and in total answer 429 and 503 with a JSON ``detail``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import tokens
from .hub import Hub, Subscriber
from .sources import PollingSource, PostgresSource, RedisSource, Source
from .store import Revision, Store, is_plausible_key

logger = logging.getLogger(__name__)

INVALID_KEY = "Invalid or missing Environment Key"
RETRY_MILLISECONDS = 1000
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    # nginx buffers responses unless told not to; a buffered stream is no stream.
    (b"x-accel-buffering", b"no"),
    (b"access-control-allow-origin", b"*"),
]


@dataclass(frozen=True)
class StreamSettings:
    """Everything the stream server needs from the app's configuration."""

    database_url: str
    secret_key: str
    redis_url: str | None = None
    channel: str = "flagpost_changes"
    max_per_key: int = 1000
    max_total: int = 10000
    heartbeat: float = 15.0
    poll_interval: float = 0.5
    token_max_age: int = 12 * 3600
    expiry_interval: float = 0.5

    @classmethod
    def from_config(cls, config: Any) -> StreamSettings:
        """Build from a Flask app's config (the same settings file and variables)."""
        return cls(
            database_url=config["SQLALCHEMY_DATABASE_URI"],
            secret_key=config["SECRET_KEY"],
            redis_url=config.get("REDIS_URL") or None,
            channel=config.get("STREAM_CHANNEL", "flagpost_changes"),
            max_per_key=int(config.get("STREAM_MAX_PER_KEY", 1000)),
            max_total=int(config.get("STREAM_MAX_TOTAL", 10000)),
            heartbeat=float(config.get("STREAM_HEARTBEAT_SECONDS", 15.0)),
            poll_interval=float(config.get("STREAM_POLL_SECONDS", 0.5)),
            token_max_age=int(config.get("STREAM_TOKEN_MAX_AGE", 12 * 3600)),
        )

    def source(self) -> Source:
        """Redis when configured, else PostgreSQL LISTEN, else polling (SQLite)."""
        if self.redis_url:
            return RedisSource(self.redis_url, self.channel)
        if self.database_url.startswith("postgresql"):
            return PostgresSource(self.database_url, self.channel)
        return PollingSource(self.poll_interval)


def _event(name: str, revision: int, data: dict[str, Any], retry: bool = False) -> bytes:
    head = f"retry: {RETRY_MILLISECONDS}\n" if retry else ""
    body = json.dumps(data, separators=(",", ":"))
    return f"{head}id: {revision}\nevent: {name}\ndata: {body}\n\n".encode()


def _last_event_id(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"last-event-id":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 12 else None
    return None


class EventStream:
    """An SSE response that unsubscribes however it ends (client gone, server stopping)."""

    def __init__(
        self,
        hub: Hub,
        subscriber: Subscriber,
        render: Callable[[Revision, bool], Any],
        heartbeat: float,
        sent_revision: int | None,
    ) -> None:
        self.hub = hub
        self.subscriber = subscriber
        self.render = render
        self.heartbeat = heartbeat
        self.sent_revision = sent_revision

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tasks: list[asyncio.Task[Any]] = []
        try:
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            tasks = [
                self.hub.track(asyncio.ensure_future(self._write(send))),
                self.hub.track(asyncio.ensure_future(self._until_disconnect(receive))),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except OSError:
            pass  # the client went away mid-write
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            self.hub.unsubscribe(self.subscriber)

    async def _until_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _write(self, send: Send) -> None:
        await self._events(send)
        # Ended by the server (stopping, key revoked, role lost, environment deleted): close
        # the chunked body properly; clients reconnect and hear why.
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _events(self, send: Send) -> None:
        first = True
        while not self.hub.closing:
            current = self.hub.current.get(self.subscriber.environment_id)
            if current is None:
                return  # the environment was deleted
            if current.revision != self.sent_revision:
                chunk = await self.render(current, first)
                if chunk is None:
                    return  # the key was revoked or the user lost their role: end the stream
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                self.sent_revision = current.revision
            elif first:
                await send({"type": "http.response.body", "body": b"retry: 1000\n\n",
                            "more_body": True})  # fmt: skip
            first = False
            try:
                await asyncio.wait_for(self.subscriber.wake.wait(), self.heartbeat)
                self.subscriber.wake.clear()
            except TimeoutError:
                await send({"type": "http.response.body", "body": b": heartbeat\n\n",
                            "more_body": True})  # fmt: skip


class StreamServer:
    """The routes' handlers over one hub and one change source."""

    def __init__(self, settings: StreamSettings, source: Source) -> None:
        self.settings = settings
        self.store = Store(
            settings.database_url, notify_channel=None if settings.redis_url else settings.channel
        )
        self.hub = Hub(self.store, settings.max_per_key, settings.max_total)
        self.source = source
        self.loop: asyncio.AbstractEventLoop | None = None

    def end_streams_soon(self) -> None:
        """End every open stream, from any thread (a server about to stop)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.hub.end_streams)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Run the change source while the server runs; release everything after."""
        self.loop = asyncio.get_running_loop()
        tasks = [
            asyncio.ensure_future(self.source.run(self.hub)),
            asyncio.ensure_future(self._expire_overrides()),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            self.hub.close()

    async def _expire_overrides(self) -> None:
        """Twice a second, turn identity overrides that ran out into a change (store.expire_due)."""
        while True:
            await asyncio.sleep(self.settings.expiry_interval)
            try:
                due = await self.hub.run(self.store.expire_due, self.hub.watched())
                await self.hub.refresh(due)
            except Exception:  # noqa: BLE001 - a busy database: try again next time
                logger.exception("could not check expiring overrides")

    async def sdk_stream(self, request: Request) -> Response | EventStream:
        """Stream an environment's changes to an SDK (client key or active server key)."""
        key = request.path_params["key"]
        if not is_plausible_key(key):
            return JSONResponse({"detail": INVALID_KEY}, 403)
        environment_id = await self.hub.run(self.store.environment_for_key, key)
        if environment_id is None:
            return JSONResponse({"detail": INVALID_KEY}, 403)
        store = self.store
        hub = self.hub

        async def render_sdk(current: Revision, first: bool) -> bytes | None:
            # Keys are checked again at each change (cached for 2 s, one read per key): a
            # revoked server key's streams end with the next change.
            granted = store.cached_environment_for_key(key)
            if granted is False:
                granted = await hub.run(store.environment_for_key, key)
            if granted != environment_id:
                return None
            return _event("environment_updated", current.revision,
                          {"updated_at": current.updated_at}, retry=first)  # fmt: skip

        return await self._open(request, environment_id, f"key:{key}", render_sdk, None)

    async def page_stream(self, request: Request) -> Response | EventStream:
        """Stream an environment's changes to a dashboard page holding a valid token."""
        settings = self.settings
        token = request.query_params.get("token", "")
        grant = tokens.verify(settings.secret_key, token, settings.token_max_age)
        environment_id = request.path_params["environment_id"]
        if grant is None or grant.environment_id != environment_id:
            return JSONResponse({"detail": "This page's live-update token is invalid or has "
                                 "expired; reload the page."}, 403)  # fmt: skip
        if not await self.hub.run(self.store.may_watch, grant.user_id, environment_id):
            return JSONResponse({"detail": "You no longer have access to this environment."}, 403)

        async def render_page(current: Revision, first: bool) -> bytes | None:
            if not first and not await self.hub.run(
                self.store.may_watch, grant.user_id, environment_id
            ):
                return None  # the user lost their role on the project since connecting
            change = await self.hub.run(self.store.latest_change, environment_id,
                                        current.project_id)  # fmt: skip
            data = {"revision": current.revision, "updated_at": current.updated_at, **change}
            return _event("environment-changed", current.revision, data, retry=first)

        last = _last_event_id(request.scope)
        return await self._open(request, environment_id, f"user:{grant.user_id}", render_page,
                                grant.revision if last is None else last)  # fmt: skip

    async def _open(
        self,
        request: Request,
        environment_id: int,
        cap_key: str,
        render: Callable[[Revision, bool], Any],
        sent: int | None,
    ) -> Response | EventStream:
        hub = self.hub
        refusal = hub.refusal(cap_key)
        if refusal is not None:
            return JSONResponse({"detail": refusal.detail}, refusal.status,
                                headers={"Retry-After": "5"})  # fmt: skip
        subscriber = hub.subscribe(environment_id, cap_key)
        try:
            current = await hub.revision_of(environment_id)
        except BaseException:
            hub.unsubscribe(subscriber)
            raise
        if current is None:
            hub.unsubscribe(subscriber)
            return JSONResponse({"detail": INVALID_KEY}, 403)
        if sent is None:
            sent = _last_event_id(request.scope)
        return EventStream(hub, subscriber, render, self.settings.heartbeat, sent)

    async def health(self, request: Request) -> Response:
        """Report open streams and per-stream tasks."""
        return JSONResponse(
            {
                "connections": self.hub.connections,
                "tasks": len(self.hub.tasks),
                "environments": len(self.hub.channels),
                "source_connected": self.source.connected.is_set(),
            }
        )


def create_stream_app(settings: StreamSettings, source: Source | None = None) -> Starlette:
    """Create the stream server's ASGI app for ``settings``."""
    server = StreamServer(settings, source or settings.source())
    app = Starlette(
        routes=[
            Route("/sse/environments/{key}/stream", server.sdk_stream, methods=["GET"]),
            Route(
                "/sse/pages/environments/{environment_id:int}/stream",
                server.page_stream,
                methods=["GET"],
            ),
            Route("/sse/health", server.health, methods=["GET"]),
        ],
        lifespan=server.lifespan,
    )
    app.state.server = server
    return app
