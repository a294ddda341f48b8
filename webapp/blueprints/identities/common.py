"""URL rules and helpers shared by the identities views."""

from __future__ import annotations

import json
from typing import Any

from flask import g, make_response, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ...clock import utcnow
from ...forms.base import as_text as as_text  # re-exported for the identity views
from ...htmx import hx_redirect, is_partial_request
from ...services.features import catalog
from ...services.identities import Feature, Identity, editing_rights, identity_page

IDENTITY = "/environments/<id:environment_id>/identities/<id:identity_id>"
FLAG = IDENTITY + "/flags/<id:feature_id>"
TRAIT = IDENTITY + "/traits/<path:key>"
MINE = "/environments/<id:environment_id>/my-identities"


def load_identity(environment_id: int, identity_id: int, *, edit: bool = False) -> Identity:
    """Find the identity in the URL's environment; for changes, check the user may edit."""
    identity = identity_page.get_identity(environment_id, identity_id)
    if edit:
        editing_rights.ensure_can_edit(current_user, identity)
    return identity


def load_feature(feature_id: int) -> Feature:
    """Find a feature of the current project."""
    return catalog.get_feature(g.project.id, feature_id)


def render(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> Response:
    """Render a template with ``status`` and extra response headers."""
    response = make_response(render_template(template, **context), status)
    response.headers.update(headers or {})
    return response


def trigger(**events: Any) -> dict[str, str]:
    """Build an ``HX-Trigger`` header; ``flags_changed`` becomes the ``flags-changed`` event."""
    return {"HX-Trigger": json.dumps({name.replace("_", "-"): v for name, v in events.items()})}


def to_detail(identity: Identity) -> Response:
    """Send the browser (or htmx) to the identity's page."""
    target = url_for(
        "identities.detail", environment_id=identity.environment_id, identity_id=identity.id
    )
    return hx_redirect(target) if is_partial_request() else redirect(target)


def first_error(form: Any) -> str:
    """Return a form's first validation error."""
    return next((e for errors in form.errors.values() for e in errors), "Invalid input.")


def flag_row(identity: Identity, feature: Feature, status: int = 200, **extra: Any) -> Response:
    """Render one row of the flags table."""
    row = identity_page.flag_row(identity, feature, utcnow())
    can_edit = editing_rights.can_edit_identity(current_user, identity)
    return render(
        "identities/_flag_row.html", status, row=row, identity=identity, can_edit=can_edit, **extra
    )
