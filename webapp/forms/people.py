"""Forms of the people pages: invitations, roles, and passwords."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from wtforms import EmailField, PasswordField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from ..models import ROLES, Project
from .base import FlaskForm

ROLE_CHOICES = [SelectChoice("", "No role"), *(SelectChoice(role, role) for role in ROLES)]
EVERYWHERE = "role_all"
PASSWORD_LIMIT = 1024


def project_field(project_id: int) -> str:
    """Return the name of the role field for one project."""
    return f"role_{project_id}"


class RolesForm(FlaskForm):  # type: ignore[misc]
    """A role for every project and one for all projects; fields are added per request."""

    def grants(self, projects: Iterable[Project]) -> dict[int | None, str]:
        """Return the chosen roles: project id (None: every project) -> role ("" for none)."""
        chosen: dict[int | None, str] = {None: self[EVERYWHERE].data or ""}
        for project in projects:
            chosen[project.id] = self[project_field(project.id)].data or ""
        return chosen


class InviteForm(RolesForm):  # type: ignore[misc]
    email = EmailField("Email", validators=[DataRequired("Enter an email address."),
                                            Length(max=254)])  # fmt: skip


def with_roles(
    base: type[RolesForm],
    projects: Iterable[Project],
    grants: Mapping[int | None, str] | None = None,
    **kwargs: Any,
) -> RolesForm:
    """Build a ``base`` form with a role field per project, pre-filled from ``grants``."""
    grants = grants or {}

    class Form(base):  # type: ignore[valid-type,misc]
        pass

    field = SelectField("Every project",
                        choices=ROLE_CHOICES, default=grants.get(None, ""))  # fmt: skip
    setattr(Form, EVERYWHERE, field)
    for project in projects:
        select = SelectField(project.name, choices=ROLE_CHOICES, default=grants.get(project.id, ""))
        setattr(Form, project_field(project.id), select)
    return Form(**kwargs)


class SetPasswordForm(FlaskForm):  # type: ignore[misc]
    """Choose a password through an invitation or reset link."""

    password = PasswordField("New password", validators=[DataRequired("Choose a password."),
                                                         Length(max=PASSWORD_LIMIT)])  # fmt: skip
    confirm = PasswordField("Repeat the new password", validators=[
        DataRequired("Repeat the password."), EqualTo("password", "The passwords differ.")
    ])  # fmt: skip


class ChangePasswordForm(FlaskForm):  # type: ignore[misc]
    """Change one's own password."""

    current_password = PasswordField("Current password", validators=[
        DataRequired("Enter your current password."), Length(max=PASSWORD_LIMIT)
    ])  # fmt: skip
    new_password = PasswordField("New password", validators=[
        DataRequired("Choose a new password."), Length(max=PASSWORD_LIMIT)
    ])  # fmt: skip
    confirm = PasswordField("Repeat the new password", validators=[
        DataRequired("Repeat the new password."), EqualTo("new_password", "The passwords differ.")
    ])  # fmt: skip
