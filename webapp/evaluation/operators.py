"""The condition operators: one declared entry per operator, carrying all its facets.

This registry is the one place an operator is listed. Each entry says how the operator
evaluates (``predicates``), what is wrong with a value (``value_checks``), which trait
values a counterfactual tries (``trial_values``), how the segment builder asks for its
value and names it, and how the Users-page search spells it. Every layer reads this:
evaluation and validation dispatch on it, the builder's form and template iterate it, the
search parser reads its spellings. The one impure facet, SQL translation, is attached by
``services.segment_sql_rows`` (``ROW_SQL``), and a test fails when an operator has none
there (not even an explicit "not translatable").

Adding an operator: write its builder (and, if needed, a check and trial values), declare
it below, give it an SQL entry, and the tests that iterate ``OPERATORS`` cover it.
"""

from __future__ import annotations

import operator as op
from collections.abc import Mapping
from dataclasses import dataclass

from .predicates import (
    Builder,
    Comparison,
    Predicate,
    build_in,
    build_is_not_set,
    build_is_set,
    build_modulo,
    build_not_contains,
    build_percentage_split,
    build_regex,
    by_precedence,
    typed_builder,
)
from .semver import version_contains
from .trial_values import (
    TrialValues,
    any_value,
    in_values,
    modulo_values,
    split_values,
    typed_values,
)
from .value_checks import (
    ValueCheck,
    check_in,
    check_modulo,
    check_nothing,
    check_regex,
    check_split,
    check_typed,
)

EQUAL = "EQUAL"
NOT_EQUAL = "NOT_EQUAL"
GREATER_THAN = "GREATER_THAN"
GREATER_THAN_INCLUSIVE = "GREATER_THAN_INCLUSIVE"
LESS_THAN = "LESS_THAN"
LESS_THAN_INCLUSIVE = "LESS_THAN_INCLUSIVE"
CONTAINS = "CONTAINS"
NOT_CONTAINS = "NOT_CONTAINS"
REGEX = "REGEX"
IN = "IN"
IS_SET = "IS_SET"
IS_NOT_SET = "IS_NOT_SET"
MODULO = "MODULO"
PERCENTAGE_SPLIT = "PERCENTAGE_SPLIT"


@dataclass(frozen=True, slots=True)
class Widget:
    """The segment builder's input for a condition value.

    ``label`` is the input's accessible name; ``attributes`` are further HTML attributes
    of the ``<input>``; ``chips`` echoes a comma-separated value as chips.
    """

    label: str
    placeholder: str
    attributes: tuple[tuple[str, str], ...] = ()
    chips: bool = False

    @property
    def html(self) -> dict[str, str]:
        """Return the input's HTML attributes (its class aside)."""
        return {"placeholder": self.placeholder, "aria-label": self.label, **dict(self.attributes)}


@dataclass(frozen=True, slots=True)
class Operator:
    """One condition operator and every facet of it.

    :ivar name: the Flagsmith spelling, stored in rules and documents
    :ivar label: the builder's name for it (its dropdown)
    :ivar build: evaluation: compiles (value, segment key) into a predicate
    :ivar check_value: validation: a message about a bad value, or None
    :ivar trial_values: counterfactual: trait values worth trying against a value
    :ivar widget: the builder's value input; None when the operator takes no value
        (the builder stores null, as Flagsmith does)
    :ivar comparison: for typed comparisons, the comparison the value is cast for
        (explain shows the cast; SQL translation compares by it)
    :ivar semver: the builder also offers ``<name>:semver`` (the value gets the suffix)
    :ivar split: a percentage split: hashes the segment key and the value into a bucket
        (explain shows it), and a blank property hashes the identity key
    :ivar search: how the Users-page search language writes it, if it can (the search
        runs its own SQL over stored traits: its ``~`` ignores case)
    """

    name: str
    label: str
    build: Builder
    check_value: ValueCheck
    trial_values: TrialValues
    widget: Widget | None
    comparison: Comparison | None
    semver: bool
    split: bool
    search: str | None

    @property
    def takes_value(self) -> bool:
        """Tell whether a condition with this operator has a value."""
        return self.widget is not None


VALUE_WIDGET = Widget("Value", "value")
# The widget of the builder's "<name>:semver" variants.
VERSION_WIDGET = Widget("Version", "1.2.3")


def _compared(
    name: str, label: str, comparison: Comparison, search: str, *, semver: bool = True
) -> Operator:
    """An operator that casts the value to the trait's type and compares."""
    return Operator(
        name=name,
        label=label,
        build=typed_builder(comparison),
        check_value=check_typed,
        trial_values=typed_values,
        widget=VALUE_WIDGET,
        comparison=comparison,
        semver=semver,
        split=False,
        search=search,
    )


def _declare(*operators: Operator) -> dict[str, Operator]:
    return {operator.name: operator for operator in operators}


