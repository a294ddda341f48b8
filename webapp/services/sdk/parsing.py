"""Parse and validate SDK request bodies; every refusal names the offending field.

Which trait values are accepted is decided by ``values`` (the one typed value model); this
module only words the refusal for the API and checks the request's shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from math import isfinite
from typing import Any

import orjson

from ...models import IDENTIFIER_MAX, TRAIT_KEY_MAX, TRAIT_STRING_MAX
from .. import values
from ..errors import ValidationError

MAX_TRAITS = 100
INT_MIN, INT_MAX = values.TRAIT_INT_MIN, values.TRAIT_INT_MAX

TraitValue = str | int | float | bool
_LONG_DIGIT_RUN = re.compile(rb"[0-9]{19}")


class BadRequest(ValidationError):
    """Input the SDK API answers with 400 and ``{"detail": message}``."""

    status = 400


@dataclass(frozen=True, slots=True)
class TraitInput:
    key: str
    value: TraitValue | None  # None deletes the trait
    transient: bool = False


@dataclass(frozen=True, slots=True)
class IdentifyInput:
    identifier: str
    traits: tuple[TraitInput, ...] = ()
    transient: bool = False


def parse_json(body: bytes) -> Any:
    """Decode a JSON body strictly (no NaN, integers within 64 bits, bounded depth).

    :raises BadRequest: when the body is empty or not valid JSON.
    """
    if not body:
        raise BadRequest("Request body is empty; expected JSON")
    # orjson is several times faster but reads integers beyond 64 bits as floats, which
    # would silently change a trait's type; any such integer has 19 or more digits, so
    # bodies with a run that long take the exact (slower) standard library parser.
    if _LONG_DIGIT_RUN.search(body) is None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"Malformed JSON: {exc}") from exc
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise BadRequest("Malformed JSON: nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, over-long integers
        raise BadRequest(f"Malformed JSON: {exc}") from exc
    if _has_lone_surrogate(value):
        # orjson refuses these; the standard library decodes them into strings that no
        # database (nor UTF-8) can store.
        raise BadRequest("Malformed JSON: a \\u escape is an unpaired surrogate")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_identifier(value: Any, field: str = "identifier") -> str:
    """Return a valid identifier (1 to 2,000 characters).

    :raises BadRequest: naming ``field`` when the value is missing, not a string or too long.
    """
    if not isinstance(value, str):
        raise BadRequest(f"{field}: expected a string", field)
    if not value:
        raise BadRequest(f"{field}: must not be empty", field)
    if len(value) > IDENTIFIER_MAX:
        raise BadRequest(f"{field}: at most {IDENTIFIER_MAX} characters", field)
    if "\x00" in value:
        raise BadRequest(f"{field}: must not contain NUL characters", field)
    return value


def parse_trait_value(value: Any, field: str) -> TraitValue | None:
    """Return a trait value of one of the four types, or None (delete).

    :raises BadRequest: for objects, arrays, long strings, huge or non-finite numbers.
    """
    try:
        return values.check_trait_value(value)
    except ValidationError:
        raise BadRequest(f"{field}: {_refusal(value)}", field) from None


def _refusal(value: Any) -> str:
    """Word a trait value's refusal as the SDK API always has."""
    if isinstance(value, bool):
        return "expected a string, integer, float, boolean or null"
    if isinstance(value, int):
        return "integer out of the 64-bit range"
    if isinstance(value, float):
        return "must be a finite number"
    if isinstance(value, str):
        if len(value) > TRAIT_STRING_MAX:
            return f"at most {TRAIT_STRING_MAX} characters"
        return "must not contain NUL characters"
    return "expected a string, integer, float, boolean or null"


def parse_trait_key(value: Any, field: str) -> str:
    """Return a valid trait key (1 to 200 characters).

    :raises BadRequest: naming ``field`` otherwise.
    """
    if not isinstance(value, str):
        raise BadRequest(f"{field}: expected a string", field)
    if not value or len(value) > TRAIT_KEY_MAX:
        raise BadRequest(f"{field}: must have 1 to {TRAIT_KEY_MAX} characters", field)
    if "\x00" in value:
        raise BadRequest(f"{field}: must not contain NUL characters", field)
    return value


def _parse_flag(raw: dict[str, Any], name: str, field: str) -> bool:
    value = raw.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{field}.{name}: expected a boolean", f"{field}.{name}")
    return value


