"""Feature create, edit and delete (project-wide settings)."""

from __future__ import annotations

from typing import Any

from flask import flash, g, make_response, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ...access import role_required
from ...forms import ConfirmForm
from ...forms.features import FeatureForm
from ...htmx import hx_redirect, is_partial_request
from ...services import values
from ...services.errors import ValidationError
from ...services.features import catalog
from . import bp
from .common import invalid, render


def _input(form: FeatureForm, creating: bool) -> catalog.FeatureFields:
    return catalog.FeatureFields(
        name=(form.name.data or "").strip(),
        description=form.description.data or "",
        type=form.type.data,
        server_key_only=bool(form.server_key_only.data),
        value_kind=form.value_kind.data if creating else values.NULL,
        value_text=form.value.data or "" if creating else "",
    )


@bp.get("/new")
@role_required("editor")
def new(environment_id: int) -> str:
    """Show the form for a new feature."""
    return render_template(
        "features/form.html", form=FeatureForm(), feature=None, environment=g.environment
    )


@bp.post("")
@role_required("editor")
def create(environment_id: int) -> Response:
    """Create a feature (a state in every environment) and open it."""
    form = FeatureForm()
    if form.validate_on_submit():
        try:
            feature = catalog.create_feature(g.project, _input(form, True), current_user)
        except ValidationError as exc:
            invalid(form, exc)
        else:
            return _go(
                url_for("features.detail", environment_id=environment_id, feature_id=feature.id),
                f"Feature “{feature.name}” created.",
            )
    return _form_response(form, None)


@bp.get("/<id:feature_id>/edit")
@role_required("editor")
def edit(environment_id: int, feature_id: int) -> str:
    """Show the form for editing a feature's project-wide settings."""
    feature = catalog.get_feature(g.project.id, feature_id)
    return render_template(
        "features/form.html",
        form=FeatureForm(obj=feature),
        feature=feature,
        environment=g.environment,
    )


@bp.post("/<id:feature_id>/edit")
@role_required("editor")
def update(environment_id: int, feature_id: int) -> Response:
    """Save a feature's name, description, type and server-key-only marker."""
    feature = catalog.get_feature(g.project.id, feature_id)
    form = FeatureForm()
    if form.validate_on_submit():
        try:
            catalog.update_feature(feature, _input(form, False), current_user)
        except ValidationError as exc:
            invalid(form, exc)
        else:
            return _go(
                url_for("features.detail", environment_id=environment_id, feature_id=feature.id),
                f"Feature “{feature.name}” saved.",
            )
    return _form_response(form, feature)


def _form_response(form: FeatureForm, feature: Any) -> Response:
    """Answer an invalid feature form with 422: the form partial for htmx, else the page."""
    template = "features/_form.html" if is_partial_request() else "features/form.html"
    return render(template, 422, form=form, feature=feature, environment=g.environment)


def _go(url: str, message: str) -> Response:
    flash(message, "success")
    return hx_redirect(url) if is_partial_request() else redirect(url)


@bp.delete("/<id:feature_id>")
@role_required("editor")
def delete(environment_id: int, feature_id: int) -> Response:
    """Delete a feature with its states and overrides, then show the list."""
    feature = catalog.get_feature(g.project.id, feature_id)
    name = feature.name
    if not ConfirmForm().validate_on_submit():
        return make_response("Refused: missing confirmation token.", 400)
    catalog.delete_feature(feature, current_user)
    return _go(
        url_for("features.index", environment_id=environment_id), f"Feature “{name}” deleted."
    )
