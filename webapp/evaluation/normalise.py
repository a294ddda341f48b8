"""Trait normalisation as the engine does it: numeric-looking strings become numbers."""

from __future__ import annotations

from collections.abc import Mapping

from .types import ContextValue

_NUMBER_START = frozenset("-0123456789")
_SCALARS = (str, int, float, bool)


def normalise(value: object) -> ContextValue:
    """Coerce a read value like the engine: numeric-looking strings become numbers.

    :param value: a trait value or a JSONPath result
    :return: the value conditions compare against; None means not set
    """
    if type(value) is str:
        return _numeric_text(value) if value and value[0] in _NUMBER_START else value
    if value is None or isinstance(value, _SCALARS):
        return value
    return str(value)


def _numeric_text(text: str) -> ContextValue:
    # Equivalent to fullmatching -?[0-9]+ (int) then -?[0-9]+\.[0-9]+ (float),
    # without the regex engine: isascii() keeps isdigit() to 0-9.
    digits = text[1:] if text[0] == "-" else text
    if not digits.isascii():
        return text
    if digits.isdigit():
        return int(text)
    whole, dot, fraction = digits.partition(".")
    if dot and whole.isdigit() and fraction.isdigit():
        return float(text)
    return text


def normalise_traits(traits: Mapping[str, object]) -> dict[str, ContextValue]:
    """Normalise every trait value (see ``normalise``), inlining the common cases.

    :param traits: raw trait values by key
    :return: normalised values by key
    """
    # One comprehension (no per-item stores through a loop body): texts that
    # cannot be numbers and plain scalars pass through untouched.
    return {
        key: value  # type: ignore[misc]
        if type(value) in _PLAIN_TYPES
        or (type(value) is str and (not value or value[0] not in _NUMBER_START))
        else normalise(value)
        for key, value in traits.items()
    }


_PLAIN_TYPES = frozenset({int, float, bool, type(None)})
