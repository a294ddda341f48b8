"""Erase an identity from its page (the right to be forgotten; editors and admins)."""

from __future__ import annotations

from flask import flash, g, make_response, redirect, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ...access import role_required
from ...forms import ConfirmForm
from ...htmx import hx_redirect, is_partial_request
from ...services.identities import erase
from . import bp
from .common import IDENTITY


@bp.post(IDENTITY + "/erase")
@role_required("editor")
def erase_identity(environment_id: int, identity_id: int) -> Response:
    """Erase the identity and redact it from the audit log, then go to the Users page."""
    if not ConfirmForm().validate_on_submit():
        return make_response("Reload the page and try again.", 400)
    token = erase.erase_identity(current_user, g.project.id, environment_id, identity_id)
    flash(f"Identity erased. The audit log now calls it {token}.", "success")
    target = url_for("users.index", environment_id=environment_id)
    return hx_redirect(target) if is_partial_request() else redirect(target)
