"""Forms for logging in and for environment keys."""

from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from .base import FlaskForm


class LoginForm(FlaskForm):  # type: ignore[misc]
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in")


KEY_NAME_RULE = "A key needs a name of 1 to 200 characters."


class ServerKeyForm(FlaskForm):  # type: ignore[misc]
    name = StringField(
        "Key name",
        validators=[DataRequired(KEY_NAME_RULE), Length(max=200, message=KEY_NAME_RULE)],
    )


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """A form with nothing but its CSRF token, for one-button actions."""
