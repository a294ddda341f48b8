"""Dashboard-side checks of segment rules, before saving.

Everything reported here still evaluates (to false, like the official engine, or
to whatever the engine does); validation only warns the author.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .operators import (
    IN,
    IS_NOT_SET,
    IS_SET,
    MODULO,
    OPERATORS,
    PERCENTAGE_SPLIT,
    REGEX,
    parse_modulo,
)
from .segments import JSONPATH_PREFIX, QUANTIFIER_NAMES, describe_property
from .semver import has_semver_suffix, parse_version
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
    elif not condition.property and operator != PERCENTAGE_SPLIT:
        return "the condition has no property (trait key)"
    check = _VALUE_CHECKS.get(operator, _check_typed)
    return check(condition.value)


def _check_regex(value: str | None) -> str | None:
    try:
        re.compile(str(value))
    except re.error as error:
        return f"invalid regular expression: {error}"
    except RecursionError:
        return "invalid regular expression: parentheses nested too deeply"
    return None


def _check_modulo(value: str | None) -> str | None:
    parsed = parse_modulo(value)
    if parsed is None:
        return "MODULO needs 'divisor|remainder' with two numbers, e.g. '2|0'"
    if parsed[0] == 0:
        return "MODULO divisor must not be zero"
    return None


def _check_in(value: str | None) -> str | None:
    return "IN needs a comma-separated list or a JSON array" if value is None else None


def _check_split(value: str | None) -> str | None:
    try:
        threshold = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "PERCENTAGE_SPLIT needs a number between 0 and 100"
    if not 0 <= threshold <= 100:
        return "PERCENTAGE_SPLIT value should be between 0 and 100"
    return None


def _check_presence(value: str | None) -> str | None:
    return None


def _check_typed(value: str | None) -> str | None:
    if value is None:
        return "the condition has no value"
    if has_semver_suffix(value) and parse_version(value[:-7]) is None:
        return f"invalid semantic version {value[:-7]!r} (expected MAJOR.MINOR.PATCH)"
    return None


_VALUE_CHECKS: dict[str, Callable[[str | None], str | None]] = {
    REGEX: _check_regex,
    MODULO: _check_modulo,
    IN: _check_in,
    PERCENTAGE_SPLIT: _check_split,
    IS_SET: _check_presence,
    IS_NOT_SET: _check_presence,
}
