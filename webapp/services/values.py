"""The one typed value model: value kinds, parsing, limits, display text and JSON form.

Every form, service and SDK input that turns text (or JSON) into a stored value goes
through this module; no other module parses values or repeats these limits.

Two things hold a typed value, and each has one set of rules wherever it is entered:

``trait``
    A trait's value: from the Identity page's trait form and from the SDK API.
``flag``
    A flag's value: a feature's default in an environment, a multivariate option, a
    segment override, an identity override (Identity page) and the Users page's bulk
    override. Imports keep a document's values as written (floats included) and hold
    them to the same limits: a value beyond them is refused, naming its JSON path.

Kinds (the names are the stored ``value_type`` names, which are JSON's too):

=========  =======  =====  =========================================================
kind       trait    flag   text accepted
=========  =======  =====  =========================================================
string     yes      yes    anything, kept exactly as typed (never stripped)
integer    yes      yes    ``-?[0-9]+`` (ASCII digits) after stripping blanks; ``007`` is 7
float      yes      no     a finite decimal (``1.5``, ``-.5``, ``2e3``) after stripping
boolean    yes      yes    ``true`` or ``false`` in any case, after stripping
json       no       yes    strict JSON (no NaN/Infinity); stored as the stripped text
null       no       yes    nothing: "no value" (text other than blanks is refused)
infer      yes      no     integer, else float, else boolean, else the string as typed
=========  =======  =====  =========================================================

Limits (the same at every entry point of a thing):

- Strings: a trait value has at most ``TRAIT_STRING_MAX`` (2,000) characters, a flag value
  (JSON text included) at most ``FLAG_STRING_MAX`` (20,000). No string may contain NUL
  (PostgreSQL text cannot hold it).
- Trait keys have 1 to ``TRAIT_KEY_MAX`` (200) characters and no NUL. The dashboard also
  refuses keys that are only blanks or hold control characters (``check_trait_key``); the
  SDK API keeps accepting what SDKs have always sent.
- Integers. The database stores every value as text, so it is not the bound; what reads
  the value is. A **trait** integer lies within the signed 64-bit range: that is what the
  SDK API's JSON accepts (and has always accepted), what PostgreSQL's ``bigint`` casts in
  segment membership hold, and what the JSON encoder sends back. A **flag** integer lies
  within ±(2**53 - 1): the server sends flag values to every SDK, and JavaScript SDKs read
  numbers as doubles, which silently change larger integers (``2**53 + 1`` arrives as
  ``2**53``). Before this module the Identity page allowed 19-digit override integers
  (some beyond 64 bits) while features and bulk actions stopped at 2**53 - 1.
- Floats are finite. Flags offer no float kind: Flagsmith's feature values are strings,
  integers and booleans, and its API keeps any other number as its text. A float that
  arrives in an imported document is kept, shown, and edited as its text.

Comparing values: in Python ``1 == True == 1.0``, so values are compared and de-duplicated
with ``same`` and ``identity_key`` (type and value), never with ``==`` or a ``set`` of raw
values. Display text is ``as_text`` (booleans ``true``/``false``, no value as empty) and
the JSON form is ``to_json``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final, Literal

from ..models import IDENTIFIER_MAX, TRAIT_KEY_MAX, TRAIT_STRING_MAX, TypedValue
from ..models.base import value_type_of
from .errors import ValidationError

Role = Literal["trait", "flag"]
TRAIT: Final = "trait"
FLAG: Final = "flag"

INFER: Final = "infer"
NULL: Final = "null"
JSON: Final = "json"
TRAIT_KINDS: Final = (INFER, "string", "integer", "float", "boolean")
FLAG_KINDS: Final = ("string", "integer", "boolean", JSON, NULL)
KIND_LABELS: Final = {
    INFER: "infer",
    "string": "string",
    "integer": "integer",
    "float": "float",
    "boolean": "boolean",
    JSON: "JSON",
    NULL: "no value",
}

FLAG_STRING_MAX: Final = 20_000
TRAIT_INT_MIN: Final = -(2**63)
TRAIT_INT_MAX: Final = 2**63 - 1
FLAG_INT_MAX: Final = 2**53 - 1
FLAG_INT_MIN: Final = -FLAG_INT_MAX
# The longest integer text either range can hold (sign included): longer text is refused
# before int() runs, which refuses over 4,300 digits with a ValueError of its own.
_INT_TEXT_MAX: Final = 20

_INTEGER = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
_BOOLEANS: Final = {"true": True, "false": False}

__all__ = [
    "FLAG",
    "FLAG_INT_MAX",
    "FLAG_INT_MIN",
    "FLAG_KINDS",
    "FLAG_STRING_MAX",
    "IDENTIFIER_MAX",
    "TRAIT",
    "TRAIT_INT_MAX",
    "TRAIT_INT_MIN",
    "TRAIT_KEY_MAX",
    "TRAIT_KINDS",
    "TRAIT_STRING_MAX",
    "as_text",
    "check_trait_key",
    "check_trait_value",
    "editor_kind",
    "identity_key",
    "infer_value",
    "kinds",
    "parse_value",
    "same",
    "string_max",
    "to_json",
]


# ----------------------------------------------------------------------------- limits


def kinds(role: Role) -> tuple[str, ...]:
    """Return the kinds a form offers for a trait or a flag value, in menu order."""
    return TRAIT_KINDS if role == TRAIT else FLAG_KINDS


def string_max(role: Role) -> int:
    """Return the most characters a string value of a trait or a flag may have."""
    return TRAIT_STRING_MAX if role == TRAIT else FLAG_STRING_MAX


def int_range(role: Role) -> tuple[int, int]:
    """Return the smallest and largest integer a trait or a flag value may be."""
    return (TRAIT_INT_MIN, TRAIT_INT_MAX) if role == TRAIT else (FLAG_INT_MIN, FLAG_INT_MAX)


# ----------------------------------------------------------------------------- parsing


def parse_value(kind: str, text: str | None, role: Role) -> TypedValue:
    """Turn a form's type and text into a typed value of a trait or a flag.

    :param kind: one of ``kinds(role)``
    :param text: the text typed (None counts as empty)
    :param role: ``trait`` or ``flag``: which limits and kinds apply
    :return: the typed value (None for ``null``)
    :raises ValidationError: an unknown kind (field ``value_type``), or text that is not a
        value of that kind within its limits (field ``value``)
    """
    raw = text or ""
    if kind not in kinds(role):
        raise ValidationError(f"Unknown value type {kind!r}.", field="value_type")
    if kind == NULL:
        if raw.strip():
            # Dropping typed text without a word would change the value silently.
            raise ValidationError(
                "“No value” holds no text: choose the value's type, or clear the value.",
                field="value",
            )
        return None
    value = _PARSERS[kind](raw)
    if kind == JSON:
        _check_string(raw, role)
    return check_value(value, role)


def check_value(value: TypedValue, role: Role) -> TypedValue:
    """Return a typed value unchanged if it lies within the limits of a trait or a flag.

    :raises ValidationError: a string too long or with NUL, an integer out of range, a
        float that is not finite (field ``value``)
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        low, high = int_range(role)
        if not low <= value <= high:
            raise ValidationError(
                f"Integers must lie within {low:,} and {high:,}.", field="value"
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError("A number must be finite.", field="value")
    elif isinstance(value, str):
        _check_string(value, role)
    return value


def _check_string(text: str, role: Role) -> None:
    limit = string_max(role)
    if len(text) > limit:
        raise ValidationError(f"A value has at most {limit:,} characters.", field="value")
    if "\x00" in text:
        raise ValidationError("A value must not contain NUL characters.", field="value")


def infer_value(raw: str) -> TypedValue:
    """Guess a trait's type from text: integer, then float, then boolean, else the string."""
    text = raw.strip()
    if _INTEGER.fullmatch(text):
        return _integer(raw)
    if _FLOAT.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    return _BOOLEANS.get(text.lower(), raw)


def _integer(raw: str) -> int:
    text = raw.strip()
    if not _INTEGER.fullmatch(text):
        raise ValidationError(f"“{raw[:40]}” is not a whole number.", field="value")
    if len(text) > _INT_TEXT_MAX:
        # Beyond every range: check_value refuses it with the range in its message.
        return -(10**_INT_TEXT_MAX) if text.startswith("-") else 10**_INT_TEXT_MAX
    return int(text)


def _float(raw: str) -> float:
    text = raw.strip()
    number = float(text) if _FLOAT.fullmatch(text) else math.nan
    if not math.isfinite(number):
        raise ValidationError(f"“{raw[:40]}” is not a finite number.", field="value")
    return number


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in _BOOLEANS:
        raise ValidationError("A boolean value is “true” or “false”.", field="value")
    return _BOOLEANS[lowered]


def _json(raw: str) -> str:
    """Return strict JSON text stripped of surrounding blanks (no NaN or Infinity)."""
    text = raw.strip()
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise ValidationError("Not valid JSON: nested too deeply.", field="value") from exc
    except ValueError as exc:
        raise ValidationError(f"Not valid JSON: {exc}", field="value") from exc
    return text


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def _string(raw: str) -> str:
    return raw


_PARSERS: Final = {
    INFER: infer_value,
    "string": _string,
    "integer": _integer,
    "float": _float,
    "boolean": _boolean,
    JSON: _json,
}


def check_trait_value(value: Any) -> TypedValue:
    """Return a trait value given as JSON (the SDK API), or None (which deletes the trait).

    :raises ValidationError: objects and arrays, strings too long or with NUL, integers
        beyond 64 bits, floats that are not finite (field ``value``)
    """
    if value is None or isinstance(value, bool | int | float | str):
        return check_value(value, TRAIT)
    raise ValidationError("Expected a string, integer, float, boolean or null.", field="value")


def check_trait_key(key: str) -> str:
    """Return a valid trait key: 1 to 200 printable characters, not only blanks.

    :raises ValidationError: otherwise (field ``key``)
    """
    if not key or not key.strip():
        raise ValidationError("A trait needs a key.", field="key")
    if len(key) > TRAIT_KEY_MAX:
        raise ValidationError(f"A trait key has at most {TRAIT_KEY_MAX} characters.", field="key")
    if not key.isprintable():
        raise ValidationError("A trait key cannot contain control characters.", field="key")
    return key


# ----------------------------------------------------------------------------- showing


def kind_of(value: TypedValue) -> str:
    """Name a value's stored kind (``boolean`` before ``integer``: True is an int too)."""
    return value_type_of(value)


def editor_kind(value: TypedValue) -> str:
    """Name the flag kind an editor pre-selects for a stored value, with ``as_text`` its text.

    A string holding a JSON object or array is ``json``; an imported float is edited as
    ``string`` (flags offer no float kind).
    """
    kind = kind_of(value)
    if kind == "float":
        return "string"
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            _json(value)
        except ValidationError:
            return "string"
        return JSON
    return kind


def as_text(value: TypedValue) -> str:
    """Show a typed value as the text a form field holds (booleans ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def to_json(value: TypedValue) -> str:
    """Return a value's JSON form, as the SDK API sends it."""
    return json.dumps(value, ensure_ascii=False)


# ----------------------------------------------------------------------------- comparing


def identity_key(value: Any) -> Any:
    """Return a hashable key that tells ``1``, ``True``, ``1.0`` and ``"1"`` apart.

    Lists and dicts (JSON values, audit snapshots) are keyed element by element.
    """
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), identity_key(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("list", tuple(identity_key(v) for v in value))
    if isinstance(value, float):
        return ("float", repr(value))  # stored text is repr: -0.0 is not 0.0, nan is nan
    return (type(value).__name__, value)


def same(left: Any, right: Any) -> bool:
    """Tell whether two values (or snapshots of them) are equal in type and value."""
    return bool(identity_key(left) == identity_key(right))
