"""Forms of the Users page: create identities, trait columns and bulk actions."""

from __future__ import annotations

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
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..services import errors, humanize, values
from .base import FlaskForm
from .ids import IdListField, IdSelectField

MAX_SELECTED = 1000
VALUE_TYPES = [SelectChoice(kind, values.KIND_LABELS[kind]) for kind in values.FLAG_KINDS]
BULK_ACTION_CHOICES = [
    ("delete", "Delete the identities"),
    ("override", "Add an override for a feature"),
    ("remove_overrides", "Remove overrides"),
    ("erase", "Erase the identities (right to be forgotten)"),
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


class BulkActionForm(FlaskForm):  # type: ignore[misc]
    """A bulk action on a search result; ``expected`` is set once the dry run was seen."""

    q = HiddenField(validators=[Length(max=1000)])
    has_overrides = HiddenField()
    action = SelectField("Action", choices=BULK_ACTION_CHOICES, validators=[InputRequired()])
    feature_id = IdSelectField("Feature")
    enabled = BooleanField("Enabled")
    value_type = SelectField("Value type", choices=VALUE_TYPES, default=values.NULL)
    # No Optional(): an empty value must still be checked against its type.
    value = StringField("Value", validators=[Length(max=values.FLAG_STRING_MAX)])
    expected = IntegerField(validators=[Optional(), NumberRange(min=0)])
    # Rows ticked on the results page: the action then applies to those of the search only.
    selected = IdListField("Selected identities")

    def validate_selected(self, field: Any) -> None:
        if len(field.data or []) > MAX_SELECTED:
            raise ValidationError(f"Select at most {MAX_SELECTED:,} identities at once.")

    def validate_feature_id(self, field: Any) -> None:
        if self.action.data == "override" and field.data is None and not field.errors:
            raise ValidationError("Choose the feature to override.")

    def validate_value(self, field: Any) -> None:
        if self.action.data != "override":
            return
        try:
            values.parse_value(self.value_type.data, field.data, values.FLAG)
        except errors.ValidationError as exc:
            raise ValidationError(str(exc)) from None

    @property
    def typed_value(self) -> Any:
        return values.parse_value(self.value_type.data, self.value.data, values.FLAG)

    @property
    def feature(self) -> int | None:
        return self.feature_id.data

    @property
    def wants_overrides_only(self) -> bool:
        return str(self.has_overrides.data).lower() in ("1", "true", "on", "y")

    def describe_value(self) -> str:
        return humanize.value_text(self.typed_value)
