"""Audit log page: the project's and this environment's events, filtered, newest first."""

from __future__ import annotations

from datetime import UTC

from flask import Blueprint, g, make_response, request, session
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from ..access import role_required
from ..forms.features import AuditFilterForm
from ..htmx import render_page_or_partial
from ..services import audit_log, humanize
from ..services.errors import ValidationError

bp = Blueprint("audit", __name__)


def _filters(form: AuditFilterForm) -> audit_log.AuditFilters:
    since, until = form.since.data, form.until.data
    return audit_log.AuditFilters(
        environment=form.environment.data or "",
        actor=form.actor.data or "",
        object_type=form.object_type.data or "",
        identity=(form.identity.data or "").strip(),
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
    )


def _choices(form: AuditFilterForm) -> None:
    actors, types = audit_log.filter_choices(g.environment)
    form.environment.choices = [
        SelectChoice("", f"Project-level and {g.environment.name}"),
        SelectChoice(audit_log.PROJECT_LEVEL, "Project-level only"),
    ] + [SelectChoice(str(e.id), f"{e.name} only") for e in g.project.environments]
    form.actor.choices = [SelectChoice("", "Anyone")] + [SelectChoice(a, a) for a in actors]
    form.object_type.choices = [SelectChoice("", "Any object")] + [
        SelectChoice(t, humanize.object_label(t)) for t in types
    ]


@bp.get("/environments/<id:environment_id>/audit")
@role_required("viewer")
def index(environment_id: int) -> Response:
    """List audit events newest first with filters; htmx gets only the events."""
    session["environment_id"] = environment_id
    form = AuditFilterForm(formdata=request.args)
    _choices(form)
    page, status = None, 200
    if form.validate():
        try:
            page = audit_log.list_events(g.environment, _filters(form), form.cursor.data or None)
        except ValidationError as exc:
            getattr(form, exc.field or "cursor", form.cursor).errors = [str(exc)]
    if page is None:
        status = 422
    response = render_page_or_partial(
        "audit/index.html", "audit/_events.html", form=form, events=page, environment=g.environment
    )
    return make_response(response, status)
