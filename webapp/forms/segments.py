"""Forms of the Segments page: the rule builder, deletion and segment overrides."""

from __future__ import annotations

from typing import Any

from wtforms import (
    BooleanField,
    FieldList,
    FloatField,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from ..evaluation.operators import OPERATORS, VERSION_WIDGET, Widget, lookup
from ..evaluation.semver import SEMVER_SUFFIX as SEMVER
from ..services import values
from .base import FlaskForm, Form
from .ids import IdField, IdSelectField
from .versions import version_field

# Every operator, in the registry's order, then the semver variants as "<OPERATOR>:semver"
# (the value gets the suffix).
OPERATOR_CHOICES = [(o.name, o.label) for o in OPERATORS.values()] + [
    (o.name + SEMVER, f"{o.label} (semver)") for o in OPERATORS.values() if o.semver
]
GROUP_TYPES = [("ANY", "any of"), ("ALL", "all of"), ("NONE", "none of")]
TOP_TYPES = [("ALL", "all groups"), ("ANY", "any group")]
SPECIAL_PROPERTIES = [
    ("$.identity.identifier", "Identifier"),
    ("$.identity.key", "Identity key"),
    ("$.environment.name", "Environment name"),
]


MAX_GROUPS, MAX_CONDITIONS = 50, 100


def _at_most(count: int, message: str) -> Any:
    """A FieldList validator refusing more than ``count`` entries.

    Not ``max_entries``: that silently drops the extra rows (saving a truncated segment)
    and makes ``append_entry`` fail with an AssertionError at the limit.
    """

    def check(form: Any, field: Any) -> None:
        if len(field.entries) > count:
            raise ValidationError(message)

    return check


class ConditionForm(Form):  # type: ignore[misc]
    """One condition row; validation of the value happens on the whole rule tree."""

    property_ = StringField("Property", validators=[Length(max=1000)])
    operator = SelectField("Operator", choices=OPERATOR_CHOICES, default="EQUAL")
    value = StringField("Value", validators=[Length(max=10_000)])

    @property
    def widget(self) -> Widget | None:
        """The value input the chosen operator asks for (None: it takes no value)."""
        name = self.operator.data or "EQUAL"
        if name.endswith(SEMVER):
            return VERSION_WIDGET
        return lookup(name).widget


class GroupForm(Form):  # type: ignore[misc]
    type = SelectField("Group", choices=GROUP_TYPES, default="ANY")
    conditions = FieldList(
        FormField(ConditionForm),
        validators=[_at_most(MAX_CONDITIONS, f"A group has at most {MAX_CONDITIONS} conditions.")],
    )


class SegmentForm(FlaskForm):  # type: ignore[misc]
    """The rule builder: name, top-level quantifier and groups of conditions."""

    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Length(max=2000)])
    match = SelectField("Match", choices=TOP_TYPES, default="ALL")
    groups = FieldList(
        FormField(GroupForm),
        validators=[_at_most(MAX_GROUPS, f"A segment has at most {MAX_GROUPS} groups.")],
    )
    version = HiddenField()
    # Builder actions ("add-group", "add-condition:<g>", "remove-condition:<g>:<c>", ...).
    action = HiddenField()
    preview_environment = HiddenField()


class PreviewForm(SegmentForm):
    """The builder posted for a preview: the name may still be empty."""

    name = StringField("Name", validators=[Length(max=200)])


class AllocationForm(Form):  # type: ignore[misc]
    """One multivariate option's percentage in a segment override."""

    option_id = IdField("Option")
    percentage = FloatField("%", validators=[Optional(), NumberRange(0, 100)])


class SegmentOverrideForm(FlaskForm):  # type: ignore[misc]
    feature_id = IdSelectField("Feature")
    enabled = BooleanField("Enabled")
    # The same kinds as identity overrides; "no value" first-class and the default, so an
    # override that only ticks "Enabled" keeps every member's value null.
    value_type = SelectField(
        "Type",
        choices=[SelectChoice(k, values.KIND_LABELS[k]) for k in values.FLAG_KINDS],
        default=values.NULL,
    )
    value = StringField("Value", validators=[Length(max=values.FLAG_STRING_MAX)])
    priority = IntegerField("Priority", validators=[Optional(), NumberRange(-(2**31), 2**31 - 1)])
    allocations = FieldList(FormField(AllocationForm), min_entries=0, max_entries=100)


class SegmentOverrideEditForm(SegmentOverrideForm):
    """An inline override edit, with the version the page showed."""

    version = version_field()


class DeleteForm(FlaskForm):  # type: ignore[misc]
    """Nothing but the CSRF token, for deletions."""


