"""Projects and environments administration: create, rename, delete, clone, compare."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from ..access import role_required
from ..forms import CloneForm, CompareForm, DeleteForm, NameForm, ProjectForm
from ..forms.base import first_error
from ..services import environments
from ..services.errors import ValidationError
from ..services.projects import admin, clone, compare

bp = Blueprint("projects", __name__)

Page = str | tuple[str, int]


def _organisations() -> list[Any]:
    """The organisations the user may add projects to; 403 when there is none."""
    found = admin.admin_organisations(current_user)
    if not found:
        abort(403)
    return found


def _project_form(blank: bool = False) -> ProjectForm:
    form = ProjectForm(formdata=None) if blank else ProjectForm()
    form.organisation_id.choices = [(o.id, o.name) for o in _organisations()]
    return form


@bp.get("/projects/new")
@login_required
def new() -> str:
    """Show the form for a new project."""
    return render_template("projects/new.html", form=_project_form(blank=True))


@bp.post("/projects")
@login_required
def create() -> Response | tuple[str, int]:
    """Create a project (its creator becomes its admin); a refused name re-renders with 422."""
    form = _project_form()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form.errors) or "The project was not created.")
        project = admin.create_project(form.organisation_id.data, form.name.data, current_user)
    except ValidationError as exc:
        return render_template("projects/new.html", form=form, error=str(exc)), 422
    flash(f"Project “{project.name}” created. Add its first environment.", "success")
    return redirect(url_for("projects.detail", project_id=project.id))


def _detail_page(status: int = 200, **forms: Any) -> Page:
    project = g.project
    page = render_template(
        "projects/detail.html",
        project=project,
        summaries=[environments.summarise(env) for env in project.environments],
        rename_form=forms.get("rename_form") or NameForm(formdata=None, name=project.name),
        environment_form=forms.get("environment_form") or NameForm(formdata=None),
        compare_form=_compare_form(project, None),
        error=forms.get("error"),
    )
    return (page, status) if status != 200 else page


@bp.get("/projects/<id:project_id>")
@role_required("admin")
def detail(project_id: int) -> Page:
    """Show a project's environments with what each holds, and the admin actions."""
    return _detail_page()


@bp.post("/projects/<id:project_id>/rename")
@role_required("admin")
def rename(project_id: int) -> Response | Page:
    """Rename the project; a refused name re-renders the page with 422."""
    form = NameForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form.errors) or "The name was not saved.")
        if admin.rename_project(g.project, form.name.data, current_user):
            flash("Project renamed.", "success")
    except ValidationError as exc:
        return _detail_page(422, rename_form=form, error=str(exc))
    return redirect(url_for("projects.detail", project_id=project_id))


@bp.get("/projects/<id:project_id>/delete")
@role_required("admin")
def confirm_delete(project_id: int) -> str:
    """Show what deleting the project removes, and ask for its name."""
    return render_template(
        "projects/delete.html", what="project", name=g.project.name,
        losses=admin.project_losses(g.project), form=DeleteForm(formdata=None),
        action=url_for("projects.delete", project_id=project_id),
        back=url_for("projects.detail", project_id=project_id),
    )  # fmt: skip


@bp.post("/projects/<id:project_id>/delete")
@role_required("admin")
def delete(project_id: int) -> Response | tuple[str, int]:
    """Delete the project once its name is typed; otherwise the confirmation again, 422."""
    form = DeleteForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form.errors) or "Type the name to confirm.")
        name = g.project.name
        admin.delete_project(g.project, form.confirm.data, current_user)
    except ValidationError as exc:
        return render_template(
            "projects/delete.html", what="project", name=g.project.name,
            losses=admin.project_losses(g.project), form=form, error=str(exc),
            action=url_for("projects.delete", project_id=project_id),
            back=url_for("projects.detail", project_id=project_id),
        ), 422  # fmt: skip
    flash(f"Project “{name}” deleted.", "success")
    return redirect(url_for("dashboard.index"))


