"""Serve a Flask app from a background thread, for tests that need a real HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server

# How often serve_forever looks for a shutdown request: the time a shutdown waits, at most.
POLL_SECONDS = 0.02


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve the WSGI ``app`` on a free loopback port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Swappable:
    """A WSGI app that hands each request to the app of the current test.

    One server (and port) serves a whole session; each test still gets a fresh app, with
    its own database, caches and login counters.
    """

    def __init__(self) -> None:
        self.app: Callable[..., Iterable[bytes]] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        app = self.app
        if app is None:  # between tests: a request left over from the last page
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no test is running"]
        return app(environ, start_response)


def started_once(stack: Any, start: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Return ``get(key)``: the context ``start(key)`` entered on ``stack`` on first use and
    shared afterwards (one seeded live server per database, whatever order tests run in)."""
    started: dict[Any, Any] = {}

    def get(key: Any) -> Any:
        if key not in started:
            started[key] = stack.enter_context(start(key))
        return started[key]

    return get
