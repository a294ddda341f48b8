"""Identity override actions on a flag row: edit, toggle, set a value, choose, remove, undo."""

from __future__ import annotations

from typing import Any

from flask import flash, make_response, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ...access import role_required
from ...clock import utcnow
from ...forms import ConfirmForm
from ...forms.identities import OptionForm, OverrideValueForm, ToggleOverrideForm
from ...forms.versions import VersionedDeleteForm
from ...htmx import is_partial_request
from ...services import values
from ...services.errors import Conflict, ValidationError
from ...services.identities import Feature, Identity, identity_overrides, identity_page
from ...services.identities.identity_overrides import OverrideChange
from . import bp
from .common import (
    FLAG,
    IDENTITY,
    as_text,
    first_error,
    flag_row,
    load_feature,
    load_identity,
    render,
    to_detail,
    trigger,
)


def _override_done(identity: Identity, change: OverrideChange) -> Response:
    """Answer an override change: its row, out-of-band rows it changed, an undo toast."""
    if not is_partial_request():
        return to_detail(identity)
    rows = identity_page.flag_rows(identity, utcnow(), only={change.feature.name, *change.changed})
    undo = url_for(
        "identities.undo",
        environment_id=identity.environment_id,
        identity_id=identity.id,
        event_id=change.event_id,
    )
    headers = trigger(override_changed={"message": change.message, "undoUrl": undo})
    return render(
        "identities/_flag_rows_changed.html",
        headers=headers,
        rows=rows,
        feature_id=change.feature.id,
        identity=identity,
        can_edit=True,
    )


def _expiry(form: Any) -> Any:
    return identity_overrides.expiry_from_choice(form.expires.data, form.expires_at.data, utcnow())


def _changed(identity: Identity, feature: Feature, exc: Conflict) -> Response:
    """Answer a refused stale change: the saved row with the message, 409 (htmx swaps it)."""
    if not is_partial_request():
        flash(str(exc), "error")
        return to_detail(identity)
    return flag_row(identity, feature, 409, error=str(exc))


@bp.get(FLAG + "/edit")
@role_required("qa")
def edit_override(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Render the override value editor in place of the row."""
    identity = load_identity(environment_id, identity_id, edit=True)
    row = identity_page.flag_row(identity, load_feature(feature_id), utcnow())
    form = OverrideValueForm(
        formdata=None,
        value=as_text(row.value),
        value_type=values.editor_kind(row.value),
        version=row.version,
    )
    return render("identities/_override_form.html", row=row, identity=identity, form=form)


@bp.post(FLAG + "/toggle")
@role_required("qa")
def toggle_override(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Flip the flag for this identity (creating an override when there is none)."""
    identity = load_identity(environment_id, identity_id, edit=True)
    feature = load_feature(feature_id)
    form = ToggleOverrideForm()
    if not form.validate_on_submit():
        return flag_row(identity, feature, 422, error=first_error(form))
    try:
        change = identity_overrides.toggle_override(
            current_user, identity, feature, utcnow(), _expiry(form), version=form.version.data
        )
    except Conflict as exc:
        return _changed(identity, feature, exc)
    except ValidationError as exc:
        return flag_row(identity, feature, 422, error=str(exc))
    return _override_done(identity, change)


@bp.put(FLAG + "/override")
@role_required("qa")
def update_override(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Set the override's value (typed; JSON is validated and stored as text)."""
    identity = load_identity(environment_id, identity_id, edit=True)
    feature = load_feature(feature_id)
    form = OverrideValueForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form), field="value")
        value = values.parse_value(form.value_type.data, form.value.data, values.FLAG)
        change = identity_overrides.set_override_value(
            current_user, identity, feature, value, utcnow(), _expiry(form),
            version=form.version.data,
        )  # fmt: skip
    except Conflict as exc:
        return _changed(identity, feature, exc)
    except ValidationError as exc:
        row = identity_page.flag_row(identity, feature, utcnow())
        return render(
            "identities/_override_form.html",
            422,
            row=row,
            identity=identity,
            form=form,
            error=str(exc),
        )
    return _override_done(identity, change)


@bp.post(FLAG + "/option")
@role_required("qa")
def choose_option(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Fix one multivariate option for this identity."""
    identity = load_identity(environment_id, identity_id, edit=True)
    feature = load_feature(feature_id)
    form = OptionForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form), field="option_id")
        change = identity_overrides.choose_option(
            current_user, identity, feature, form.option_id.data, utcnow(), _expiry(form),
            version=form.version.data,
        )  # fmt: skip
    except Conflict as exc:
        return _changed(identity, feature, exc)
    except ValidationError as exc:
        return flag_row(identity, feature, 422, error=str(exc))
    return _override_done(identity, change)


@bp.delete(FLAG + "/override")
@role_required("qa")
def remove_override(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Remove the override: the identity inherits the flag again."""
    identity = load_identity(environment_id, identity_id, edit=True)
    feature = load_feature(feature_id)
    form = VersionedDeleteForm.from_request()
    if not form.validate_on_submit():
        return flag_row(identity, feature, 422, error=first_error(form))
    try:
        change = identity_overrides.remove_override(
            current_user, identity, feature, utcnow(), version=form.version.data
        )
    except Conflict as exc:
        return _changed(identity, feature, exc)
    return _override_done(identity, change)


@bp.post(IDENTITY + "/undo/<id:event_id>")
@role_required("qa")
def undo(environment_id: int, identity_id: int, event_id: int) -> Response:
    """Restore the override state from before an audited change."""
    identity = load_identity(environment_id, identity_id, edit=True)
    if not ConfirmForm().validate_on_submit():
        return make_response("The request was incomplete.", 422)
    change = identity_overrides.undo_change(current_user, identity, event_id, utcnow())
    if not is_partial_request():
        return to_detail(identity)
    message = {"level": "info", "message": change.message}
    headers = trigger(flags_changed={"changed": change.changed}, show_message=message)
    return make_response("", 200, headers)
