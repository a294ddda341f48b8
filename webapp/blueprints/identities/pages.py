"""The Identity page and its read-only partials: flags, one flag, why, segments, history."""

from __future__ import annotations

from flask import session
from flask_login import current_user
from werkzeug.wrappers import Response

from ...access import role_required
from ...clock import utcnow
from ...forms.identities import LinkForm, ToggleOverrideForm, TraitForm
from ...htmx import render_page_or_partial
from ...services.identities import editing_rights, identity_page
from . import bp
from .common import FLAG, IDENTITY, flag_row, load_feature, load_identity, render


@bp.get(IDENTITY)
@role_required("viewer")
def detail(environment_id: int, identity_id: int) -> Response:
    """Show an identity: header, flags with sources, traits, segments and history."""
    session["environment_id"] = environment_id
    identity = load_identity(environment_id, identity_id)
    view = identity_page.load_page(identity, current_user, utcnow())
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
    identity = load_identity(environment_id, identity_id)
    rows = identity_page.flag_rows(identity, utcnow())
    can_edit = editing_rights.can_edit_identity(current_user, identity)
    return render("identities/_flags_table.html", rows=rows, identity=identity, can_edit=can_edit)


@bp.get(FLAG)
@role_required("viewer")
def flag(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Render one flag row (also the Cancel of the override editor)."""
    return flag_row(load_identity(environment_id, identity_id), load_feature(feature_id))


@bp.get(FLAG + "/why")
@role_required("viewer")
def why(environment_id: int, identity_id: int, feature_id: int) -> Response:
    """Render the why panel: segment traces and counterfactuals for one flag."""
    identity = load_identity(environment_id, identity_id)
    panel = identity_page.why_panel(identity, load_feature(feature_id), utcnow())
    return render("identities/_why.html", panel=panel, identity=identity)


@bp.get(IDENTITY + "/segments")
@role_required("viewer")
def segments(environment_id: int, identity_id: int) -> Response:
    """Render the list of segments the identity is in."""
    identity = load_identity(environment_id, identity_id)
    links = identity_page.segment_links(identity, utcnow())
    return render("identities/_segments.html", segments=links, identity=identity)


@bp.get(IDENTITY + "/history")
@role_required("viewer")
def history(environment_id: int, identity_id: int) -> Response:
    """Render this identity's audit events, newest first."""
    identity = load_identity(environment_id, identity_id)
    return render(
        "identities/_history.html", events=identity_page.history(identity.id), identity=identity
    )
