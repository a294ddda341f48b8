"""The Identity page (flags, why, traits, segments, history) and the QA flow."""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    session,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response

from ..access import role_required
from ..forms import ConfirmForm
from ..forms.identities import (
    LinkForm,
    OptionForm,
    OverrideValueForm,
    ToggleOverrideForm,
    TraitEditForm,
    TraitForm,
)
from ..htmx import hx_redirect, is_partial_request, render_page_or_partial
from ..models import Feature, Identity, utcnow
from ..services import identities, overrides, qa, traits
from ..services.errors import ValidationError
from ..services.overrides import OverrideChange
from ..services.traits import TraitChange

bp = Blueprint("identities", __name__)
IDENTITY = "/environments/<int:environment_id>/identities/<int:identity_id>"
FLAG = IDENTITY + "/flags/<int:feature_id>"
TRAIT = IDENTITY + "/traits/<path:key>"
MINE = "/environments/<int:environment_id>/my-identities"


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    return {
        "has_segment_page": _has_segment_page(),
        "describe_override": overrides.describe_state,
        "inf": float("inf"),
    }


def _has_segment_page() -> bool:
    # The Segments page is built separately; link to it only once it exists with the
    # arguments this page passes (a mismatch would break url_for, so it is checked).
    wanted = {"environment_id", "segment_id"}
    return any(
        rule.endpoint == "segments.detail" and set(rule.arguments) == wanted
        for rule in current_app.url_map.iter_rules()
    )


# ---- helpers: loading, permission, rendering ---------------------------------------------


def _load(environment_id: int, identity_id: int, *, edit: bool = False) -> Identity:
    """Find the identity in the URL's environment; for changes, check the user may edit."""
    identity = identities.get_identity(environment_id, identity_id)
    if edit:
        qa.ensure_can_edit(current_user, identity)
    return identity


def _feature(feature_id: int) -> Feature:
    return identities.get_feature(g.project.id, feature_id)


