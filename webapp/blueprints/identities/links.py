"""The QA flow: "This is me" links, My identities, and resetting their overrides."""

from __future__ import annotations

from flask import g, make_response, redirect, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ...access import role_required
from ...forms import ConfirmForm
from ...forms.identities import LinkForm
from ...htmx import is_partial_request, render_page_or_partial
from ...services import humanize
from ...services.errors import ValidationError
from ...services.identities import editing_rights, identity_overrides
from . import bp
from .common import IDENTITY, MINE, first_error, load_identity, render, to_detail, trigger


@bp.post(IDENTITY + "/link")
@role_required("qa")
def link(environment_id: int, identity_id: int) -> Response:
    """Link the identity to an account ("This is me"; QA users prove it)."""
    identity = load_identity(environment_id, identity_id)
    form = LinkForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form), field="proof")
        editing_rights.link_identity(
            current_user, identity, proof=form.proof.data, email=form.email.data
        )
    except ValidationError as exc:
        return render(
            "identities/_link_form.html",
            422,
            identity=identity,
            link_form=form,
            error=str(exc),
            offer=editing_rights.link_offer(current_user, identity),
        )
    return to_detail(identity)


@bp.delete(IDENTITY + "/link/<id:user_id>")
@role_required("qa")
def unlink(environment_id: int, identity_id: int, user_id: int) -> Response:
    """Remove a "This is me" link."""
    identity = load_identity(environment_id, identity_id)
    if ConfirmForm().validate_on_submit():
        editing_rights.unlink_identity(current_user, identity, user_id)
    return to_detail(identity)


@bp.get(MINE)
@role_required("viewer")
def mine(environment_id: int) -> Response:
    """List the identities linked to the current user in this environment."""
    session["environment_id"] = environment_id
    return render_page_or_partial(
        "identities/mine.html", "identities/_mine.html", **_mine_context(environment_id)
    )


def _mine_context(environment_id: int, message: str | None = None) -> dict[str, object]:
    """The My identities list, which of them are read-only, and the linking rule."""
    return {
        "identities": editing_rights.my_identities(current_user, environment_id),
        "read_only": editing_rights.read_only_links(current_user, environment_id),
        "rule": editing_rights.link_rule(current_user, g.environment),
        "environment": g.environment,
        "message": message,
    }


@bp.post(MINE + "/reset-overrides")
@role_required("qa")
def reset_mine(environment_id: int) -> Response:
    """Remove every override on the user's linked identities here, in one click."""
    if not ConfirmForm().validate_on_submit():
        return make_response("The request was incomplete.", 422)
    count = identity_overrides.reset_my_overrides(current_user, environment_id, g.project.id)
    message = f"Removed {humanize.plural(count, 'override')} from your identities."
    if not is_partial_request():
        return redirect(url_for("identities.mine", environment_id=environment_id))
    headers = trigger(
        flags_changed={"changed": []}, show_message={"level": "info", "message": message}
    )
    return render(
        "identities/_mine.html", headers=headers, **_mine_context(environment_id, message)
    )
