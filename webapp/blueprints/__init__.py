"""Blueprints: thin views over the services.

Every module in this package that defines a module-level ``bp`` is registered, in name
order, so a new area plugs in by adding its module. A module that authenticates by key
instead of session (the SDK APIs) sets ``CSRF_EXEMPT = True``.
"""

from __future__ import annotations

import importlib
import pkgutil

from flask import Flask, abort, request

from ..extensions import csrf


def register_blueprints(app: Flask) -> None:
    """Import every blueprint module of this package and register its ``bp``."""
    app.before_request(refuse_nul_in_url)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        blueprint = getattr(module, "bp", None)
        if blueprint is None:
            continue
        app.register_blueprint(blueprint)
        if getattr(module, "CSRF_EXEMPT", False):
            csrf.exempt(blueprint)


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
