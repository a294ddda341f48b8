"""Segments page: list with member counts, rule builder with live preview, members, overrides."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, make_response, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..access import role_required
from ..forms.base import first_error
from ..forms.segments import (
    SPECIAL_PROPERTIES,
    DeleteForm,
    PreviewForm,
    SegmentForm,
    SegmentOverrideEditForm,
    SegmentOverrideForm,
    allocations_of,
    apply_action,
    fits_builder,
    form_to_rules,
    rules_to_formdata,
)
from ..forms.versions import VersionedDeleteForm
from ..htmx import hx_redirect, is_partial_request, render_page_or_partial
from ..ids import parse_id
from ..services import accounts, values
from ..services.errors import Conflict, ValidationError
from ..services.features import catalog
from ..services.segments import definitions, segment_overrides

bp = Blueprint("segments", __name__, url_prefix="/environments/<id:environment_id>/segments")
MEMBERS_PAGE = 50


@bp.get("")
@role_required("viewer")
def index(environment_id: int) -> Response:
    """List the project's segments with member counts in this environment."""
    search = request.args.get("q", "").strip()
    rows = definitions.list_segments(g.project.id, environment_id, search)
    return render_page_or_partial(
        "segments/index.html", "segments/_table.html", rows=rows, search=search,
        can_edit=_can_edit(), delete_form=DeleteForm(),
    )  # fmt: skip


@bp.get("/<id:segment_id>")
@role_required("viewer")
def detail(environment_id: int, segment_id: int) -> str:
    """Show a segment: rules, members and overrides tabs."""
    segment = definitions.get_segment(g.project.id, segment_id)
    tab = request.args.get("tab", "rules")
    return render_template(
        "segments/detail.html", segment=segment, tab=tab, can_edit=_can_edit(),
        members=_members_context(environment_id, segment) if tab == "members" else None,
        overrides=_overrides_context(segment, environment_id) if tab == "overrides" else None,
        delete_form=DeleteForm(),
        doomed=segment_overrides_named(segment),
    )  # fmt: skip


@bp.get("/<id:segment_id>/members")
@role_required("viewer")
def members(environment_id: int, segment_id: int) -> Response:
    """Page through the segment's members (keyset pagination, identifier search)."""
    segment = definitions.get_segment(g.project.id, segment_id)
    context = _members_context(environment_id, segment)
    return render_page_or_partial(
        "segments/detail.html", "segments/_members.html", segment=segment, tab="members",
        members=context, can_edit=_can_edit(), delete_form=DeleteForm(), overrides=None,
        doomed=segment_overrides_named(segment),
    )  # fmt: skip


@bp.get("/new")
@role_required("editor")
def new(environment_id: int) -> str:
    """Show an empty rule builder."""
    form = SegmentForm(data={"groups": [{"type": "ANY", "conditions": [{}]}]})
    return render_template("segments/edit.html", **_builder_context(form, None))


@bp.post("/new")
@role_required("editor")
def create(environment_id: int) -> Response:
    """Create a segment from the builder, or re-render it with inline errors (422)."""
    form = SegmentForm()
    if not form.validate_on_submit():
        return _builder(form, None, {}, 422)
    try:
        segment = definitions.create_segment(
            g.project.id, current_user, form.name.data, form.description.data, form_to_rules(form)
        )
    except ValidationError as exc:
        return _builder(form, None, _errors_of(exc), 422)
    return _to_detail(environment_id, segment.id)


@bp.get("/<id:segment_id>/edit")
@role_required("editor")
def edit(environment_id: int, segment_id: int) -> str:
    """Show the builder filled with the saved rules and version."""
    segment = definitions.get_segment(g.project.id, segment_id)
    rules = segment.rules or []
    # Rules the builder cannot show are never approximated: it starts empty (see the page).
    data = rules_to_formdata(rules) if fits_builder(rules) else {"match": "ALL", "groups": []}
    data.update(name=segment.name, description=segment.description, version=segment.version)
    return render_template(
        "segments/edit.html", **_builder_context(SegmentForm(data=data), segment)
    )


