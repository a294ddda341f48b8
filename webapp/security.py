"""Security headers on every response.

The Content-Security-Policy allows scripts and styles only from this origin: no inline
scripts or event handlers (htmx runs with allowEval off and no injected indicator styles),
no framing, no plugins. Pages therefore keep all behaviour in static/js.
"""

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _with_stream_origin(config: Any) -> str:
    """Allow pages to connect to the stream server's origin (config STREAM_URL)."""
    parts = urlsplit(config.get("STREAM_URL") or "")
    if not parts.scheme or not parts.netloc:
        return CONTENT_SECURITY_POLICY  # a path: the stream server is behind this origin
    origin = f"{parts.scheme}://{parts.netloc}"
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {origin}")


def init_app(app: Flask) -> None:
    """Add the security headers to every response (configurable CSP)."""
    app.config.setdefault("CONTENT_SECURITY_POLICY", _with_stream_origin(app.config))
    policy = app.config["CONTENT_SECURITY_POLICY"]

    pairs = [*HEADERS.items(), *([("Content-Security-Policy", policy)] if policy else [])]

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        # One pass over the present names instead of a setdefault (a scan) per header: this
        # runs on every SDK request too.
        headers = response.headers
        present = {name.lower() for name in headers.keys()}  # noqa: SIM118 (Headers)
        for name, value in pairs:
            if name.lower() not in present:
                headers.add(name, value)
        return response
