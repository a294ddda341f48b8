"""Feature detail page: default state, segment override priorities, identity overrides."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ...access import role_required
from ...clock import utcnow
from ...forms import ConfirmForm
from ...forms.features import AllocationsForm, OptionForm, ReorderForm
from ...forms.versions import VersionedDeleteForm
from ...htmx import is_partial_request, render_page_or_partial
from ...services.errors import Conflict, ValidationError
from ...services.features import catalog, feature_options, feature_overrides
from ...services.usage import reports
from . import bp
from .common import can_edit, render


def detail_context(feature_id: int, page: int = 1) -> dict[str, Any]:
    """Build the detail page's context (its partials re-render from the same one)."""
    item = catalog.get_row(g.environment, feature_id)
    overrides = feature_overrides.list_segment_overrides(g.environment.id, feature_id)
    allocations = feature_options.state_allocations(item.state, item.feature)
    saved = [{"option_id": o.id, "percentage": f"{p:g}"} for o, p in allocations]
    return {
        "row": item,
        "feature": item.feature,
        "environment": g.environment,
        "can_edit": can_edit(),
        "allocations": allocations,
        "overrides": overrides,
        "reorder_form": ReorderForm(expected=overrides.token),
        "identity_overrides": feature_overrides.list_identity_overrides(
            g.environment.id, feature_id, page
        ),
        "deletion": catalog.deletion_summary(item.feature),
        "option_form": OptionForm(),
        "allocations_form": AllocationsForm(
            formdata=None, data={"allocations": saved, "version": item.version}
        ),
        "confirm_form": ConfirmForm(),
    }


@bp.get("/<id:feature_id>")
@role_required("viewer")
def detail(environment_id: int, feature_id: int) -> str:
    """Show a feature: default state, options, segment overrides and identity overrides."""
    session["environment_id"] = environment_id
    context = detail_context(feature_id)
    usage = reports.feature_usage_by_environment(g.project.environments, feature_id, utcnow())
    return render_template("features/detail.html", usage_by_environment=usage, **context)


@bp.get("/<id:feature_id>/identity-overrides")
@role_required("viewer")
def identity_overrides(environment_id: int, feature_id: int) -> Response:
    """Page through the identities overriding this feature."""
    page = request.args.get("page", 1, type=int) or 1
    return render_page_or_partial(
        "features/detail.html",
        "features/_identity_overrides.html",
        **detail_context(feature_id, page),
    )


@bp.delete("/<id:feature_id>/identity-overrides/<id:override_id>")
@role_required("editor")
def remove_identity_override(environment_id: int, feature_id: int, override_id: int) -> Response:
    """Remove one identity's override of this feature and re-render the list.

    A stale ``version`` (the override changed since the page showed it) is refused with 409.
    """
    feature = catalog.get_feature(g.project.id, feature_id)
    form = VersionedDeleteForm.from_request()
    status, message = 422, None
    if form.validate_on_submit():
        try:
            feature_overrides.remove_identity_override(
                g.environment, feature, override_id, current_user, version=form.version.data
            )
            status = 200
        except Conflict as exc:
            status, message = 409, str(exc)
    else:
        message = "; ".join(e for errs in form.errors.values() for e in errs)
    page = request.args.get("page", 1, type=int) or 1
    context = detail_context(feature_id, page)
    return render("features/_identity_overrides.html", status, message=message, **context)


@bp.post("/<id:feature_id>/segment-overrides/order")
@role_required("editor")
def reorder(environment_id: int, feature_id: int) -> Response:
    """Rewrite segment override priorities in the submitted order (optimistic check)."""
    feature = catalog.get_feature(g.project.id, feature_id)
    form = ReorderForm()
    status, message = 200, None
    if not form.validate_on_submit():
        status, message = 422, "; ".join(e for errs in form.errors.values() for e in errs)
    else:
        order, seen = form.order.data, form.expected.data
        try:
            feature_overrides.reorder_segment_overrides(
                g.environment, feature, order, seen, current_user
            )
        except (Conflict, ValidationError) as exc:
            status, message = (409 if isinstance(exc, Conflict) else 422), str(exc)
    if not is_partial_request():
        flash(message or "Priorities saved.", "error" if message else "success")
        return redirect(
            url_for("features.detail", environment_id=environment_id, feature_id=feature_id)
        )
    context = detail_context(feature_id)
    return render("features/_segment_overrides.html", status, message=message, **context)