def _render(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> Response:
    response = make_response(render_template(template, **context), status)
    response.headers.update(headers or {})
    return response


def _trigger(**events: Any) -> dict[str, str]:
    return {"HX-Trigger": json.dumps({name.replace("_", "-"): v for name, v in events.items()})}


def _to_detail(identity: Identity) -> Response:
    target = url_for(
        "identities.detail", environment_id=identity.environment_id, identity_id=identity.id
    )
    return hx_redirect(target) if is_partial_request() else redirect(target)


def _first_error(form: Any) -> str:
    return next((e for errors in form.errors.values() for e in errors), "Invalid input.")


def _flag_row(identity: Identity, feature: Feature, status: int = 200, **extra: Any) -> Response:
    row = identities.flag_row(identity, feature, utcnow())
    can_edit = qa.can_edit_identity(current_user, identity)
    return _render(
        "identities/_flag_row.html", status, row=row, identity=identity, can_edit=can_edit, **extra
    )


def _override_done(identity: Identity, change: OverrideChange) -> Response:
    """Answer an override change: its row, out-of-band rows it changed, an undo toast."""
    if not is_partial_request():
        return _to_detail(identity)
    rows = identities.flag_rows(identity, utcnow(), only={change.feature.name, *change.changed})
    undo = url_for(
        "identities.undo",
        environment_id=identity.environment_id,
        identity_id=identity.id,
        event_id=change.event_id,
    )
    headers = _trigger(override_changed={"message": change.message, "undoUrl": undo})
    return _render(
        "identities/_flag_rows_changed.html",
        headers=headers,
        rows=rows,
        feature_id=change.feature.id,
        identity=identity,
        can_edit=True,
    )


def _expiry(form: Any) -> Any:
    return overrides.expiry_from_choice(form.expires.data, form.expires_at.data, utcnow())


def _trait_done(identity: Identity, change: TraitChange, template: str, **ctx: Any) -> Response:
    """Answer a trait change: the partial, the impact note, and ``flags-changed``."""
    if not is_partial_request():
        return _to_detail(identity)
    headers = _trigger(flags_changed={"changed": change.changed, "trait": change.key})
    return _render(
        template, headers=headers, identity=identity, can_edit=True, change=change, **ctx
    )


# ---- the page and its read-only partials -----------------------------------------------


@bp.get(IDENTITY)
@role_required("viewer")
def detail(environment_id: int, identity_id: int) -> Response:
    """Show an identity: header, flags with sources, traits, segments and history."""
    session["environment_id"] = environment_id
    identity = _load(environment_id, identity_id)
    view = identities.load_page(identity, current_user, utcnow())
    return render_page_or_partial(
        "identities/detail.html",
        "identities/_identity.html",
        view=view,
        identity=identity,
        can_edit=view.can_edit,
        trait_form=TraitForm(formdata=None),
        expiry_form=ToggleOverrideForm(formdata=None),
        link_form=LinkForm(formdata=None),
    )


@bp.get(IDENTITY + "/flags")
@role_required("viewer")
def flags(environment_id: int, identity_id: int) -> Response:
    """Render the flags table (refreshed on ``flags-changed``)."""
    identity = _load(environment_id, identity_id)
    rows = identities.flag_rows(identity, utcnow())
    can_edit = qa.can_edit_identity(current_user, identity)
    return _render("identities/_flags_table.html", rows=rows, identity=identity, can_edit=can_edit)


@bp.get(FLAG)
@role_required("viewer")
def flag(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Render one flag row (also the Cancel of the override editor)."""
    return _flag_row(_load(environment_id, identity_id), _feature(feature_id))


@bp.get(FLAG + "/why")
@role_required("viewer")
def why(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Render the why panel: segment traces and counterfactuals for one flag."""
    identity = _load(environment_id, identity_id)
    panel = identities.why_panel(identity, _feature(feature_id), utcnow())
    return _render("identities/_why.html", panel=panel, identity=identity)


@bp.get(IDENTITY + "/segments")
@role_required("viewer")
def segments(environment_id: int, identity_id: int) -> Response:
    """Render the list of segments the identity is in."""
    identity = _load(environment_id, identity_id)
    links = identities.segment_links(identity, utcnow())
    return _render("identities/_segments.html", segments=links, identity=identity)


@bp.get(IDENTITY + "/history")
@role_required("viewer")
def history(environment_id: int, identity_id: int) -> Response:
    """Render this identity's audit events, newest first."""
    identity = _load(environment_id, identity_id)
    return _render(
        "identities/_history.html", events=identities.history(identity.id), identity=identity
    )


# ---- overrides -----------------------------------------------------------------------------


@bp.get(FLAG + "/edit")
@role_required("qa")
def edit_override(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Render the override value editor in place of the row."""
    identity = _load(environment_id, identity_id, edit=True)
    row = identities.flag_row(identity, _feature(feature_id), utcnow())
    form = OverrideValueForm(formdata=None, value=_as_text(row.value), value_type=_kind(row.value))
    return _render("identities/_override_form.html", row=row, identity=identity, form=form)


@bp.post(FLAG + "/toggle")
@role_required("qa")
def toggle_override(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Flip the flag for this identity (creating an override when there is none)."""
    identity, feature = _load(environment_id, identity_id, edit=True), _feature(feature_id)
    form = ToggleOverrideForm()
    if not form.validate_on_submit():
        return _flag_row(identity, feature, 422, error=_first_error(form))
    try:
        change = overrides.toggle_override(current_user, identity, feature, utcnow(), _expiry(form))
    except ValidationError as exc:
        return _flag_row(identity, feature, 422, error=str(exc))
    return _override_done(identity, change)


@bp.put(FLAG + "/override")
@role_required("qa")
def update_override(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Set the override's value (typed; JSON is validated and stored as text)."""
    identity, feature = _load(environment_id, identity_id, edit=True), _feature(feature_id)
    form = OverrideValueForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(_first_error(form), field="value")
        value = overrides.parse_value(form.value.data or "", form.value_type.data)
        change = overrides.set_override_value(
            current_user, identity, feature, value, utcnow(), _expiry(form)
        )
    except ValidationError as exc:
        row = identities.flag_row(identity, feature, utcnow())
        return _render(
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
    identity, feature = _load(environment_id, identity_id, edit=True), _feature(feature_id)
    form = OptionForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(_first_error(form), field="option_id")
        change = overrides.choose_option(
            current_user, identity, feature, form.option_id.data, utcnow(), _expiry(form)
        )
    except ValidationError as exc:
        return _flag_row(identity, feature, 422, error=str(exc))
    return _override_done(identity, change)


@bp.delete(FLAG + "/override")
@role_required("qa")
def remove_override(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Remove the override: the identity inherits the flag again."""
    identity, feature = _load(environment_id, identity_id, edit=True), _feature(feature_id)
    if not ConfirmForm().validate_on_submit():
        return _flag_row(identity, feature, 422, error="The request was incomplete.")
    change = overrides.remove_override(current_user, identity, feature, utcnow())
    return _override_done(identity, change)


@bp.post(IDENTITY + "/undo/<int:event_id>")
@role_required("qa")
def undo(environment_id: int, identity_id: int, event_id: int) -> Response:
    """Restore the override state from before an audited change."""
    identity = _load(environment_id, identity_id, edit=True)
    if not ConfirmForm().validate_on_submit():
        return make_response("The request was incomplete.", 422)
    change = overrides.undo_change(current_user, identity, event_id, utcnow())
    if not is_partial_request():
        return _to_detail(identity)
    message = {"level": "info", "message": change.message}
    headers = _trigger(flags_changed={"changed": change.changed}, show_message=message)
    return make_response("", 200, headers)


# ---- traits --------------------------------------------------------------------------------


@bp.get(IDENTITY + "/traits")
@role_required("viewer")
def trait_list(environment_id: int, identity_id: int) -> Response:
    """Render the traits card (table and add form)."""
    identity = _load(environment_id, identity_id)
    return _render(
        "identities/_traits.html",
        identity=identity,
        traits=identities.list_traits(identity),
        trait_form=TraitForm(formdata=None),
        can_edit=qa.can_edit_identity(current_user, identity),
    )


@bp.post(IDENTITY + "/traits")
@role_required("qa")
def add_trait(environment_id: int, identity_id: int) -> Response:
    """Add (or replace) a trait; re-evaluates and says which flags changed."""
    identity = _load(environment_id, identity_id, edit=True)
    form = TraitForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(_first_error(form))
        change = traits.set_trait(
            current_user,
            identity,
            form.key.data,
            form.value.data or "",
            form.value_type.data,
            utcnow(),
        )
    except ValidationError as exc:
        return _render(
            "identities/_traits.html",
            422,
            identity=identity,
            can_edit=True,
            traits=identities.list_traits(identity),
            trait_form=form,
            error=str(exc),
        )
    return _trait_done(
        identity,
        change,
        "identities/_traits.html",
        traits=identities.list_traits(identity),
        trait_form=TraitForm(formdata=None),
    )


@bp.get(TRAIT + "/edit")
@role_required("qa")
def edit_trait(environment_id: int, identity_id: int, key: str) -> Response:
    """Render the inline trait editor in place of its row."""
    identity = _load(environment_id, identity_id, edit=True)
    trait = traits.get_trait(identity, key)
    form = TraitEditForm(formdata=None, value=_as_text(trait.value), value_type=trait.value_type)
    return _render("identities/_trait_form.html", identity=identity, trait=trait, form=form)


@bp.get(TRAIT)
@role_required("viewer")
def trait(environment_id: int, identity_id: int, key: str) -> Response:
    """Render one trait row (also the Cancel of the inline editor)."""
    identity = _load(environment_id, identity_id)
    return _render(
        "identities/_trait_row.html",
        identity=identity,
        trait=traits.get_trait(identity, key),
        can_edit=qa.can_edit_identity(current_user, identity),
    )


@bp.put(TRAIT)
@role_required("qa")
def update_trait(environment_id: int, identity_id: int, key: str) -> Response:
    """Save an inline trait edit; re-evaluates and says which flags changed."""
    identity = _load(environment_id, identity_id, edit=True)
    form = TraitEditForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(_first_error(form))
        change = traits.set_trait(
            current_user,
            identity,
            key,
            form.value.data or "",
            form.value_type.data,
            utcnow(),
            must_exist=True,
        )
    except ValidationError as exc:
        return _render(
            "identities/_trait_form.html",
            422,
            identity=identity,
            trait=traits.get_trait(identity, key),
            form=form,
            error=str(exc),
        )
    return _trait_done(identity, change, "identities/_trait_row.html", trait=change.trait, oob=True)


@bp.delete(TRAIT)
@role_required("qa")
def delete_trait(environment_id: int, identity_id: int, key: str) -> Response:
    """Delete a trait; re-evaluates and says which flags changed."""
    identity = _load(environment_id, identity_id, edit=True)
    if not ConfirmForm().validate_on_submit():
        return make_response("The request was incomplete.", 422)
    change = traits.delete_trait(current_user, identity, key, utcnow())
    return _trait_done(identity, change, "identities/_trait_impact.html", oob=True)


# ---- QA: "This is me", My identities, reset --------------------------------------------------


@bp.post(IDENTITY + "/link")
@role_required("qa")
def link(environment_id: int, identity_id: int) -> Response:
    """Link the identity to an account ("This is me"; QA users prove it)."""
    identity = _load(environment_id, identity_id)
    form = LinkForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(_first_error(form), field="proof")
        qa.link_identity(current_user, identity, proof=form.proof.data, email=form.email.data)
    except ValidationError as exc:
        can_link_others = qa.can_edit_identity(current_user, identity)
        return _render(
            "identities/_link_form.html",
            422,
            identity=identity,
            link_form=form,
            error=str(exc),
            can_link_others=can_link_others,
        )
    return _to_detail(identity)


@bp.delete(IDENTITY + "/link/<int:user_id>")
@role_required("qa")
def unlink(environment_id: int, identity_id: int, user_id: int) -> Response:
    """Remove a "This is me" link."""
    identity = _load(environment_id, identity_id)
    if ConfirmForm().validate_on_submit():
        qa.unlink_identity(current_user, identity, user_id)
    return _to_detail(identity)


@bp.get(MINE)
@role_required("viewer")
def mine(environment_id: int) -> Response:
    """List the identities linked to the current user in this environment."""
    session["environment_id"] = environment_id
    linked = qa.my_identities(current_user, environment_id)
    return render_page_or_partial(
        "identities/mine.html",
        "identities/_mine.html",
        identities=linked,
        environment=g.environment,
        message=None,
    )


@bp.post(MINE + "/reset-overrides")
@role_required("qa")
def reset_mine(environment_id: int) -> Response:
    """Remove every override on the user's linked identities here, in one click."""
    if not ConfirmForm().validate_on_submit():
        return make_response("The request was incomplete.", 422)
    count = overrides.reset_my_overrides(current_user, environment_id, g.project.id)
    message = f"Removed {count} override{'s' if count != 1 else ''} from your identities."
    if not is_partial_request():
        return redirect(url_for("identities.mine", environment_id=environment_id))
    headers = _trigger(
        flags_changed={"changed": []}, show_message={"level": "info", "message": message}
    )
    return _render(
        "identities/_mine.html",
        headers=headers,
        environment=g.environment,
        identities=qa.my_identities(current_user, environment_id),
        message=message,
    )


# ---- form value helpers -----------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        return "json"
    return "string"
