"""Forms of the Users page: create identities, trait columns and bulk actions."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    ValidationError,
    widgets,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..services.features import INTEGER_LIMIT
from .base import FlaskForm
from .ids import IdSelectField

VALUE_TYPES = [
    ("string", "Text"),
    ("integer", "Integer"),
    ("float", "Float"),
    ("boolean", "Boolean"),
    ("none", "No value"),
]
_INTEGER = re.compile(r"-?[0-9]+")
BULK_ACTION_CHOICES = [
    ("delete", "Delete the identities"),
    ("override", "Add an override for a feature"),
    ("remove_overrides", "Remove overrides"),
]


class CreateIdentitiesForm(FlaskForm):  # type: ignore[misc]
    identifiers = TextAreaField(
        "Identifiers (one per line)",
        validators=[DataRequired(message="Enter at least one identifier."), Length(max=2_100_000)],
        render_kw={"rows": 4, "placeholder": "alice@example.com\nbob@example.com"},
    )


class TraitColumnsForm(FlaskForm):  # type: ignore[misc]
    columns = SelectMultipleField(
        "Trait columns",
        validate_choice=False,
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )


def parse_typed_value(kind: str, raw: str) -> Any:
    """Turn the value box into a typed value of ``kind``; raise ValueError with a message."""
    raw = raw.strip()
    if kind == "none":
        return None
    if kind == "string":
        return raw
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise ValueError("A boolean value is true or false.")
        return raw.lower() == "true"
    if kind == "integer":
        if not _INTEGER.fullmatch(raw):
            raise ValueError(f"“{raw[:40]}” is not an integer.")
        if len(raw) > 20 or abs(int(raw)) > INTEGER_LIMIT:
            raise ValueError(f"Integers must lie within ±{INTEGER_LIMIT}.")
        return int(raw)
    try:
        number = float(raw)
    except ValueError:
        raise ValueError(f"“{raw}” is not a number.") from None
    if not math.isfinite(number):
        raise ValueError("The number must be finite.")
    return number


class BulkActionForm(FlaskForm):  # type: ignore[misc]
    """A bulk action on a search result; ``expected`` is set once the dry run was seen."""

    q = HiddenField(validators=[Length(max=1000)])
    has_overrides = HiddenField()
    action = SelectField("Action", choices=BULK_ACTION_CHOICES, validators=[InputRequired()])
    feature_id = IdSelectField("Feature")
    enabled = BooleanField("Enabled")
    value_type = SelectField("Value type", choices=VALUE_TYPES, default="none")
    value = StringField("Value", validators=[Optional(), Length(max=20_000)])
    expected = IntegerField(validators=[Optional(), NumberRange(min=0)])

    def validate_feature_id(self, field: Any) -> None:
        if self.action.data == "override" and field.data is None and not field.errors:
            raise ValidationError("Choose the feature to override.")

    def validate_value(self, field: Any) -> None:
        if self.action.data != "override":
            return
        try:
            parse_typed_value(self.value_type.data, field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    @property
    def typed_value(self) -> Any:
        return parse_typed_value(self.value_type.data, self.value.data or "")

    @property
    def feature(self) -> int | None:
        return self.feature_id.data

    @property
    def wants_overrides_only(self) -> bool:
        return str(self.has_overrides.data).lower() in ("1", "true", "on", "y")

    def describe_value(self) -> str:
        return json.dumps(self.typed_value)
