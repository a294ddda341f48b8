"""Features list: search, one row, and the inline enabled toggle and default-value editor."""

from __future__ import annotations

from flask import flash, g, redirect, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ...access import role_required
from ...clock import utcnow
from ...forms.base import as_text
from ...forms.features import StaleFilterForm, ToggleForm, ValueForm
from ...htmx import is_partial_request, render_page_or_partial
from ...services.errors import Conflict, ValidationError
from ...services.features import catalog
from ...services.usage import reports
from . import bp
from .common import can_edit, invalid, render


@bp.get("")
@role_required("viewer")
def index(environment_id: int) -> Response:
    """List the project's features with their state in this environment; searchable."""
    session["environment_id"] = environment_id
    query = request.args.get("q", "")
    form = StaleFilterForm(request.args)
    valid = form.validate()
    rows = catalog.list_features(g.environment, query)
    usage = reports.features_usage(
        g.environment.id,
        [r.feature.id for r in rows],
        utcnow(),
        stale=form.stale.data if valid else None,
        days=form.days.data or reports.STALE_DAYS_DEFAULT,
    )
    response = render_page_or_partial(
        "features/index.html",
        "features/_table.html",
        rows=[r for r in rows if usage.keep(r.feature.id)],
        usage=usage,
        stale_form=form,
        q=query,
        environment=g.environment,
        can_edit=can_edit(),
        toggle_form=ToggleForm(),
    )
    if not valid:
        response.status_code = 422
    return response


def _row(item: catalog.FeatureRow, status: int = 200, **extra: object) -> Response:
    """Render one list row with its usage column."""
    usage = reports.features_usage(g.environment.id, [item.feature.id], utcnow())
    return render(
        "features/_row.html", status, row=item, usage=usage, environment=g.environment,
        can_edit=can_edit(), **extra,
    )  # fmt: skip


@bp.get("/<id:feature_id>/row")
@role_required("viewer")
def row(environment_id: int, feature_id: int) -> Response:
    """Render one feature's list row (Cancel of the inline value editor)."""
    return _row(catalog.get_row(g.environment, feature_id))


@bp.post("/<id:feature_id>/enabled")
@role_required("editor")
def toggle(environment_id: int, feature_id: int) -> Response:
    """Set the feature's default enabled flag in this environment."""
    form = ToggleForm()
    if not form.validate_on_submit():
        return _row(catalog.get_row(g.environment, feature_id), 422)
    try:
        item = catalog.set_enabled(
            g.environment, feature_id, bool(form.enabled.data), current_user,
            version=form.version.data,
        )  # fmt: skip
    except Conflict as exc:
        return _changed(feature_id, exc)
    if not is_partial_request():
        return redirect(url_for("features.index", environment_id=environment_id))
    return _row(item)


def _changed(feature_id: int, exc: Conflict) -> Response:
    """Answer a refused stale change: the saved row with the message, 409 (htmx swaps it)."""
    if not is_partial_request():
        flash(str(exc), "error")
        return redirect(url_for("features.index", environment_id=g.environment.id))
    return _row(catalog.get_row(g.environment, feature_id), 409, error=str(exc))


@bp.get("/<id:feature_id>/value/edit")
@role_required("editor")
def edit_value(environment_id: int, feature_id: int) -> Response:
    """Render the inline, type-aware editor for the default value."""
    item = catalog.get_row(g.environment, feature_id)
    value = item.state.value if item.state else None
    form = ValueForm(
        value_kind=item.value_kind,
        value=as_text(value),
        version=item.version,
    )
    return render("features/_value_form.html", row=item, form=form, environment=g.environment)


@bp.put("/<id:feature_id>/value")
@role_required("editor")
def update_value(environment_id: int, feature_id: int) -> Response:
    """Save the default value; an invalid value re-renders the editor with a 422."""
    form = ValueForm()
    item = catalog.get_row(g.environment, feature_id)
    if form.validate_on_submit():
        try:
            item = catalog.set_value(
                g.environment, feature_id, form.value_kind.data, form.value.data or "",
                current_user, version=form.version.data,
            )  # fmt: skip
        except Conflict as exc:
            return _changed(feature_id, exc)
        except ValidationError as exc:
            invalid(form, exc)
        else:
            return _row(item)
    return render("features/_value_form.html", 422, row=item, form=form, environment=g.environment)
