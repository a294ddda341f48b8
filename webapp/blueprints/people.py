"""People: the organisation page (organisation admins), account links, one's own password."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, login_user
from werkzeug.wrappers import Response

from ..clock import utcnow
from ..forms import ConfirmForm
from ..forms.people import (
    ChangePasswordForm,
    InviteForm,
    RolesForm,
    SetPasswordForm,
    with_roles,
)
from ..services import mailer, people
from ..services.errors import DomainError, NotFound, ValidationError

bp = Blueprint("people", __name__)
F = TypeVar("F", bound=Callable[..., Any])
Page = str | Response | tuple[str, int]
LINK_WORDS = {
    "invitation": ("Invitation to Flagpost", "accept-invitation", "people.accept_invitation"),
    "password_reset": ("Choose a new Flagpost password", "reset-password", "people.reset_password"),
}


def org_admin_required(view: F) -> F:
    """Require a logged-in organisation admin (services/people.py says who that is)."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not people.is_org_admin(current_user):
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapped)


def _index_page(invite_form: RolesForm, status: int = 200) -> tuple[str, int]:
    page = render_template(
        "people/index.html", people=people.list_people(), projects=people.list_projects(),
        invite_form=invite_form, events=people.recent_events(), action_form=ConfirmForm(),
    )  # fmt: skip
    return page, status


@bp.get("/people")
@org_admin_required
def index() -> Page:
    """List every account with its roles; invite form."""
    return _index_page(with_roles(InviteForm, people.list_projects()))


@bp.post("/people/invitations")
@org_admin_required
def invite() -> Page:
    """Invite a colleague: create the pending account and show its one-time link."""
    projects = people.list_projects()
    form = with_roles(InviteForm, projects)
    if form.validate_on_submit():
        try:
            link = people.invite(current_user, form.email.data, form.grants(projects), utcnow())
        except ValidationError as exc:
            if exc.field == "email":
                form.email.errors = [*form.email.errors, str(exc)]
            else:
                form.form_errors.append(str(exc))
        else:
            return _link_page(link)
    return _index_page(form, 422)


