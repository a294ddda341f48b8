"""The evaluation facet of the condition operators: predicates compiled from a condition value.

The operators themselves are declared in ``operators`` (the registry), which names the
builder here that each one uses. Every builder takes the condition value (and the segment
key, which only PERCENTAGE_SPLIT needs) and returns a predicate over the *normalised*
context value, None meaning "not set". Failures (bad casts, invalid regex or semver) make
the predicate false, as in the official engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .hashing import hashed_percentage_of_text
from .semver import (
    Version,
    compare_versions,
    has_semver_suffix,
    parse_version,
)
from .types import ContextValue

Predicate = Callable[[ContextValue], bool]
Builder = Callable[[str | None, str], Predicate]
# A semantic-version test: the trait's parsed version against the condition's version text.
VersionTest = Callable[[Version, str], bool]

_FAILED: Any = object()


@dataclass(frozen=True, slots=True)
class Comparison:
    """A typed comparison: the condition value is cast to the trait's type, then compared.

    ``test(trait, cast_value)`` compares; ``versions`` replaces it for ``:semver`` values
    on string traits; ``numbers`` False means only string traits can match (CONTAINS).
    """

    test: Callable[[Any, Any], bool]
    versions: VersionTest
    numbers: bool = True


def by_precedence(holds: Callable[[int], bool]) -> VersionTest:
    """Build a version test from a test of SemVer precedence (-1, 0 or 1)."""

    def test(version: Version, text: str) -> bool:
        other = parse_version(text)
        return other is not None and holds(compare_versions(version, other))

    return test


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


def typed_builder(comparison: Comparison) -> Builder:
    """Build the predicates of a typed comparison (see ``cast_condition_value``)."""
    plain, versions, numeric_ok = comparison.test, comparison.versions, comparison.numbers

    def build(value: str | None, segment_key: str) -> Predicate:
        semver_text = str(value)[:-7] if has_semver_suffix(value) else None
        text, as_bool = str(value), value not in ("False", "false")
        as_int, as_float = _try_cast(int, value), _try_cast(float, value)

        def test(trait: ContextValue) -> bool:
            kind = type(trait)
            if kind is str:
                if semver_text is not None:
                    version = parse_version(trait)
                    return version is not None and versions(version, semver_text)
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


def build_not_contains(value: str | None, segment_key: str) -> Predicate:
    text = str(value)
    return lambda trait: isinstance(trait, str) and text not in trait


def build_regex(value: str | None, segment_key: str) -> Predicate:
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


def build_modulo(value: str | None, segment_key: str) -> Predicate:
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


def build_in(value: str | None, segment_key: str) -> Predicate:
    accepted = parse_in_values(value)

    def test(trait: ContextValue) -> bool:
        kind = type(trait)
        if kind is str:
            return trait in accepted
        # Integers compare as text; floats and booleans never match.
        return kind is int and str(trait) in accepted

    return test


def build_percentage_split(value: str | None, segment_key: str) -> Predicate:
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


def build_is_set(value: str | None, segment_key: str) -> Predicate:
    return lambda trait: trait is not None


def build_is_not_set(value: str | None, segment_key: str) -> Predicate:
    return lambda trait: trait is None
