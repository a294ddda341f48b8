"""Multivariate options of a feature and this environment's allocations (detail partials)."""

from __future__ import annotations

from flask import g
from flask_login import current_user
from werkzeug.wrappers import Response

from ...access import role_required
from ...forms import ConfirmForm
from ...forms.base import as_text
from ...forms.features import AllocationsForm, OptionForm, OptionValueForm, percentage_of
from ...services import values
from ...services.errors import Conflict, ValidationError
from ...services.features import catalog, feature_options
from . import bp
from .common import invalid, render
from .detail import detail_context


@bp.post("/<id:feature_id>/options")
@role_required("editor")
def create_option(environment_id: int, feature_id: int) -> Response:
    """Add a multivariate option (its default allocation applies in every environment)."""
    feature = catalog.get_feature(g.project.id, feature_id)
    form = OptionForm()
    status = 422
    if form.validate_on_submit():
        try:
            feature_options.add_option(
                feature,
                form.value_kind.data,
                form.value.data or "",
                percentage_of(form.default_allocation.data),
                current_user,
                key=(form.key.data or "").strip() or None,
            )
        except ValidationError as exc:
            invalid(form, exc)
        else:
            status, form = 200, OptionForm(formdata=None)
    context = detail_context(feature_id) | {"option_form": form}
    return render("features/_options.html", status, **context)


@bp.get("/<id:feature_id>/options")
@role_required("viewer")
def options(environment_id: int, feature_id: int) -> Response:
    """Render the options card (the option editor's Cancel)."""
    catalog.get_feature(g.project.id, feature_id)
    return render("features/_options.html", **detail_context(feature_id))


@bp.get("/<id:feature_id>/options/<id:option_id>/edit")
@role_required("editor")
def edit_option(environment_id: int, feature_id: int, option_id: int) -> Response:
    """Show the options with an editor for one option's value."""
    feature = catalog.get_feature(g.project.id, feature_id)
    option = feature_options.get_option(feature, option_id)
    form = OptionValueForm(
        formdata=None,
        value_kind=values.editor_kind(option.value),
        value=as_text(option.value),
        key=option.key,
    )
    context = detail_context(feature_id) | {"editing_option": option, "option_edit_form": form}
    return render("features/_options.html", **context)


@bp.put("/<id:feature_id>/options/<id:option_id>")
@role_required("editor")
def update_option(environment_id: int, feature_id: int, option_id: int) -> Response:
    """Save an option's new value (its buckets stay); an invalid value answers 422."""
    feature = catalog.get_feature(g.project.id, feature_id)
    option = feature_options.get_option(feature, option_id)
    form = OptionValueForm()
    if form.validate_on_submit():
        try:
            feature_options.update_option(
                feature, option_id, form.value_kind.data, form.value.data or "", current_user,
                key=(form.key.data or "").strip() or None,
            )  # fmt: skip
            return render("features/_options.html", **detail_context(feature_id))
        except ValidationError as exc:
            invalid(form, exc)
    context = detail_context(feature_id) | {"editing_option": option, "option_edit_form": form}
    return render("features/_options.html", 422, **context)


@bp.delete("/<id:feature_id>/options/<id:option_id>")
@role_required("editor")
def delete_option(environment_id: int, feature_id: int, option_id: int) -> Response:
    """Delete a multivariate option and its allocations everywhere."""
    feature = catalog.get_feature(g.project.id, feature_id)
    if ConfirmForm().validate_on_submit():
        feature_options.delete_option(feature, option_id, current_user)
    return render("features/_options.html", **detail_context(feature_id))


@bp.put("/<id:feature_id>/allocations")
@role_required("editor")
def update_allocations(environment_id: int, feature_id: int) -> Response:
    """Save this environment's option percentages (sum at most 100; stale pages get 409)."""
    feature = catalog.get_feature(g.project.id, feature_id)
    form = AllocationsForm()
    status = 422
    if form.validate_on_submit():
        try:
            feature_options.set_allocations(
                g.environment, feature, form.percentages(), current_user,
                version=form.version.data,
            )  # fmt: skip
        except Conflict as exc:
            # Show the saved percentages (and their version) with the message.
            context = detail_context(feature_id)
            context["allocations_form"].form_errors.append(str(exc))
            return render("features/_options.html", 409, **context)
        except ValidationError as exc:
            invalid(form, exc)
        else:
            status = 200
    context = detail_context(feature_id)
    if status != 200:
        context["allocations_form"] = form
    return render("features/_options.html", status, **context)
