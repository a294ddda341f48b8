"""Forms for logging in, environment keys and environment settings."""

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


class EnvironmentSettingsForm(FlaskForm):  # type: ignore[misc]
    """The admins' environment settings (an unticked box is sent as nothing: off)."""

    production = BooleanField("Production environment (real customers)")
    allow_client_traits = BooleanField("Store traits sent with the client-side key")
    hide_disabled_flags = BooleanField("Hide disabled flags from SDKs")


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """A form with nothing but its CSRF token, for one-button actions."""
