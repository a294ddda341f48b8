"""The key-authenticated APIs (SDK API and OFREP), and keeping dashboard hooks off them.

Extensions hook every request: CSRF protection, the login limiter, Flask-Login's remember
cookie. None of them applies to a request authenticated by environment key, yet each cost
the identify hot path real time (bench/sdk_api.py), so ``keep_hooks_off_apis`` wraps them
to run for dashboard requests only (tests/api/test_hot_path_hooks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, request

API_PREFIXES = ("/api/", "/ofrep/")
API_BLUEPRINTS = ("sdk_api", "ofrep")  # the blueprints serving those paths

Hook = Callable[..., Any]


def is_api_request() -> bool:
    """Tell whether the current request is for the SDK API or OFREP."""
    return request.path.startswith(API_PREFIXES)


def dashboard_only(hook: Hook) -> Hook:
    """Wrap a request hook so that API requests skip it.

    The wrapper hands back what it was given: None before a request, the response after
    it, the exception at teardown.
    """

    @wraps(hook)
    def guarded(*args: Any) -> Any:
        if is_api_request():
            return args[0] if args else None
        return hook(*args)

    return guarded


def keep_hooks_off_apis(app: Flask, picks: Callable[[Hook], bool]) -> None:
    """Wrap the application-wide request hooks that ``picks`` chooses with ``dashboard_only``."""
    for registry in (app.before_request_funcs, app.after_request_funcs,
                     app.teardown_request_funcs):  # fmt: skip
        _wrap_picked(registry, picks)


def _wrap_picked(registry: dict[Any, list[Any]], picks: Callable[[Hook], bool]) -> None:
    registry[None] = [
        dashboard_only(hook) if picks(hook) else hook for hook in registry.get(None, [])
    ]