def _link_page(link: people.IssuedLink) -> tuple[str, int]:
    """Show a just-issued link to copy, and mail it when SMTP is configured."""
    subject, _, endpoint = LINK_WORDS[link.purpose]
    url = url_for(endpoint, token=link.token, _external=True)
    mail_problem = None
    if mailer.is_configured(current_app.config):
        body = (
            f"{current_user.email} sent you this link for Flagpost:\n\n{url}\n\n"
            f"It can be used once and expires on {link.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        )
        mail_problem = mailer.send(current_app.config, link.user.email, subject, body)
    page = render_template(
        "people/link.html", link=link, url=url, mailed=mailer.is_configured(current_app.config),
        mail_problem=mail_problem,
    )  # fmt: skip
    return page, 200


def _detail_page(user: Any, form: RolesForm | None = None, status: int = 200) -> tuple[str, int]:
    projects = people.list_projects()
    form = form or with_roles(RolesForm, projects, people.grants_of(user))
    page = render_template(
        "people/detail.html", person=user, status_word=people.status_of(user), form=form,
        projects=projects, action_form=ConfirmForm(),
    )  # fmt: skip
    return page, status


@bp.get("/people/<id:user_id>")
@org_admin_required
def detail(user_id: int) -> Page:
    """Show one account: its roles to change and its actions."""
    return _detail_page(people.get_person(user_id))


@bp.post("/people/<id:user_id>/roles")
@org_admin_required
def update_roles(user_id: int) -> Page:
    """Replace the account's roles."""
    user = people.get_person(user_id)
    projects = people.list_projects()
    form = with_roles(RolesForm, projects)
    if form.validate_on_submit():
        try:
            people.set_roles(current_user, user_id, form.grants(projects))
        except DomainError as exc:
            form.form_errors.append(str(exc))
            return _detail_page(user, form, exc.status)
        flash(f"Roles of {user.email} saved.", "success")
        if not people.is_org_admin(current_user):  # an admin who just stepped down
            return redirect(url_for("dashboard.index"))
        return redirect(url_for("people.detail", user_id=user_id))
    return _detail_page(user, form, 422)


@bp.post("/people/<id:user_id>/disable")
@org_admin_required
def disable(user_id: int) -> Page:
    """Disable the account; its open sessions end on their next request."""
    return _set_enabled(user_id, False)


@bp.post("/people/<id:user_id>/enable")
@org_admin_required
def enable(user_id: int) -> Page:
    """Let a disabled account log in again."""
    return _set_enabled(user_id, True)


def _set_enabled(user_id: int, enabled: bool) -> Page:
    user = people.get_person(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        people.set_enabled(current_user, user_id, enabled)
    except DomainError as exc:
        form = with_roles(RolesForm, people.list_projects(), people.grants_of(user))
        form.form_errors.append(str(exc))
        return _detail_page(user, form, exc.status)
    flash(f"{user.email} is {'enabled' if enabled else 'disabled'}.", "success")
    return redirect(url_for("people.detail", user_id=user_id))


@bp.post("/people/<id:user_id>/reset-link")
@org_admin_required
def reset_link(user_id: int) -> Page:
    """Issue a one-time password-reset link (a new invitation for an invited account)."""
    user = people.get_person(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        link = people.issue_reset_link(current_user, user_id, utcnow())
    except DomainError as exc:
        form = with_roles(RolesForm, people.list_projects(), people.grants_of(user))
        form.form_errors.append(str(exc))
        return _detail_page(user, form, exc.status)
    return _link_page(link)


@bp.get("/invitation/<token>")
def accept_invitation(token: str) -> Page:
    """Show the form that sets the invited account's password."""
    return _token_form("invitation", token, SetPasswordForm(), 200)


@bp.post("/invitation/<token>")
def accept_invitation_submit(token: str) -> Page:
    """Accept the invitation: set the password and log in."""
    return _use_token("invitation", token)


@bp.get("/password-reset/<token>")
def reset_password(token: str) -> Page:
    """Show the form that chooses a new password through a reset link."""
    return _token_form("password_reset", token, SetPasswordForm(), 200)


@bp.post("/password-reset/<token>")
def reset_password_submit(token: str) -> Page:
    """Set the new password through the reset link and log in."""
    return _use_token("password_reset", token)


def _token_form(purpose: str, token: str, form: SetPasswordForm, status: int) -> Page:
    try:
        row = people.find_link(token, purpose, utcnow())
    except NotFound as exc:
        return render_template("people/link_invalid.html", message=str(exc)), 404
    page = render_template(
        "people/set_password.html", form=form, email=row.user.email, purpose=purpose,
        action=url_for(LINK_WORDS[purpose][2] + "_submit", token=token),
    )  # fmt: skip
    return page, status


def _use_token(purpose: str, token: str) -> Page:
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            user = people.use_link(token, purpose, form.password.data, utcnow())
        except NotFound as exc:
            return render_template("people/link_invalid.html", message=str(exc)), 404
        except ValidationError as exc:
            form.password.errors = [*form.password.errors, str(exc)]
        else:
            login_user(user)
            flash("Your password is set. Welcome to Flagpost.", "success")
            return redirect(url_for("dashboard.index"))
    return _token_form(purpose, token, form, 422)


@bp.get("/account/password")
@login_required
def password() -> Page:
    """Show the form to change one's own password."""
    return render_template("people/password.html", form=ChangePasswordForm())


@bp.post("/account/password")
@login_required
def change_password() -> Page:
    """Change one's own password; other sessions of the account end."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user = people.change_password(
                current_user, form.current_password.data, form.new_password.data
            )
        except ValidationError as exc:
            target = form.current_password if exc.field == "current_password" else form.new_password
            target.errors = [*target.errors, str(exc)]
        else:
            login_user(user)  # this session carries on with the new session version
            flash("Your password is changed; your other sessions are logged out.", "success")
            return redirect(url_for("people.password"))
    return render_template("people/password.html", form=form), 422
