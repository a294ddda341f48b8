"""Dashboard-side checks of segment rules, before saving.

Everything reported here still evaluates (to false, like the official engine, or
to whatever the engine does); validation only warns the author.
"""

from __future__ import annotations

from collections.abc import Sequence

from .operators import OPERATORS
from .segments import JSONPATH_PREFIX, QUANTIFIER_NAMES, describe_property
from .types import Condition, Rule, RuleError

Path = tuple[int | str, ...]


def validate_rules(rules: Sequence[Rule]) -> list[RuleError]:
    """Find problems in a segment's rules.

    :param rules: the segment's top-level rules
    :return: one error per problem, each with the path to the rule or condition
    """
    if not rules:
        return [RuleError((), "the segment has no rules, so it never matches")]
    errors: list[RuleError] = []
    for index, rule in enumerate(rules):
        _check_rule(rule, ("rules", index), errors)
    return errors


def _check_rule(rule: Rule, path: Path, errors: list[RuleError]) -> None:
    if rule.type not in QUANTIFIER_NAMES:
        errors.append(RuleError(path, f"unknown rule type {rule.type!r} (ALL, ANY or NONE)"))
    for index, condition in enumerate(rule.conditions):
        message = condition_error(condition)
        if message is not None:
            errors.append(RuleError((*path, "conditions", index), message))
    for index, sub_rule in enumerate(rule.rules):
        _check_rule(sub_rule, (*path, "rules", index), errors)


def condition_error(condition: Condition) -> str | None:
    """Return why a condition cannot work as intended, or None when it is fine.

    :param condition: the condition to check
    :return: a message for the dashboard, or None
    """
    operator = condition.operator
    if operator not in OPERATORS:
        return f"unknown operator {operator!r}: the condition never matches"
    if condition.property.startswith(JSONPATH_PREFIX):
        if describe_property(condition.property) == "unsupported jsonpath":
            return (
                f"unsupported path {condition.property!r}: only $.identity.identifier, "
                "$.identity.key, $.identity.traits.<key>, $.environment.name and "
                "$.environment.key are read (otherwise a trait of that exact name)"
            )
    elif not condition.property and not OPERATORS[operator].split:
        return "the condition has no property (trait key)"
    return OPERATORS[operator].check_value(condition.value)
