"""Dashboard home and environment overview (with settings and server-side keys for admins)."""

from flask import Blueprint, flash, g, redirect, render_template, session, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from ..access import role_required
from ..forms import ConfirmForm, EnvironmentSettingsForm, ServerKeyForm
from ..forms.auth import KEY_NAME_RULE
from ..forms.base import first_error
from ..services import accounts, environments
from ..services.errors import ValidationError
from ..services.identities import editing_rights
from ..services.projects import admin as projects_admin

bp = Blueprint("dashboard", __name__)
NEW_KEY = "new_server_key_id"


@bp.get("/")
@login_required
def index() -> str:
    """List the user's projects and their environments."""
    accessible = accounts.accessible_projects(current_user)
    return render_template(
        "dashboard/index.html",
        projects=environments.summarise_projects(accessible),
        admin_of={p.id for p in accessible if accounts.has_role(current_user, p.id, "admin")},
        can_add_project=bool(projects_admin.admin_organisations(current_user)),
    )


@bp.get("/environments/<id:environment_id>")
@role_required("viewer")
def environment(environment_id: int) -> str:
    """Show one environment and remember it as the current one."""
    session["environment_id"] = environment_id
    # A key just created is shown in full on this one visit (its id, not the key, was kept).
    new_key = environments.just_created_key(g.environment, session.pop(NEW_KEY, None))
    return _environment_page(ServerKeyForm(), new_key=new_key)


def _environment_page(
    key_form: ServerKeyForm,
    settings_form: EnvironmentSettingsForm | None = None,
    new_key: object = None,
) -> str:
    summary = environments.summarise(g.environment)
    is_admin = accounts.has_role(current_user, g.project.id, "admin")
    settings = environments.settings_of(g.environment)
    return render_template(
        "dashboard/environment.html",
        summary=summary,
        is_admin=is_admin,
        key_form=key_form,
        confirm_form=ConfirmForm(),
        settings_form=settings_form or EnvironmentSettingsForm(formdata=None, obj=settings),
        links=editing_rights.environment_links(g.environment) if is_admin else [],
        new_key=new_key,
    )


@bp.post("/environments/<id:environment_id>/settings")
@role_required("admin")
def update_settings(environment_id: int) -> Response | tuple[str, int]:
    """Save the environment's settings; a refused form re-renders the page with 422."""
    form = EnvironmentSettingsForm()
    if not form.validate_on_submit():
        flash(first_error(form.errors) or "The settings were not saved.", "error")
        return _environment_page(ServerKeyForm(formdata=None), form), 422
    settings = environments.EnvironmentSettings(
        production=form.production.data,
        allow_client_traits=form.allow_client_traits.data,
        hide_disabled_flags=form.hide_disabled_flags.data,
    )
    if environments.update_settings(g.environment, settings, current_user):
        flash("Settings saved.", "success")
    return redirect(url_for("dashboard.environment", environment_id=environment_id))


@bp.post("/environments/<id:environment_id>/server-keys")
@role_required("admin")
def create_server_key(environment_id: int) -> Response | tuple[str, int]:
    """Create a server-side key and show it in full once; a bad name re-renders with 422."""
    form = ServerKeyForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError(next(iter(form.name.errors), KEY_NAME_RULE), "name")
        key = environments.create_server_key(g.environment, form.name.data, current_user)
    except ValidationError as exc:
        flash(str(exc), "error")  # shown by the re-rendered page, next to the keys
        return _environment_page(form), 422
    # The next page shows it once. Only its id goes in the session cookie, never the key, and
    # a redirect keeps a reload from creating a second key.
    session[NEW_KEY] = key.id
    return redirect(url_for("dashboard.environment", environment_id=environment_id))


@bp.post("/environments/<id:environment_id>/server-keys/<id:key_id>/revoke")
@role_required("admin")
def revoke_server_key(environment_id: int, key_id: int) -> Response:
    """Revoke a server-side key."""
    if ConfirmForm().validate_on_submit():
        key = environments.revoke_server_key(g.environment, key_id, current_user)
        flash(f"Server key “{key.name}” revoked.", "success")
    return redirect(url_for("dashboard.environment", environment_id=environment_id))
