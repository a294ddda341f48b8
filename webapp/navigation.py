"""Navigation and the project/environment switcher, available to every template."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, session
from flask_login import current_user

from .services import accounts, people

# The navigation's pages; each endpoint takes ``environment_id``.
NAV_PAGES = (
    ("Users", "users.index"),
    ("Segments", "segments.index"),
    ("Features", "features.index"),
    ("Audit log", "audit.index"),
    ("My identities", "identities.mine"),
)


def init_app(app: Flask) -> None:
    """Register the navigation context processor."""
    app.context_processor(_navigation_context)


def current_environment_id() -> int | None:
    """Return the environment the user is looking at: the URL's, else the last chosen."""
    environment = getattr(g, "environment", None)
    if environment is not None:
        return int(environment.id)
    chosen = session.get("environment_id")
    return chosen if isinstance(chosen, int) else None


def _navigation_context() -> dict[str, Any]:
    if not current_user.is_authenticated:
        return {"nav_pages": [], "switcher": [], "current_environment": None, "org_admin": False}
    projects = accounts.accessible_projects(current_user)
    switcher = [(project, list(project.environments)) for project in projects]
    environment_id = current_environment_id()
    environments = {env.id: env for _, envs in switcher for env in envs}
    current = environments.get(environment_id) if environment_id is not None else None
    if current is None and environments:
        current = next(iter(environments.values()))
    role = accounts.role_for(current_user, current.project_id) if current is not None else None
    return {
        "nav_pages": NAV_PAGES,
        "switcher": switcher,
        "current_environment": current,
        "current_role": role,
        "org_admin": people.is_org_admin(current_user),
    }
