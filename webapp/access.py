"""Login and role checks shared by every dashboard blueprint."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, redirect, request, url_for
from flask_login import current_user, login_required

from .extensions import db, login_manager
from .htmx import hx_redirect
from .models import Environment, Project, User
from .services import accounts

F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    """Configure Flask-Login for the dashboard."""
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)


def _load_user(login_id: str) -> User | None:
    """Load the session's user: active, and holding the session version it logged in with.

    Disabling an account or changing its password raises its version, so every session
    (and remember cookie) opened before is logged out on its next request.
    """
    user_id, _, version = login_id.partition(".")
    if not (user_id.isdigit() and version.isdigit()) or len(login_id) > 40:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def _unauthorized() -> Response:
    """Send anonymous users to the login page; htmx gets a 401 it can act on."""
    target = url_for("auth.login", next=safe_next(request.full_path))
    if request.headers.get("HX-Request") == "true":
        return hx_redirect(target, status=401)
    return cast(Response, redirect(target))


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a local path, else None (no open redirects)."""
    if not target:
        return None
    target = target.rstrip("?") or "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    return target


def resolve_scope(view_args: dict[str, Any]) -> tuple[Project, Environment | None]:
    """Find the project (and environment) a view works on from its URL arguments."""
    environment = None
    if "environment_id" in view_args:
        environment = db.get_or_404(Environment, view_args["environment_id"])
        project = environment.project
    elif "project_id" in view_args:
        project = db.get_or_404(Project, view_args["project_id"])
    else:
        raise LookupError("role_required needs an environment_id or project_id URL argument")
    return project, environment


def role_required(minimum: str) -> Callable[[F], F]:
    """Require a logged-in user holding at least ``minimum`` on the URL's project.

    Sets ``g.project`` and ``g.environment`` for the view. Users without any role on the
    project get 404, so project ids cannot be probed; a weaker role gets 403.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            project, environment = resolve_scope(kwargs)
            if accounts.role_for(current_user, project.id) is None:
                abort(404)
            if not accounts.has_role(current_user, project.id, minimum):
                abort(403)
            g.project, g.environment = project, environment
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator
