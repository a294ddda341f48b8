"""Condition operators, each compiled once from the condition's text value.

Every builder takes the condition value (and the segment key, which only
PERCENTAGE_SPLIT needs) and returns a predicate over the *normalised* context
value, None meaning "not set". Failures (bad casts, invalid regex or semver)
make the predicate false, as in the official engine.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from typing import Any

from .hashing import hashed_percentage_of_text
from .semver import (
    compare_versions,
    has_semver_suffix,
    parse_version,
    version_contains,
)
from .types import ContextValue

Predicate = Callable[[ContextValue], bool]
Builder = Callable[[str | None, str], Predicate]

EQUAL = "EQUAL"
NOT_EQUAL = "NOT_EQUAL"
GREATER_THAN = "GREATER_THAN"
GREATER_THAN_INCLUSIVE = "GREATER_THAN_INCLUSIVE"
LESS_THAN = "LESS_THAN"
LESS_THAN_INCLUSIVE = "LESS_THAN_INCLUSIVE"
CONTAINS = "CONTAINS"
NOT_CONTAINS = "NOT_CONTAINS"
REGEX = "REGEX"
IS_SET = "IS_SET"
IS_NOT_SET = "IS_NOT_SET"
MODULO = "MODULO"
IN = "IN"
PERCENTAGE_SPLIT = "PERCENTAGE_SPLIT"

_FAILED: Any = object()

# Comparison against the parsed versions' precedence (-1, 0, 1).
_SEMVER_TESTS: dict[str, Callable[[int], bool]] = {
    EQUAL: lambda c: c == 0,
    NOT_EQUAL: lambda c: c != 0,
    GREATER_THAN: lambda c: c > 0,
    GREATER_THAN_INCLUSIVE: lambda c: c >= 0,
    LESS_THAN: lambda c: c < 0,
    LESS_THAN_INCLUSIVE: lambda c: c <= 0,
}
_PLAIN_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    EQUAL: operator.eq,
    NOT_EQUAL: operator.ne,
    GREATER_THAN: operator.gt,
    GREATER_THAN_INCLUSIVE: operator.ge,
    LESS_THAN: operator.lt,
    LESS_THAN_INCLUSIVE: operator.le,
    CONTAINS: operator.contains,
}


def _try_cast(cast: Callable[[Any], Any], value: str | None) -> Any:
    try:
        return cast(value)
    except (TypeError, ValueError):
        return _FAILED


def cast_condition_value(value: str | None, trait: ContextValue) -> tuple[str, Any]:
    """Cast a condition value to a trait's type, as typed comparisons do.

    :param value: the condition's text value
    :param trait: the normalised trait value the cast follows
    :return: the cast's name and the cast value (or a failure marker)
    """
    if isinstance(trait, str) and has_semver_suffix(value):
        return "semver", parse_version(str(value)[:-7]) or _FAILED
    if isinstance(trait, bool):
        # Anything but the two spellings of false is true, None included.
        return "bool", value not in ("False", "false")
    if isinstance(trait, int):
        return "int", _try_cast(int, value)
    if isinstance(trait, float):
        return "float", _try_cast(float, value)
    # str(None) == "None": a null condition value compares as that text.
    return "str", str(value)


def is_cast_failure(value: Any) -> bool:
    """Return True when ``cast_condition_value`` could not cast."""
    return value is _FAILED


def _build_typed(name: str) -> Builder:
    plain = _PLAIN_TESTS[name]
    semver_test = _SEMVER_TESTS.get(name)

    def build(value: str | None, segment_key: str) -> Predicate:
        semver_text = str(value)[:-7] if has_semver_suffix(value) else None
        text, as_bool = str(value), value not in ("False", "false")
        as_int, as_float = _try_cast(int, value), _try_cast(float, value)
        numeric_ok = name != CONTAINS

        def test(trait: ContextValue) -> bool:
            kind = type(trait)
            if kind is str:
                if semver_text is not None:
                    return _semver_matches(name, semver_test, trait, semver_text)
                return plain(trait, text)
            if kind is bool:
                return numeric_ok and plain(trait, as_bool)
            if kind is int:
                return numeric_ok and as_int is not _FAILED and plain(trait, as_int)
            if kind is float:
                return numeric_ok and as_float is not _FAILED and plain(trait, as_float)
            return False

        return test

    return build


def _semver_matches(
    name: str, semver_test: Callable[[int], bool] | None, trait: Any, text: str
) -> bool:
    version = parse_version(trait)
    if version is None:
        return False
    if semver_test is None:
        return version_contains(version, text)
    other = parse_version(text)
    return other is not None and semver_test(compare_versions(version, other))


def _build_not_contains(value: str | None, segment_key: str) -> Predicate:
    text = str(value)
    return lambda trait: isinstance(trait, str) and text not in trait


def _build_regex(value: str | None, segment_key: str) -> Predicate:
    try:
        pattern = re.compile(str(value))
    except (re.error, RecursionError):
        # The engine raises here (RecursionError: parentheses nested hundreds deep);
        # failing the condition is the only sane mirror.
        return lambda trait: False
    match = pattern.match
    return lambda trait: trait is not None and match(str(trait)) is not None


def parse_modulo(value: str | None) -> tuple[float, float] | None:
    """Parse ``"divisor|remainder"``; return None when the engine would not match.

    :param value: the condition value
    :return: (divisor, remainder) or None
    """
    if not value:
        return None
    parts = value.split("|")
    if len(parts) != 2:
        return None
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        return None


def _build_modulo(value: str | None, segment_key: str) -> Predicate:
    parsed = parse_modulo(value)
    if parsed is None:
        return lambda trait: False
    divisor, remainder = parsed

    def test(trait: ContextValue) -> bool:
        if not isinstance(trait, int | float):
            return False
        try:
            return trait % divisor == remainder
        except (ZeroDivisionError, OverflowError):
            # The engine raises on a zero divisor; we fail the condition.
            return False

    return test


def parse_in_values(value: str | None) -> frozenset[str]:
    """Read an IN value: a JSON array when it starts with ``[``, else comma-split.

    :param value: the condition value
    :return: the set of texts an IN condition accepts
    """
    if value is None:
        return frozenset()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return frozenset(value.split(","))
        # str(True) == "True": JSON booleans become Python's spelling.
        return frozenset(v if type(v) is str else str(v) for v in parsed)
    return frozenset(value.split(","))


def _build_in(value: str | None, segment_key: str) -> Predicate:
    accepted = parse_in_values(value)

    def test(trait: ContextValue) -> bool:
        kind = type(trait)
        if kind is str:
            return trait in accepted
        # Integers compare as text; floats and booleans never match.
        return kind is int and str(trait) in accepted

    return test


def _build_percentage_split(value: str | None, segment_key: str) -> Predicate:
    try:
        threshold = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return lambda trait: False
    prefix = segment_key + ","

    def test(trait: ContextValue) -> bool:
        if trait is None:
            return False
        return hashed_percentage_of_text(prefix + str(trait)) <= threshold

    return test


def _build_is_set(value: str | None, segment_key: str) -> Predicate:
    return lambda trait: trait is not None


def _build_is_not_set(value: str | None, segment_key: str) -> Predicate:
    return lambda trait: trait is None


OPERATORS: dict[str, Builder] = {
    **{name: _build_typed(name) for name in _PLAIN_TESTS},
    NOT_CONTAINS: _build_not_contains,
    REGEX: _build_regex,
    MODULO: _build_modulo,
    IN: _build_in,
    PERCENTAGE_SPLIT: _build_percentage_split,
    IS_SET: _build_is_set,
    IS_NOT_SET: _build_is_not_set,
}

# Public views of the tables above, so other modules never re-list operators.
SUPPORTED_OPERATORS: frozenset[str] = frozenset(OPERATORS)
# Operators that cast the condition value to the trait's type before comparing.
CASTING_OPERATORS: frozenset[str] = frozenset(_PLAIN_TESTS)


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
    builder = OPERATORS.get(operator_name)
    if builder is None or (operator_name == REGEX and str(value) in refused):
        return lambda trait: False
    return builder(value, segment_key)
