"""Forms for projects and environments administration."""

from wtforms import BooleanField, StringField
from wtforms.validators import InputRequired, Length

from .base import FlaskForm
from .ids import IdSelectField

NAME_RULE = "A name of 1 to 200 characters."


def _name(label: str) -> StringField:
    return StringField(label, validators=[Length(max=200, message=NAME_RULE)])


class ProjectForm(FlaskForm):  # type: ignore[misc]
    organisation_id = IdSelectField(
        "Organisation", validators=[InputRequired("Choose an organisation.")]
    )
    name = _name("Project name")


class NameForm(FlaskForm):  # type: ignore[misc]
    """A new name for a project or an environment (the service checks it)."""

    name = _name("Name")


class DeleteForm(FlaskForm):  # type: ignore[misc]
    """Deleting needs the name typed exactly (the service compares it)."""

    confirm = StringField("Type the name to confirm", validators=[Length(max=200)])


class CloneForm(FlaskForm):  # type: ignore[misc]
    name = _name("Name of the copy")
    with_identities = BooleanField("Also copy identities, their traits and identity overrides")


class CompareForm(FlaskForm):  # type: ignore[misc]
    """The two environments to compare (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    left = IdSelectField("Left")
    right = IdSelectField("Right")
