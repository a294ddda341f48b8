"""Login throttling with Flask-Limiter.

Only ``POST /login`` is limited, and only failed attempts count (the view answers them with
422), so people who type their password right are never slowed down:

- ``LOGIN_RATE_LIMIT_PER_EMAIL`` (10 per minute) per client IP and email: one address cannot
  be guessed at faster than that from one machine;
- ``LOGIN_RATE_LIMIT_PER_IP`` (30 per minute) per client IP: spraying many addresses from one
  machine is capped too, yet an office behind one NAT address has room for typos.

There is deliberately no limit per email alone: anyone who knows an address could then lock
its owner out. While a limit is exceeded every attempt, even with the right password, gets
the login page with an inline message and 429. The SDK API and OFREP are exempt (they
authenticate by key, and SDKs poll), and no default or application-wide limits exist, so
pages and the API are never throttled.

Counters live in ``RATELIMIT_STORAGE_URI``: ``memory://`` (one process) by default, or
Redis (``FLAGPOST_RATELIMIT_STORAGE_URI=redis://host:6379/0``) so that several workers and
app servers share them. Like the other extensions this is one object per process: each
``create_app`` gives it a fresh store from that app's configuration.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from .api_paths import API_BLUEPRINTS, keep_hooks_off_apis

F = TypeVar("F", bound=Callable[..., Any])

limiter = Limiter(key_func=get_remote_address)


def init_app(app: Flask) -> None:
    """Bind the limiter (after the blueprints are registered) and trust configured proxies."""
    proxies = int(app.config.get("TRUSTED_PROXY_COUNT") or 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    limiter.init_app(app)
    for name in API_BLUEPRINTS:
        if name in app.blueprints:
            limiter.exempt(cast(Blueprint, app.blueprints[name]))
    _skip_hooks_for_apis(app)


def _skip_hooks_for_apis(app: Flask) -> None:
    """Keep the limiter's per-request hooks off the SDK API and OFREP.

    ``init_app`` hooks every request: a before_request check that only applies default and
    blueprint limits (there are none; ``login_throttle`` checks in the view itself) and an
    after_request/teardown pair that counts failures. Exempt or not, an SDK request paid
    about 15 % of its time for them, so the check is dropped and the other two run for
    dashboard requests only.
    """
    owned = [hook for hook in app.before_request_funcs.get(None, []) if _is_limiter_hook(hook)]
    for hook in owned:
        app.before_request_funcs[None].remove(hook)
    keep_hooks_off_apis(app, _is_limiter_hook)


def _is_limiter_hook(hook: Callable[..., Any]) -> bool:
    if isinstance(hook, partial):  # after_request: partial(Limiter.__inject_headers, limiter)
        return bool(hook.args) and hook.args[0] is limiter
    return getattr(hook, "__self__", None) is limiter  # bound methods of the limiter


def _client_and_email() -> str:
    """Key a login attempt by client IP and (hashed, normalised) email."""
    email = (request.form.get("email") or "").strip().lower()
    digest = hashlib.sha256(email.encode("utf-8", "replace")).hexdigest()[:32]
    return f"{get_remote_address()}/{digest}"


def _per_email_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT_PER_EMAIL"])


def _per_ip_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT_PER_IP"])


def _failed(response: Response) -> bool:
    return response.status_code == 422


def retry_after() -> int:
    """Seconds until the breached login limit lets an attempt through again (at least 1)."""
    breached = limiter.current_limit
    if breached is None:
        return 60
    return max(1, math.ceil(breached.reset_at - time.time()))


def login_throttle(view: F) -> F:
    """Limit failed logins per IP and email and per IP; a breach raises RateLimitExceeded."""
    per_email = limiter.limit(
        _per_email_limit, key_func=_client_and_email, deduct_when=_failed, scope="login-email"
    )
    per_ip = limiter.limit(_per_ip_limit, deduct_when=_failed, scope="login-ip")
    return cast(F, per_ip(per_email(view)))
