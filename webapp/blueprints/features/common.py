"""Helpers shared by the features views."""

from __future__ import annotations

from typing import Any

from flask import g, make_response, render_template
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms import FieldList

from ...services import accounts
from ...services.errors import ValidationError


def can_edit() -> bool:
    """Tell whether the current user may change this project's features."""
    return accounts.has_role(current_user, g.project.id, "editor")


def render(template: str, status: int = 200, **context: Any) -> Response:
    """Render a template with ``status`` and ``Vary: HX-Request``."""
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def invalid(form: Any, exc: ValidationError) -> None:
    """Put a service's validation error next to its field (or on top of the form)."""
    target = getattr(form, exc.field, None) if exc.field else None
    if target is not None and not isinstance(target, FieldList):
        target.errors = [*target.errors, str(exc)]
    else:
        form.form_errors.append(str(exc))
