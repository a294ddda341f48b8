"""Blueprints: thin views over the services.

Every module in this package that defines a module-level ``bp`` is registered, in name
order, so a new area plugs in by adding its module. A module that authenticates by key
instead of session (the SDK APIs) sets ``CSRF_EXEMPT = True``.
"""

from __future__ import annotations

import importlib
import pkgutil

from flask import Flask

from ..extensions import csrf


def register_blueprints(app: Flask) -> None:
    """Import every blueprint module of this package and register its ``bp``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        blueprint = getattr(module, "bp", None)
        if blueprint is None:
            continue
        app.register_blueprint(blueprint)
        if getattr(module, "CSRF_EXEMPT", False):
            csrf.exempt(blueprint)