@bp.post("/projects/<id:project_id>/environments")
@role_required("admin")
def create_environment(project_id: int) -> Response | Page:
    """Add an environment (every flag off); a refused name re-renders the page with 422."""
    form = NameForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form.errors) or "The environment was not created.")
        environment = admin.create_environment(g.project, form.name.data, current_user)
    except ValidationError as exc:
        return _detail_page(422, environment_form=form, error=str(exc))
    flash(f"Environment “{environment.name}” created.", "success")
    return redirect(url_for("projects.detail", project_id=project_id))


@bp.post("/environments/<id:environment_id>/rename")
@role_required("admin")
def rename_environment(environment_id: int) -> Response | Page:
    """Rename an environment; a refused name re-renders the project page with 422."""
    form = NameForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form.errors) or "The name was not saved.")
        if admin.rename_environment(g.environment, form.name.data, current_user):
            flash("Environment renamed.", "success")
    except ValidationError as exc:
        return _detail_page(422, error=str(exc))
    return redirect(url_for("projects.detail", project_id=g.project.id))


def _environment_delete_page(form: DeleteForm, error: str | None = None) -> str:
    env = g.environment
    return render_template(
        "projects/delete.html", what="environment", name=env.name,
        losses=admin.environment_losses(env), form=form, error=error,
        action=url_for("projects.delete_environment", environment_id=env.id),
        back=url_for("projects.detail", project_id=env.project_id),
    )  # fmt: skip


@bp.get("/environments/<id:environment_id>/delete")
@role_required("admin")
def confirm_delete_environment(environment_id: int) -> str:
    """Show what deleting the environment removes, and ask for its name."""
    return _environment_delete_page(DeleteForm(formdata=None))


@bp.post("/environments/<id:environment_id>/delete")
@role_required("admin")
def delete_environment(environment_id: int) -> Response | tuple[str, int]:
    """Delete the environment once its name is typed; otherwise the confirmation, 422."""
    form = DeleteForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form.errors) or "Type the name to confirm.")
        name, project_id = g.environment.name, g.environment.project_id
        admin.delete_environment(g.environment, form.confirm.data, current_user)
    except ValidationError as exc:
        return _environment_delete_page(form, str(exc)), 422
    flash(f"Environment “{name}” deleted.", "success")
    return redirect(url_for("projects.detail", project_id=project_id))


@bp.get("/environments/<id:environment_id>/clone")
@role_required("admin")
def clone_form(environment_id: int) -> str:
    """Show the clone form."""
    form = CloneForm(formdata=None, name=f"{g.environment.name} copy"[:200])
    return render_template("projects/clone.html", form=form)


@bp.post("/environments/<id:environment_id>/clone")
@role_required("admin")
def clone_environment(environment_id: int) -> Response | tuple[str, int]:
    """Clone the environment; a refused name re-renders the form with 422."""
    form = CloneForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(first_error(form.errors) or "The copy was not made.")
        request_ = clone.CloneRequest(form.name.data, bool(form.with_identities.data))
        copy = clone.clone_environment(g.environment, request_, current_user)
    except ValidationError as exc:
        return render_template("projects/clone.html", form=form, error=str(exc)), 422
    flash(f"“{g.environment.name}” cloned into “{copy.name}”.", "success")
    return redirect(url_for("projects.detail", project_id=g.project.id))


def _compare_form(project: Any, formdata: Any) -> CompareForm:
    form = CompareForm(formdata=formdata)
    choices = [(env.id, env.name) for env in project.environments]
    form.left.choices = form.right.choices = choices
    if formdata is None and len(choices) > 1:
        form.left.data, form.right.data = choices[0][0], choices[1][0]
    return form


@bp.get("/projects/<id:project_id>/compare")
@role_required("viewer")
def compare_environments(project_id: int) -> Page:
    """Compare two environments of the project, feature by feature, differences first."""
    form = _compare_form(g.project, formdata=request.args or None)
    form.validate()
    error = result = None
    if request.args:  # the first visit shows the chooser alone
        by_id = {env.id: env for env in g.project.environments}
        left, right = by_id.get(form.left.data), by_id.get(form.right.data)
        error = first_error(form.errors)
        if not error and (left is None or right is None):
            error = "Choose two environments of this project."
        result = compare.compare_environments(left, right) if left and right else None
    page = render_template(
        "projects/compare.html", project=g.project, form=form, result=result, error=error
    )
    return (page, 422) if error else page
