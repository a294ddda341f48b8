"""Forms for logging in and for environment keys."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):  # type: ignore[misc]
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in")


class ServerKeyForm(FlaskForm):  # type: ignore[misc]
    name = StringField("Key name", validators=[DataRequired(), Length(max=200)])


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """A form with nothing but its CSRF token, for one-button actions."""
