"""The Users page: search an environment's identities, create, delete and bulk-change them."""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from markupsafe import escape
from werkzeug.wrappers import Response

from ..access import role_required
from ..forms import ConfirmForm
from ..forms.users import BulkActionForm, CreateIdentitiesForm, TraitColumnsForm
from ..htmx import is_partial_request, render_page_or_partial
from ..services import accounts, humanize
from ..services.errors import ValidationError
from ..services.identities import manage, trait_columns
from ..services.identities import search as identity_search

bp = Blueprint("users", __name__, url_prefix="/environments/<id:environment_id>/users")

CHANGED = "identities-changed"


def _search_args() -> dict[str, Any]:
    args = request.args
    return {
        "q": args.get("q", "", type=str)[: identity_search.MAX_QUERY_LENGTH + 1],
        "sort": args.get("sort", identity_search.DEFAULT_SORT, type=str),
        "has_overrides": args.get("has_overrides", "") in ("1", "on", "true"),
    }


def _page_url(search: dict[str, Any], **cursor: str | None) -> str:
    params = {key: value for key, value in search.items() if value}
    return url_for("users.index", environment_id=g.environment.id, **params, **cursor)


def _results_context() -> tuple[dict[str, Any], int]:
    """Run the search from the query string; a malformed query becomes an inline message."""
    search = _search_args()
    offered = identity_search.trait_keys(g.environment.id)
    columns = manage.chosen_trait_columns(current_user, g.environment.id, offered)
    context: dict[str, Any] = {"search": search, "offered": offered, "columns": columns}
    context["default_columns"] = trait_columns.saved_default(g.environment.id)
    context |= {"error": None, "results": None, "prev_url": None, "next_url": None}
    try:
        page = identity_search.search_identities(
            g.environment.id,
            search["q"],
            has_overrides=search["has_overrides"],
            sort=search["sort"],
            after=request.args.get("after"),
            before=request.args.get("before"),
            trait_columns=columns,
            # The total arrives by its own request (users.count): at a million identities
            # an exact count can cost several times the page itself, and rows come first.
            with_total=False,
        )
    except ValidationError as exc:
        context["error"] = str(exc)
        return context | _page_extras(search), 422
    context["results"] = page
    search["sort"] = page.sort
    if page.next_cursor:
        context["next_url"] = _page_url(search, after=page.next_cursor)
    if page.prev_cursor:
        context["prev_url"] = _page_url(search, before=page.prev_cursor)
    return context | _page_extras(search), 200


def _page_extras(search: dict[str, Any]) -> dict[str, Any]:
    can_edit = accounts.has_role(current_user, g.project.id, "editor")
    bulk_form = None
    if can_edit:
        bulk_form = BulkActionForm(
            formdata=None, q=search["q"], has_overrides=search["has_overrides"]
        )
        _feature_choices(bulk_form)
    return {
        "environment": g.environment,
        "can_edit": can_edit,
        "is_admin": accounts.has_role(current_user, g.project.id, "admin"),
        "bulk_form": bulk_form,
        "delete_form": ConfirmForm(),
        "sorts": identity_search.SORTS,
    }


def _feature_choices(form: BulkActionForm) -> None:
    features = manage.project_features(g.project.id)
    form.feature_id.choices = [("", "All features")] + [(f.id, f.name) for f in features]


@bp.get("")
@role_required("viewer")
def index(environment_id: int) -> Response:
    """Show the identities of an environment, filtered by the search box, one page at a time."""
    context, status = _results_context()
    response = render_page_or_partial(
        "users/index.html",
        "users/_results.html",
        create_form=CreateIdentitiesForm(),
        columns_form=TraitColumnsForm(),
        **context,
    )
    response.status_code = status
    return response


@bp.get("/count")
@role_required("viewer")
def count(environment_id: int) -> Response:
    """Count the identities matching the search (loaded by the results once they show)."""
    search = _search_args()
    try:
        total = identity_search.count_identities(
            environment_id, search["q"], has_overrides=search["has_overrides"]
        )
    except ValidationError as exc:
        # The message quotes the query; htmx swaps a 422 as HTML, so it goes out escaped.
        return make_response(escape(str(exc)), 422)
    return make_response(render_template("users/_count.html", total=total, search=search))


def _changed(body: str, status: int = 200, message: str | None = None) -> Response:
    """An htmx answer that also tells the results table to refresh (and maybe toasts)."""
    response = make_response(body, status)
    triggers: dict[str, Any] = {CHANGED: True}
    if message:
        triggers["show-message"] = {"level": "success", "message": message}
    response.headers["HX-Trigger"] = json.dumps(triggers)
    return response


@bp.post("")
@role_required("editor")
def create(environment_id: int) -> Response:
    """Create identities from pasted identifiers, reporting duplicates and invalid lines."""
    form = CreateIdentitiesForm()
    result = None
    if form.validate_on_submit():
        try:
            result = manage.create_identities(
                current_user, g.project.id, environment_id, form.identifiers.data
            )
        except ValidationError as exc:
            form.identifiers.errors = [str(exc)]
    if not is_partial_request():
        _flash_created(result, form)
        return redirect(url_for("users.index", environment_id=environment_id))
    body = render_template(
        "users/_create.html", create_form=form, result=result, environment=g.environment
    )
    if result is None or not result.created:
        # Every line was a duplicate or invalid: the report explains why, nothing changed.
        return make_response(body, 422)
    return _changed(body)


