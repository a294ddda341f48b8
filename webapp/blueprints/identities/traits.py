"""The traits card: list, add, inline edit, delete (each re-evaluates the flags)."""

from __future__ import annotations

from typing import Any

from flask import flash, make_response
from flask_login import current_user
from werkzeug.wrappers import Response

from ...access import role_required
from ...clock import utcnow
from ...forms.identities import TraitEditForm, TraitForm
from ...forms.versions import TokenDeleteForm
from ...htmx import is_partial_request
from ...services.errors import Conflict, ValidationError
from ...services.identities import Identity, editing_rights, identity_page, traits
from ...services.identities.traits import TraitChange
from . import bp
from .common import IDENTITY, TRAIT, as_text, first_error, load_identity, render, to_detail, trigger


def _trait_done(identity: Identity, change: TraitChange, template: str, **ctx: Any) -> Response:
    """Answer a trait change: the partial, the impact note, and ``flags-changed``."""
    if not is_partial_request():
        return to_detail(identity)
    headers = trigger(flags_changed={"changed": change.changed, "trait": change.key})
    return render(template, headers=headers, identity=identity, can_edit=True, change=change, **ctx)


def _trait_changed(identity: Identity, key: str, exc: Conflict) -> Response:
    """Answer a refused stale trait change: the saved row with the message, 409."""
    if not is_partial_request():
        flash(str(exc), "error")
        return to_detail(identity)
    return render(
        "identities/_trait_row.html", 409, identity=identity,
        trait=traits.get_trait(identity, key), can_edit=True, error=str(exc),
    )  # fmt: skip


@bp.get(IDENTITY + "/traits")
@role_required("viewer")
def trait_list(environment_id: int, identity_id: int) -> Response:
    """Render the traits card (table and add form)."""
    identity = load_identity(environment_id, identity_id)
    return render(
        "identities/_traits.html",
        identity=identity,
        traits=identity_page.list_traits(identity),
        trait_form=TraitForm(formdata=None),
        can_edit=editing_rights.can_edit_identity(current_user, identity),
    )


@bp.post(IDENTITY + "/traits")
@role_required("qa")
def add_trait(environment_id: int, identity_id: int) -> Response:
    """Add (or replace) a trait; re-evaluates and says which flags changed."""
    identity = load_identity(environment_id, identity_id, edit=True)
    form = TraitForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form))
        change = traits.set_trait(
            current_user,
            identity,
            form.key.data,
            form.value.data or "",
            form.value_type.data,
            utcnow(),
        )
    except ValidationError as exc:
        return render(
            "identities/_traits.html",
            422,
            identity=identity,
            can_edit=True,
            traits=identity_page.list_traits(identity),
            trait_form=form,
            error=str(exc),
        )
    return _trait_done(
        identity,
        change,
        "identities/_traits.html",
        traits=identity_page.list_traits(identity),
        trait_form=TraitForm(formdata=None),
    )


@bp.get(TRAIT + "/edit")
@role_required("qa")
def edit_trait(environment_id: int, identity_id: int, key: str) -> Response:
    """Render the inline trait editor in place of its row."""
    identity = load_identity(environment_id, identity_id, edit=True)
    trait = traits.get_trait(identity, key)
    form = TraitEditForm(
        formdata=None,
        value=as_text(trait.value),
        value_type=trait.value_type,
        version=traits.trait_version(trait),
    )
    return render("identities/_trait_form.html", identity=identity, trait=trait, form=form)


# "/row", not the bare trait URL: a key may itself end in "/edit" (keys may hold "/"), and
# "/traits/a/edit" would then be both that trait's row and the editor of trait "a".
@bp.get(TRAIT + "/row")
@role_required("viewer")
def trait(environment_id: int, identity_id: int, key: str) -> Response:
    """Render one trait row (also the Cancel of the inline editor)."""
    identity = load_identity(environment_id, identity_id)
    return render(
        "identities/_trait_row.html",
        identity=identity,
        trait=traits.get_trait(identity, key),
        can_edit=editing_rights.can_edit_identity(current_user, identity),
    )


@bp.put(TRAIT)
@role_required("qa")
def update_trait(environment_id: int, identity_id: int, key: str) -> Response:
    """Save an inline trait edit; re-evaluates and says which flags changed."""
    identity = load_identity(environment_id, identity_id, edit=True)
    form = TraitEditForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form))
        change = traits.set_trait(
            current_user,
            identity,
            key,
            form.value.data or "",
            form.value_type.data,
            utcnow(),
            must_exist=True,
            version=form.version.data,
        )
    except Conflict as exc:
        return _trait_changed(identity, key, exc)
    except ValidationError as exc:
        return render(
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
    identity = load_identity(environment_id, identity_id, edit=True)
    form = TokenDeleteForm.from_request()
    if not form.validate_on_submit():
        return make_response(first_error(form), 422)
    try:
        change = traits.delete_trait(
            current_user, identity, key, utcnow(), version=form.version.data
        )
    except Conflict as exc:
        return _trait_changed(identity, key, exc)
    return _trait_done(identity, change, "identities/_trait_impact.html", oob=True)
