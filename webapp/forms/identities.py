"""Forms of the Identity page: overrides (with expiry), traits and "This is me"."""

from wtforms import DateTimeLocalField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from ..services import values
from .base import FlaskForm
from .ids import IdField
from .versions import token_field, version_field

EXPIRY_CHOICES = [
    SelectChoice("never", "never"),
    SelectChoice("1h", "in 1 hour"),
    SelectChoice("1d", "in 1 day"),
    SelectChoice("1w", "in 1 week"),
    SelectChoice("custom", "at…"),
]
OVERRIDE_KINDS = [SelectChoice(k, values.KIND_LABELS[k]) for k in values.FLAG_KINDS]
TRAIT_KINDS = [SelectChoice(k, values.KIND_LABELS[k]) for k in values.TRAIT_KINDS]


class ExpiryForm(FlaskForm):  # type: ignore[misc]
    """The expiry picker every override action includes (default: never)."""

    expires = SelectField(
        "Overrides expire", choices=EXPIRY_CHOICES, default="never", validate_choice=True
    )
    expires_at = DateTimeLocalField(
        "Expiry (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )


class ToggleOverrideForm(ExpiryForm):
    """Flip the flag for this identity (the page's expiry picker renders only the expiry)."""

    version = version_field()


class OverrideValueForm(ExpiryForm):
    value = TextAreaField("Value", validators=[Length(max=values.FLAG_STRING_MAX)])
    value_type = SelectField("Type", choices=OVERRIDE_KINDS, default="string")
    version = version_field()


class OptionForm(ExpiryForm):
    option_id = IdField("Option", validators=[InputRequired()])
    version = version_field()


class TraitForm(FlaskForm):  # type: ignore[misc]
    key = StringField(
        "Key", validators=[DataRequired(), Length(max=values.TRAIT_KEY_MAX)]
    )
    value = StringField("Value", validators=[Length(max=values.TRAIT_STRING_MAX)])
    value_type = SelectField("Type", choices=TRAIT_KINDS, default="infer")


class TraitEditForm(FlaskForm):  # type: ignore[misc]
    value = StringField("Value", validators=[Length(max=values.TRAIT_STRING_MAX)])
    value_type = SelectField("Type", choices=TRAIT_KINDS, default="infer")
    version = token_field()


class LinkForm(FlaskForm):  # type: ignore[misc]
    """ "This is me": a QA user proves it by typing the identifier; editors may name anyone."""

    proof = StringField(
        "Type the identifier to confirm", validators=[Length(max=values.IDENTIFIER_MAX)]
    )
    email = StringField("Link to (email, editors only)", validators=[Length(max=254)])
