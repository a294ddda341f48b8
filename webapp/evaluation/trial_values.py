"""The counterfactual facet of the condition operators: trait values worth trying.

The registry (``operators``) names the producer each operator uses. A producer gets the
condition value and its compiled predicate and returns candidate trait values; the
counterfactual search verifies each by re-evaluating the segment, so a producer may
over-suggest but an operator without good candidates just finds no change.
"""

from __future__ import annotations

from collections.abc import Callable

from .normalise import normalise
from .predicates import Predicate, parse_in_values, parse_modulo
from .semver import has_semver_suffix, parse_version
from .types import TraitValue

TrialValues = Callable[[str | None, Predicate], list[TraitValue]]


def typed_values(text: str | None, test: Predicate) -> list[TraitValue]:
    """The value itself, its neighbours (text, number, version) and booleans."""
    if text is None:
        return ["None", "x"]
    if has_semver_suffix(text):
        return _semver_values(text[:-7])
    values: list[TraitValue] = [text, text + "x", "x" + text, ""]
    number = normalise(text)
    if isinstance(number, int | float) and not isinstance(number, bool):
        values += [number, number + 1, number - 1]
    if text in ("true", "True", "false", "False"):
        values += [True, False]
    return values


def _semver_values(version_text: str) -> list[TraitValue]:
    version = parse_version(version_text)
    if version is None:
        return []
    major, minor, patch = version.major, version.minor, version.patch
    return [
        version_text,
        f"{major}.{minor}.{patch + 1}",
        f"{major + 1}.0.0",
        "0.0.0",
        f"{major}.{minor}.{patch}-a",
    ]


def modulo_values(text: str | None, test: Predicate) -> list[TraitValue]:
    """The remainder, one divisor on, and one off."""
    parsed = parse_modulo(text)
    if parsed is None:
        return []
    divisor, remainder = parsed
    values: list[TraitValue] = [remainder, remainder + divisor, remainder + 1]
    if remainder.is_integer():
        values += [int(remainder), int(remainder) + 1]
    return values


def in_values(text: str | None, test: Predicate) -> list[TraitValue]:
    """A few listed values and one that is not listed."""
    accepted = sorted(parse_in_values(text))
    return [*accepted[:3], "__not_listed__"]


def split_values(text: str | None, test: Predicate) -> list[TraitValue]:
    """Small integers, one on each side of the split's threshold."""
    found: list[TraitValue] = []
    below = above = False
    for number in range(200):
        within = test(number)
        if (within and not below) or (not within and not above):
            found.append(number)
            below, above = below or within, above or not within
        if below and above:
            break
    return found


def any_value(text: str | None, test: Predicate) -> list[TraitValue]:
    """Presence operators: any value sets the trait (removal is always tried)."""
    return ["set"]