@bp.put("/<id:segment_id>/edit")
@role_required("editor")
def update(environment_id: int, segment_id: int) -> Response:
    """Save edited rules; a stale ``version`` is refused with 409 (and audited)."""
    segment = definitions.get_segment(g.project.id, segment_id)
    form = SegmentForm()
    if not form.validate_on_submit():
        return _builder(form, segment, {}, 422)
    try:
        definitions.update_segment(
            segment, current_user, name=form.name.data, description=form.description.data,
            rules=form_to_rules(form), version=_int(form.version.data),
        )  # fmt: skip
    except definitions.RulesInvalid as exc:
        return _builder(form, segment, exc.by_path, 422)
    except ValidationError as exc:
        return _builder(form, segment, _errors_of(exc), 422)
    except Conflict as exc:
        # The editor keeps their rules on screen; saving needs a reload (the stale version).
        return _builder(form, segment, {"form": str(exc)}, 409)
    return _to_detail(environment_id, segment.id)


@bp.post("/builder")
@role_required("editor")
def builder(environment_id: int) -> Response:
    """Re-render the builder from the posted state after adding or removing a part."""
    form = PreviewForm()
    form.validate_on_submit()
    apply_action(form)
    segment_id = parse_id(request.args.get("segment_id"))
    segment = definitions.get_segment(g.project.id, segment_id) if segment_id else None
    response = _builder(form, segment, {}, 200, validate=False)
    response.headers["HX-Trigger-After-Settle"] = "builder-changed"
    return response


@bp.post("/preview")
@role_required("editor")
def preview(environment_id: int) -> str:
    """Preview the unsaved rules: count, sample and change impact against the saved rules."""
    form = PreviewForm()
    segment_id = parse_id(request.args.get("segment_id"))
    saved = definitions.get_segment(g.project.id, segment_id) if segment_id else None
    rules = form_to_rules(form)
    if form.validate_on_submit():
        errors = definitions.rule_errors(rules)
    else:
        errors = {"form": _readable(first_error(form.errors) or "The rules could not be read.")}
    result = None
    if not errors:
        key = saved.hash_id if saved is not None else "preview"
        result = definitions.preview(environment_id, rules, saved, key)
    problems = [_where(position) + message for position, message in errors.items()]
    return render_template("segments/_preview.html", result=result, errors=problems)


@bp.delete("/<id:segment_id>")
@role_required("editor")
def delete(environment_id: int, segment_id: int) -> Response:
    """Delete a segment and its overrides."""
    segment = definitions.get_segment(g.project.id, segment_id)
    if not DeleteForm().validate_on_submit():
        return make_response("Invalid request.", 422)
    definitions.delete_segment(segment, current_user)
    target = url_for("segments.index", environment_id=environment_id)
    return hx_redirect(target) if is_partial_request() else _redirect(target)


# ---- helpers ------------------------------------------------------------------------
def _can_edit() -> bool:
    return accounts.has_role(current_user, g.project.id, "editor")


def _where(position: str) -> str:
    """Name a builder position ("g0-c1") the way the page numbers it ("Group 1, condition 2: ")."""
    if position == "form":
        return ""
    parts = [int(p[1:]) + 1 for p in position.split("-")]
    where = f"Group {parts[0]}" + (f", condition {parts[1]}" if len(parts) > 1 else "")
    return where + ": "


def _readable(message: str) -> str:
    """Name the field of a form error as a person would ("property_: …" -> "Property: …")."""
    field, sep, rest = message.partition(": ")
    if not sep or " " in field:
        return message
    return f"{field.rstrip('_').replace('_', ' ').capitalize()}: {rest}"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _redirect(target: str) -> Response:
    response = make_response("", 303)
    response.headers["Location"] = target
    return response


def _to_detail(environment_id: int, segment_id: int) -> Response:
    target = url_for("segments.detail", environment_id=environment_id, segment_id=segment_id)
    return hx_redirect(target) if is_partial_request() else _redirect(target)


def _errors_of(exc: ValidationError) -> dict[str, str]:
    if isinstance(exc, definitions.RulesInvalid):
        return exc.by_path
    return {exc.field or "form": str(exc)}


def _builder_context(
    form: SegmentForm, segment: Any, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "form": form,
        "segment": segment,
        "errors": errors or {},
        "trait_keys": definitions.trait_keys(g.environment.id),
        "special_properties": SPECIAL_PROPERTIES,
        # Saved rules nested beyond the builder's shape: shown read-only, replaced on save.
        "unbuildable_rules": None if segment is None or fits_builder(segment.rules or [])
        else segment.rules,
    }


def _builder(
    form: SegmentForm, segment: Any, errors: dict[str, str], status: int, validate: bool = True
) -> Response:
    if validate and not errors and form.errors:
        errors = {"form": f"Please correct the highlighted fields — {first_error(form.errors)}"}
    context = _builder_context(form, segment, errors)
    template = "segments/_builder.html" if is_partial_request() else "segments/edit.html"
    return make_response(render_template(template, **context), status)


