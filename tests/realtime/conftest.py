"""A live app (WSGI, background thread) and a live stream server (uvicorn, its own thread).

Both serve one database: a temp-file SQLite (the stream server cannot see an in-memory one)
or the test process's PostgreSQL schema.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import uvicorn
from flask import Flask

from tests.conftest import dispose_engines, eventually, make_test_app
from tests.live import serve
from webapp.extensions import db
from webapp.realtime import StreamSettings, create_stream_app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class StreamServer:
    url: str
    app: Any

    def health(self) -> dict[str, Any]:
        return requests.get(f"{self.url}sse/health", timeout=5).json()


@contextmanager
def serve_streams(settings: StreamSettings, port: int | None = None) -> Iterator[StreamServer]:
    """Run the stream server for ``settings`` on ``port`` (or a free one) until the block ends."""
    app = create_stream_app(settings)
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=1, lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    eventually(lambda: server.started, 10, "the stream server did not start")
    live = StreamServer(f"http://127.0.0.1:{port}/", app)
    eventually(lambda: live.health()["source_connected"], 10, "no change source")
    try:
        yield live
    finally:
        app.state.server.end_streams_soon()
        server.should_exit = True
        thread.join(timeout=10)


def next_event(lines: Iterator[str]) -> dict[str, str]:
    """Read SSE lines up to the next event with data; comments and bare fields are skipped."""
    event: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in event:
                return event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
    raise AssertionError("the stream ended")


@dataclass
class LiveWorld:
    app: Flask
    api_url: str
    streams: StreamServer


def make_live_app(
    database: str, request: pytest.FixtureRequest, tmp_path: Any, **config: Any
) -> Flask:
    """An app on a database another thread or process can open too, with an empty schema."""
    if database == "sqlite":
        app = make_test_app(f"sqlite:///{tmp_path / 'live.sqlite'}", **config)
        with app.app_context():
            db.create_all()
        return app
    schema = request.getfixturevalue("postgres_schema")
    app = make_test_app(schema.url, **config)
    if schema.created:
        schema.empty(app)
    else:
        schema.create(app)
    return app


@pytest.fixture
def live_config() -> dict[str, Any]:
    """Extra app configuration for ``live_world`` (override in a module or parametrize)."""
    return {}


@pytest.fixture
def live_world(
    database: str, request: pytest.FixtureRequest, tmp_path: Any, live_config: dict[str, Any]
) -> Iterator[LiveWorld]:
    """The app served over HTTP and its stream server, on ``database``."""
    app = make_live_app(database, request, tmp_path, **live_config)
    settings = StreamSettings.from_config(app.config)
    try:
        with serve(app) as url, serve_streams(settings) as streams, app.app_context():
            yield LiveWorld(app, f"{url}/api/v1/", streams)
            db.session.remove()
    finally:
        dispose_engines(app)