def parse_trait(raw: Any, field: str) -> TraitInput:
    """Parse one ``{"trait_key", "trait_value", "transient"?}`` object.

    :raises BadRequest: naming the field that is wrong.
    """
    if not isinstance(raw, dict):
        raise BadRequest(f"{field}: expected an object", field)
    if "trait_key" not in raw:
        raise BadRequest(f"{field}.trait_key: this field is required", f"{field}.trait_key")
    key = parse_trait_key(raw["trait_key"], f"{field}.trait_key")
    value = parse_trait_value(raw.get("trait_value"), f"{field}.trait_value")
    return TraitInput(key, value, _parse_flag(raw, "transient", field))


def parse_traits(raw: Any, field: str = "traits") -> tuple[TraitInput, ...]:
    """Parse a list of at most 100 traits; a key sent twice keeps its last value.

    :raises BadRequest: when it is not a list, too long, or an item is wrong.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadRequest(f"{field}: expected a list of traits", field)
    if len(raw) > MAX_TRAITS:
        raise BadRequest(f"{field}: at most {MAX_TRAITS} traits per request", field)
    parsed = {}
    for index, item in enumerate(raw):
        trait = _plain_trait(item)
        if trait is None:
            trait = parse_trait(item, f"{field}[{index}]")
        parsed[trait.key] = trait
    return tuple(parsed.values())


def _plain_trait(item: Any) -> TraitInput | None:
    """Accept the common item, ``{"trait_key": str, "trait_value": str|int|float|bool}``.

    It is checked inline, without building field names, since every identify request
    parses its traits here; its limits are ``values``' trait limits (a test holds it to
    ``parse_trait``'s answers). Anything else (None values, ``transient``, a wrong type or
    length) gives None, and ``parse_trait`` decides it and names the field at fault.
    """
    if type(item) is not dict or len(item) != 2:
        return None
    key: Any = item.get("trait_key")
    value: Any = item.get("trait_value")
    if type(key) is not str or not 0 < len(key) <= TRAIT_KEY_MAX or "\x00" in key:
        return None
    kind = type(value)
    if kind is str:
        if len(value) > TRAIT_STRING_MAX or "\x00" in value:
            return None
    elif kind is int:
        if not INT_MIN <= value <= INT_MAX:
            return None
    elif kind is float:
        if not isfinite(value):
            return None
    elif kind is not bool:
        return None
    return TraitInput(key, value)


def parse_identify(raw: Any) -> IdentifyInput:
    """Parse the body of ``POST /identities/``.

    :raises BadRequest: naming the field that is wrong.
    """
    if not isinstance(raw, dict):
        raise BadRequest("Expected a JSON object with an identifier")
    if "identifier" not in raw:
        raise BadRequest("identifier: this field is required", "identifier")
    identifier = parse_identifier(raw["identifier"])
    traits = parse_traits(raw.get("traits"))
    transient = raw.get("transient", False)
    if transient is not None and not isinstance(transient, bool):
        raise BadRequest("transient: expected a boolean", "transient")
    return IdentifyInput(identifier, traits, bool(transient))


def parse_trait_request(raw: Any, field: str) -> tuple[str, TraitInput]:
    """Parse one ``{"identity": {"identifier"}, "trait_key", "trait_value"}`` object.

    :raises BadRequest: naming the field that is wrong.
    """
    if not isinstance(raw, dict):
        raise BadRequest(f"{field or 'body'}: expected an object", field or None)
    prefix = f"{field}." if field else ""
    identity = raw.get("identity")
    if not isinstance(identity, dict):
        raise BadRequest(
            f"{prefix}identity: expected an object with an identifier", f"{prefix}identity"
        )
    identifier = parse_identifier(identity.get("identifier"), f"{prefix}identity.identifier")
    trait = parse_trait({k: v for k, v in raw.items() if k != "identity"}, field or "body")
    return identifier, trait


def parse_bulk_traits(raw: Any) -> list[tuple[str, TraitInput]]:
    """Parse the body of ``PUT /traits/bulk/``: a list of at most 100 trait objects.

    :raises BadRequest: naming the field that is wrong.
    """
    if not isinstance(raw, list):
        raise BadRequest("Expected a JSON list of traits")
    if len(raw) > MAX_TRAITS:
        raise BadRequest(f"body: at most {MAX_TRAITS} traits per request")
    return [parse_trait_request(item, f"[{index}]") for index, item in enumerate(raw)]
