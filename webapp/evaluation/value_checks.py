"""The validation facet of the condition operators: what is wrong with a condition value.

The registry (``operators``) names the check each operator uses; ``validation`` walks the
rules and calls it. A check returns a message for the dashboard, or None when the value is
fine. Everything reported still evaluates (to false, like the official engine).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .predicates import parse_modulo
from .semver import has_semver_suffix, parse_version

ValueCheck = Callable[[str | None], str | None]


def check_typed(value: str | None) -> str | None:
    """A typed comparison needs a value; a ``:semver`` one needs a valid version."""
    if value is None:
        return "the condition has no value"
    if has_semver_suffix(value) and parse_version(value[:-7]) is None:
        return f"invalid semantic version {value[:-7]!r} (expected MAJOR.MINOR.PATCH)"
    return None


def check_regex(value: str | None) -> str | None:
    """A REGEX value must compile."""
    try:
        re.compile(str(value))
    except re.error as error:
        return f"invalid regular expression: {error}"
    except RecursionError:
        return "invalid regular expression: parentheses nested too deeply"
    return None


def check_modulo(value: str | None) -> str | None:
    """A MODULO value is ``divisor|remainder`` with a divisor other than zero."""
    parsed = parse_modulo(value)
    if parsed is None:
        return "MODULO needs 'divisor|remainder' with two numbers, e.g. '2|0'"
    if parsed[0] == 0:
        return "MODULO divisor must not be zero"
    return None


def check_in(value: str | None) -> str | None:
    """An IN value is a list (any text is one; only a missing value is not)."""
    return "IN needs a comma-separated list or a JSON array" if value is None else None


def check_split(value: str | None) -> str | None:
    """A PERCENTAGE_SPLIT value is a number from 0 to 100."""
    try:
        threshold = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "PERCENTAGE_SPLIT needs a number between 0 and 100"
    if not 0 <= threshold <= 100:
        return "PERCENTAGE_SPLIT value should be between 0 and 100"
    return None


def check_nothing(value: str | None) -> str | None:
    """Operators that ignore their value accept any."""
    return None
