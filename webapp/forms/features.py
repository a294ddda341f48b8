"""Forms for the Features page and the Audit log filters."""

from __future__ import annotations

import math
from typing import Any

from wtforms import (
    BooleanField,
    DateTimeLocalField,
    FieldList,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from ..models import OPTION_KEY_MAX
from ..services import values
from .base import FlaskForm, Form
from .ids import IdField, IdListField
from .versions import version_field

VALUE_KIND_CHOICES = [SelectChoice(k, values.KIND_LABELS[k]) for k in values.FLAG_KINDS]
VALUE_MAX = values.FLAG_STRING_MAX
TYPE_CHOICES = [SelectChoice("STANDARD", "Standard"), SelectChoice("MULTIVARIATE", "Multivariate")]


def percentage_of(text: str | None) -> float:
    """Parse a percentage field; refuse blanks, NaN, infinities and values outside 0..100."""
    try:
        number = float((text or "").strip())
    except ValueError:
        raise ValidationError("Enter a number from 0 to 100.") from None
    if not math.isfinite(number):
        raise ValidationError("Enter a number from 0 to 100 (not NaN or infinity).")
    if number < 0:
        raise ValidationError("A percentage cannot be negative.")
    if number > 100:
        raise ValidationError("A percentage cannot exceed 100.")
    return number


def _check_percentage(form: Any, field: Any) -> None:
    percentage_of(field.data)


class FeatureForm(FlaskForm):  # type: ignore[misc]
    """Create or edit a feature; the initial value only shows when creating."""

    name = StringField("Name", validators=[InputRequired(), Length(max=150)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=20_000)])
    type = SelectField("Type", choices=TYPE_CHOICES, default="STANDARD")
    server_key_only = BooleanField("Server-side keys only (hidden from client keys)")
    value_kind = SelectField(
        "Initial value type", choices=VALUE_KIND_CHOICES, default=values.NULL
    )
    value = StringField("Initial value (every environment)", validators=[Length(max=VALUE_MAX)])


class ToggleForm(FlaskForm):  # type: ignore[misc]
    """Set (not flip) enabled, so a double click cannot undo itself."""

    enabled = BooleanField("Enabled", false_values=("false", "0", "off", ""))
    version = version_field()


class ValueForm(FlaskForm):  # type: ignore[misc]
    value_kind = SelectField("Type", choices=VALUE_KIND_CHOICES)
    value = StringField("Value", validators=[Length(max=VALUE_MAX)])
    version = version_field()


class OptionForm(FlaskForm):  # type: ignore[misc]
    value_kind = SelectField("Type", choices=VALUE_KIND_CHOICES, default="string")
    value = StringField("Value", validators=[Length(max=VALUE_MAX)])
    key = StringField("Variant key", validators=[Optional(), Length(max=OPTION_KEY_MAX)])
    default_allocation = StringField(
        "Default %", default="0", validators=[InputRequired(), _check_percentage]
    )


class OptionValueForm(FlaskForm):  # type: ignore[misc]
    """Change an existing option's value (its id, and so every bucket, stays)."""

    value_kind = SelectField("Type", choices=VALUE_KIND_CHOICES, default="string")
    value = StringField("Value", validators=[Length(max=VALUE_MAX)])
    key = StringField("Variant key", validators=[Optional(), Length(max=OPTION_KEY_MAX)])


class AllocationEntry(Form):  # type: ignore[misc]
    """One option's percentage (a sub-form: CSRF lives on the outer form)."""

    option_id = IdField("Option", validators=[InputRequired()])
    percentage = StringField("Percentage", validators=[InputRequired(), _check_percentage])


class AllocationsForm(FlaskForm):  # type: ignore[misc]
    allocations = FieldList(FormField(AllocationEntry))
    version = version_field()

    def validate(self, extra_validators: Any = None) -> bool:
        """Validate, and repeat an option id's error for the page (its rows cannot show it)."""
        valid = bool(super().validate(extra_validators))
        for entry in self.allocations.entries:
            self.form_errors.extend(entry.form.option_id.errors)
        return valid

    def percentages(self) -> dict[int, float]:
        """Return option id -> percentage (call after a successful validation)."""
        return {
            entry.option_id.data: percentage_of(entry.percentage.data)
            for entry in self.allocations.entries
            if entry.option_id.data is not None
        }


class ReorderForm(FlaskForm):  # type: ignore[misc]
    """New order and the order the user saw, both as comma-separated override ids."""

    order = IdListField("Segment override", validators=[InputRequired()])
    expected = IdListField("Segment override", validators=[Optional()])


class AuditFilterForm(FlaskForm):  # type: ignore[misc]
    """GET filters for the audit page (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    environment = SelectField("Environment", choices=[], validate_choice=False)
    actor = SelectField("Actor", choices=[], validate_choice=False)
    object_type = SelectField("Object type", choices=[], validate_choice=False)
    identity = StringField("Identity (identifier)", validators=[Optional(), Length(max=2000)])
    since = DateTimeLocalField("From (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    until = DateTimeLocalField("Until (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    cursor = HiddenField()


class StaleFilterForm(FlaskForm):  # type: ignore[misc]
    """The Features list's stale filter (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    stale = SelectField(
        "Show",
        choices=[
            SelectChoice("", "All features"),
            SelectChoice("unused", "Not evaluated in the last N days"),
            SelectChoice("constant", "One value to every identity for N days"),
        ],
        default="",
    )
    days = IntegerField(
        "N (days)",
        default=30,
        validators=[Optional(), NumberRange(min=1, max=3650, message="Between 1 and 3650 days")],
    )