def form_to_rules(form: SegmentForm) -> list[dict[str, Any]]:
    """Build the Flagsmith-shaped rules from the builder's posted state."""
    groups = []
    for group in form.groups:
        conditions = [_condition(c.form) for c in group.form.conditions]
        groups.append({"type": group.form.type.data, "rules": [], "conditions": conditions})
    return [{"type": form.match.data or "ALL", "rules": groups, "conditions": []}]


def _condition(form: ConditionForm) -> dict[str, Any]:
    operator = form.operator.data or "EQUAL"
    value: str | None = form.value.data or ""
    if operator.endswith(SEMVER):
        operator = operator.removesuffix(SEMVER)
        value = f"{value}{SEMVER}" if not str(value).endswith(SEMVER) else value
    if not lookup(operator).takes_value:
        value = None
    return {"operator": operator, "property_": (form.property_.data or "").strip(), "value": value}


def fits_builder(rules: list[dict[str, Any]]) -> bool:
    """Tell whether the builder (a top ALL/ANY over flat groups) shows ``rules`` faithfully.

    Flagsmith rules nest freely, and a rule holds when its conditions *and* its nested rules
    satisfy its quantifier; flattening deeper trees (or a top-level ANY's own conditions)
    into groups would change which identities match. Builder-made rules always fit.
    """
    if len(rules) == 1:
        top = rules[0]
        if top.get("type") not in dict(TOP_TYPES):
            return False
        if top.get("conditions") and top.get("type") != "ALL":
            return False
        groups = top.get("rules") or []
    else:
        groups = rules  # several top-level rules must all hold: the builder's top ALL
    return all(g.get("type") in dict(GROUP_TYPES) and not g.get("rules") for g in groups)


def rules_to_formdata(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Turn stored rules into builder data; faithful only when ``fits_builder(rules)``."""
    top = rules[0] if len(rules) == 1 else {"type": "ALL", "rules": rules, "conditions": []}
    groups = []
    if top.get("conditions"):
        groups.append({"type": "ALL", "conditions": top["conditions"]})
    for rule in top.get("rules") or []:
        groups.append({"type": rule.get("type", "ANY"), "conditions": rule.get("conditions") or []})
    return {
        "match": top.get("type") if top.get("type") in ("ALL", "ANY") else "ALL",
        "groups": [
            {"type": g["type"], "conditions": [_condition_data(c) for c in g["conditions"]]}
            for g in groups
        ],
    }


def _condition_data(condition: dict[str, Any]) -> dict[str, Any]:
    operator, value = condition.get("operator", "EQUAL"), condition.get("value")
    if isinstance(value, str) and value.endswith(SEMVER) and lookup(operator).semver:
        operator, value = operator + SEMVER, value.removesuffix(SEMVER)
    return {"property_": condition.get("property_") or "", "operator": operator,
            "value": "" if value is None else str(value)}  # fmt: skip


def apply_action(form: SegmentForm) -> bool:
    """Apply an add/remove builder action to the posted form; return True if one ran."""
    action = (form.action.data or "").split(":")
    form.action.data = ""
    try:
        numbers = [int(part) for part in action[1:]]
    except ValueError:
        return False
    return _ACTIONS.get(action[0], _no_action)(form, numbers)


def _add_group(form: SegmentForm, numbers: list[int]) -> bool:
    form.groups.append_entry({"type": "ANY", "conditions": [{"operator": "EQUAL"}]})
    return True


def _remove_group(form: SegmentForm, numbers: list[int]) -> bool:
    kept = [g.data for i, g in enumerate(form.groups) if [i] != numbers[:1]]
    _reset(form.groups, kept)
    return True


def _add_condition(form: SegmentForm, numbers: list[int]) -> bool:
    if not numbers or numbers[0] >= len(form.groups):
        return False
    form.groups[numbers[0]].form.conditions.append_entry({"operator": "EQUAL"})
    return True


def _remove_condition(form: SegmentForm, numbers: list[int]) -> bool:
    if len(numbers) != 2 or numbers[0] >= len(form.groups):
        return False
    conditions = form.groups[numbers[0]].form.conditions
    _reset(conditions, [c.data for i, c in enumerate(conditions) if i != numbers[1]])
    return True


def _reset(field: FieldList, items: list[Any]) -> None:
    while len(field.entries):
        field.pop_entry()
    for item in items:
        field.append_entry(item)


def _no_action(form: SegmentForm, numbers: list[int]) -> bool:
    return False


_ACTIONS = {
    "add-group": _add_group,
    "remove-group": _remove_group,
    "add-condition": _add_condition,
    "remove-condition": _remove_condition,
}


def allocations_of(form: SegmentOverrideForm) -> dict[int, float]:
    """Return the posted allocations by option id (blank percentages are skipped)."""
    found: dict[int, float] = {}
    for entry in form.allocations:
        option_id, percentage = entry.form.option_id.data, entry.form.percentage.data
        if percentage is not None and option_id is not None:
            found[option_id] = float(percentage)
    return found
