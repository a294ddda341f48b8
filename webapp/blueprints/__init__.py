"""Blueprints: thin views over the services.

``create_app`` registers each blueprint explicitly; it is the one place to read what the app
serves. The key-authenticated APIs (``sdk_api``, ``ofrep``) are declared in ``api_paths``.
"""

from __future__ import annotations

from flask import abort, request


def refuse_nul_in_url() -> None:
    """Answer 400 to a NUL character in the path or query string, before any view runs.

    No path segment, search or SDK argument needs one, and PostgreSQL cannot compare text
    containing NUL (every query given one would fail with a server error).
    """
    # Read raw, so no request pays for parsing its query string here: a key or value
    # decodes to NUL exactly when the raw string holds "%00" (or a NUL itself).
    environ = request.environ
    query = environ.get("QUERY_STRING", "")
    if "\x00" in environ.get("PATH_INFO", "") or "%00" in query or "\x00" in query:
        abort(400, description="The address must not contain NUL characters (%00).")
