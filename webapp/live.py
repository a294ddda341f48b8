"""Live pages: the stream URL (with its signed token) for the pages that stay true.

The Identity, Users, Segments and Features pages subscribe to their environment's page
stream (webapp/realtime/) with htmx's SSE extension; static/js/live.js refreshes the parts
marked ``data-live-region`` and shows who changed what, never overwriting an open editor.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Flask, current_app, g, request
from flask_login import current_user

from .realtime import tokens

LIVE_ENDPOINTS = frozenset(
    {
        "identities.detail",
        "users.index",
        "segments.index",
        "segments.detail",
        "segments.edit",
        "features.index",
        "features.detail",
    }
)


def init_app(app: Flask) -> None:
    """Register the context processor that gives live pages their stream URL."""
    app.context_processor(_live_context)


def stream_url(user_id: int, environment_id: int, revision: int) -> str:
    """Return the page stream URL for a user watching an environment seen at ``revision``."""
    config = current_app.config
    token = tokens.sign(config["SECRET_KEY"], user_id, environment_id, revision)
    base = str(config["STREAM_URL"]).rstrip("/")
    return f"{base}/sse/pages/environments/{environment_id}/stream?token={quote(token)}"


def _live_context() -> dict[str, Any]:
    environment = getattr(g, "environment", None)
    if (
        request.endpoint not in LIVE_ENDPOINTS
        or environment is None
        or not current_user.is_authenticated
    ):
        return {"live_stream_url": None}
    return {"live_stream_url": stream_url(current_user.id, environment.id, environment.revision)}
