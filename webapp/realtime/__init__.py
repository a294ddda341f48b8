"""Real-time updates: the async stream server beside the WSGI app (see server.py).

Production: ``uvicorn --factory webapp.realtime:create_from_environment`` reads the same
settings as the app (``instance/config.py``, environment variables); ``flask run-streams``
does the same for development, and ``make run`` starts it next to the dashboard.
"""

from __future__ import annotations

from starlette.applications import Starlette

from .server import StreamSettings, create_stream_app

__all__ = ["StreamSettings", "create_from_environment", "create_stream_app"]


def create_from_environment() -> Starlette:
    """Create the stream server with the app's configuration (for uvicorn ``--factory``)."""
    from .. import create_app

    return create_stream_app(StreamSettings.from_config(create_app().config))