def _flash_created(result: manage.CreateResult | None, form: CreateIdentitiesForm) -> None:
    if result is None:
        flash(" ".join(form.identifiers.errors) or "Nothing was created.", "error")
        return
    flash(f"Created {humanize.plural(len(result.created), 'identity')}.", "success")
    if result.duplicates or result.invalid:
        skipped = len(result.duplicates) + len(result.invalid)
        lines = humanize.plural(skipped, "duplicate or invalid line")
        flash(f"Skipped {lines}.", "error")


@bp.delete("/<id:identity_id>")
@role_required("editor")
def delete(environment_id: int, identity_id: int) -> Response:
    """Delete one identity (htmx): the row disappears and the count refreshes."""
    if not ConfirmForm().validate_on_submit():
        return make_response("Reload the page and try again.", 400)
    summary = manage.delete_identity(current_user, g.project.id, environment_id, identity_id)
    return _changed("", message=f"Deleted {humanize.name_text(summary.identifier)}.")


@bp.post("/<id:identity_id>/delete")
@role_required("editor")
def delete_post(environment_id: int, identity_id: int) -> Response:
    """Delete one identity from a plain form, then go back to the list."""
    if ConfirmForm().validate_on_submit():
        summary = manage.delete_identity(current_user, g.project.id, environment_id, identity_id)
        flash(f"Deleted {humanize.name_text(summary.identifier)}.", "success")
    return redirect(url_for("users.index", environment_id=environment_id))


@bp.post("/columns")
@role_required("viewer")
def save_columns(environment_id: int) -> Response:
    """Remember which trait columns this user shows here."""
    form = TraitColumnsForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(next(iter(form.columns.errors), "Invalid columns."), "columns")
        manage.save_trait_columns(current_user, environment_id, form.columns.data)
    except ValidationError as exc:
        return make_response(str(exc), 422, {"HX-Reswap": "none"})
    if is_partial_request():
        return _changed("", status=200)
    return redirect(url_for("users.index", environment_id=environment_id))


@bp.post("/columns/default")
@role_required("admin")
def save_default_columns(environment_id: int) -> Response:
    """Make the chosen trait columns everyone's default here (none: the commonest keys)."""
    form = TraitColumnsForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(next(iter(form.columns.errors), "Invalid columns."), "columns")
        keys = trait_columns.save_default(
            current_user, g.project.id, environment_id, form.columns.data or []
        )
    except ValidationError as exc:
        return make_response(str(exc), 422, {"HX-Reswap": "none"})
    shown = ", ".join(humanize.name_text(key) for key in keys) or "the commonest trait keys"
    message = f"Everyone without their own choice now sees: {shown}."
    if is_partial_request():
        return _changed("", message=message)
    flash(message, "success")
    return redirect(url_for("users.index", environment_id=environment_id))


def _bulk_request(form: BulkActionForm) -> manage.BulkRequest:
    return manage.BulkRequest(
        action=form.action.data,
        query=form.q.data or "",
        has_overrides=form.wants_overrides_only,
        feature_id=form.feature,
        enabled=bool(form.enabled.data),
        value=form.typed_value if form.action.data == "override" else None,
        ids=tuple(form.selected.data or ()),
    )


def _render_bulk(form: BulkActionForm, status: int, **context: Any) -> Response:
    _feature_choices(form)
    page = "users/bulk.html"
    response = render_page_or_partial(page, "users/_bulk.html", bulk_form=form, **context)
    response.status_code = status
    return response


@bp.post("/bulk/preview")
@role_required("editor")
def bulk_preview(environment_id: int) -> Response:
    """Count what a bulk action would change (the dry run) and ask for confirmation."""
    form = BulkActionForm()
    _feature_choices(form)
    if not form.validate_on_submit():
        return _render_bulk(form, 422, environment=g.environment)
    try:
        count = manage.preview_bulk(g.project.id, environment_id, _bulk_request(form))
    except ValidationError as exc:
        form.form_errors.append(str(exc))
        return _render_bulk(form, 422, environment=g.environment)
    form.expected.data = count
    return _render_bulk(form, 200, environment=g.environment, preview=count)


@bp.post("/bulk")
@role_required("editor")
def bulk_apply(environment_id: int) -> Response:
    """Apply a confirmed bulk action to the whole search result, as one audited change."""
    form = BulkActionForm()
    _feature_choices(form)
    if not form.validate_on_submit() or form.expected.data is None:
        form.form_errors.append("Review the count first, then confirm.")
        return _render_bulk(form, 422, environment=g.environment)
    try:
        count = manage.apply_bulk(
            current_user, g.project.id, environment_id, _bulk_request(form), form.expected.data
        )
    except ValidationError as exc:
        form.form_errors.append(str(exc))
        return _render_bulk(form, 422, environment=g.environment)
    changed = f"{humanize.plural(count, 'identity')} changed"
    message = f"{dict(form.action.choices)[form.action.data]}: {changed}."
    if not is_partial_request():
        flash(message, "success")
        # After an erasure the search is not carried on: it may quote the erased data.
        q = None if form.action.data == "erase" else form.q.data
        return redirect(url_for("users.index", environment_id=environment_id, q=q))
    body = render_template(
        "users/_bulk.html", bulk_form=form, environment=g.environment, done=message
    )
    return _changed(body, message=message)