def _members_context(environment_id: int, segment: Any) -> dict[str, Any]:
    search = request.args.get("q", "").strip()
    after = parse_id(request.args.get("after"))  # the last id shown; anything else: page one
    page = definitions.member_page(environment_id, segment, after, MEMBERS_PAGE, search)
    return {"rows": page, "search": search, "after": after, "page_size": MEMBERS_PAGE}


def segment_overrides_named(segment: Any) -> str:
    """Describe the overrides that go with a segment, for the delete confirmation."""
    names = sorted({f"{o.feature.name} ({o.environment.name})" for o in segment.overrides})
    return ", ".join(names) if names else "no overrides"


# ---- overrides tab ------------------------------------------------------------------
@bp.post("/<id:segment_id>/overrides")
@role_required("editor")
def create_override(environment_id: int, segment_id: int) -> Response:
    """Add a segment override for a feature in this environment."""
    segment = definitions.get_segment(g.project.id, segment_id)
    form = SegmentOverrideForm()

    def save(fields: dict[str, Any]) -> None:
        feature = catalog.chosen_feature(segment.project_id, form.feature_id.data)
        segment_overrides.create_override(segment, feature, environment_id, current_user, **fields)

    return _save_override(form, segment, environment_id, save)


@bp.put("/<id:segment_id>/overrides/<id:override_id>")
@role_required("editor")
def update_override(environment_id: int, segment_id: int, override_id: int) -> Response:
    """Change an override inline (enabled, value, priority, allocations); stale: 409."""
    segment = definitions.get_segment(g.project.id, segment_id)
    row = segment_overrides.get_override(segment, override_id, environment_id)
    form = SegmentOverrideEditForm()
    return _save_override(form, segment, environment_id, lambda fields: (
        segment_overrides.update_override(row, current_user, version=form.version.data,
                                          **fields)))  # fmt: skip


@bp.delete("/<id:segment_id>/overrides/<id:override_id>")
@role_required("editor")
def delete_override(environment_id: int, segment_id: int, override_id: int) -> Response:
    """Remove an override; one changed since the page showed it is refused with 409."""
    segment = definitions.get_segment(g.project.id, segment_id)
    row = segment_overrides.get_override(segment, override_id, environment_id)
    form = VersionedDeleteForm.from_request()
    if not form.validate_on_submit():
        return _overrides_response(segment, environment_id, {"form": _first_error(form)}, 422)
    try:
        segment_overrides.delete_override(row, current_user, version=form.version.data)
    except Conflict as exc:
        return _overrides_response(segment, environment_id, {"form": str(exc)}, 409)
    return _overrides_response(segment, environment_id, {}, 200)


def _save_override(
    form: SegmentOverrideForm, segment: Any, environment_id: int, save: Any
) -> Response:
    if not form.validate_on_submit():
        return _overrides_response(segment, environment_id, {"form": _first_error(form)}, 422)
    try:
        value = values.parse_value(form.value_type.data, form.value.data, values.FLAG)
        save({"enabled": form.enabled.data, "value": value, "priority": form.priority.data,
              "allocations": allocations_of(form)})  # fmt: skip
    except ValidationError as exc:
        return _overrides_response(segment, environment_id, {"form": str(exc)}, 422)
    except Conflict as exc:
        return _overrides_response(segment, environment_id, {"form": str(exc)}, 409)
    return _overrides_response(segment, environment_id, {}, 200)


def _first_error(form: Any) -> str:
    return first_error(form.errors) or "Invalid input."


def _overrides_context(
    segment: Any, environment_id: int, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    features = segment_overrides.available_features(segment, environment_id)
    rows = segment_overrides.list_overrides(segment, environment_id)
    new_form = SegmentOverrideForm()
    new_form.feature_id.choices = [(f.id, f.name) for f in features]
    return {
        "rows": rows,
        "kinds": {row.id: values.editor_kind(row.value) for row in rows},
        "new_form": new_form,
        "form": SegmentOverrideForm(),
        "errors": errors or {},
        "has_features": bool(features),
    }


def _overrides_response(
    segment: Any, environment_id: int, errors: dict[str, str], status: int
) -> Response:
    context = _overrides_context(segment, environment_id, errors)
    html = render_template(
        "segments/_overrides.html", segment=segment, overrides=context, can_edit=_can_edit()
    )
    return make_response(html, status)