# Declaration order is the builder's dropdown order.
OPERATORS: Mapping[str, Operator] = _declare(
    _compared(EQUAL, "=", Comparison(op.eq, by_precedence(lambda c: c == 0)), "="),
    _compared(NOT_EQUAL, "≠", Comparison(op.ne, by_precedence(lambda c: c != 0)), "!="),
    _compared(GREATER_THAN, ">", Comparison(op.gt, by_precedence(lambda c: c > 0)), ">"),
    _compared(
        GREATER_THAN_INCLUSIVE, "≥", Comparison(op.ge, by_precedence(lambda c: c >= 0)), ">="
    ),
    _compared(LESS_THAN, "<", Comparison(op.lt, by_precedence(lambda c: c < 0)), "<"),
    _compared(LESS_THAN_INCLUSIVE, "≤", Comparison(op.le, by_precedence(lambda c: c <= 0)), "<="),
    # Numbers and booleans never contain anything; a version contains its pre-release or
    # build string. The builder offers no semver variant.
    _compared(
        CONTAINS,
        "contains",
        Comparison(op.contains, version_contains, numbers=False),
        "~",
        semver=False,
    ),  # fmt: skip
    Operator(
        name=NOT_CONTAINS,
        label="does not contain",
        build=build_not_contains,
        check_value=check_typed,
        trial_values=typed_values,
        widget=VALUE_WIDGET,
        comparison=None,
        semver=False,
        split=False,
        search=None,
    ),
    Operator(
        name=REGEX,
        label="matches regex",
        build=build_regex,
        check_value=check_regex,
        trial_values=typed_values,
        widget=Widget("Regex", "regular expression (matched at the start)"),
        comparison=None,
        semver=False,
        split=False,
        search=None,
    ),
    Operator(
        name=IN,
        label="is one of",
        build=build_in,
        check_value=check_in,
        trial_values=in_values,
        widget=Widget("Values", "comma list, e.g. DE,FR", chips=True),
        comparison=None,
        semver=False,
        split=False,
        search="in",
    ),
    Operator(
        name=IS_SET,
        label="is set",
        build=build_is_set,
        check_value=check_nothing,
        trial_values=any_value,
        widget=None,
        comparison=None,
        semver=False,
        split=False,
        search="is set",
    ),
    Operator(
        name=IS_NOT_SET,
        label="is not set",
        build=build_is_not_set,
        check_value=check_nothing,
        trial_values=any_value,
        widget=None,
        comparison=None,
        semver=False,
        split=False,
        search="is not set",
    ),
    Operator(
        name=MODULO,
        label="modulo (divisor|remainder)",
        build=build_modulo,
        check_value=check_modulo,
        trial_values=modulo_values,
        widget=Widget(
            "Divisor|remainder", "divisor|remainder, e.g. 2|0", (("pattern", r"[^|]+\|[^|]+"),)
        ),
        comparison=None,
        semver=False,
        split=False,
        search=None,
    ),
    Operator(
        name=PERCENTAGE_SPLIT,
        label="percentage split",
        build=build_percentage_split,
        check_value=check_split,
        trial_values=split_values,
        widget=Widget(
            "Percentage",
            "0–100",
            (("type", "number"), ("min", "0"), ("max", "100"), ("step", "any")),
        ),
        comparison=None,
        semver=False,
        split=True,
        search=None,
    ),
)
SUPPORTED_OPERATORS: frozenset[str] = frozenset(OPERATORS)


def _never(trait: object) -> bool:
    return False


def _never_builder(value: str | None, segment_key: str) -> Predicate:
    return _never


# What an unknown operator (from an imported document, say) does: it never matches.
UNKNOWN = Operator(
    name="",
    label="unknown operator",
    build=_never_builder,
    check_value=check_nothing,
    trial_values=lambda text, test: [],
    widget=VALUE_WIDGET,
    comparison=None,
    semver=False,
    split=False,
    search=None,
)


def lookup(name: str) -> Operator:
    """Return the operator of that name, or ``UNKNOWN`` (which never matches)."""
    return OPERATORS.get(name, UNKNOWN)


def reads_identity_key(operator_name: str, property_: str) -> bool:
    """Tell whether a condition reads the identity key: a split with a blank property."""
    return not property_ and lookup(operator_name).split


def build_predicate(
    operator_name: str,
    value: str | None,
    segment_key: str,
    refused: frozenset[str] = frozenset(),
) -> Predicate:
    """Compile one condition's operator and value into a predicate.

    :param operator_name: the operator, e.g. ``"EQUAL"``
    :param value: the condition value as text
    :param segment_key: the owning segment's key (PERCENTAGE_SPLIT hashes it)
    :param refused: REGEX patterns that backtrack catastrophically, as found by the
        caller: they never match, where the official engine would stall on long values
    :return: a predicate over the normalised context value; unknown operators never match
    """
    if operator_name == REGEX and str(value) in refused:
        return _never
    return lookup(operator_name).build(value, segment_key)
