"""Check a Flagsmith environment document and parse it into plain, typed records.

The whole document is checked before anything is written, so an import either applies
completely or not at all. Errors name the JSON path of the first wrong field, e.g.
``feature_states[3].feature.name: expected a string``.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from ...evaluation import SUPPORTED_OPERATORS
from ...evaluation.operators import REGEX
from ...ids import ID_MAX, ID_MIN, is_id
from ...models import (
    FEATURE_NAME_PATTERN,
    FEATURE_TYPES,
    IDENTIFIER_MAX,
    OPTION_KEY_MAX,
    TRAIT_KEY_MAX,
    TypedValue,
)
from .. import regex_guard, values
from ..errors import ValidationError

NAME_MAX = 200
KEY_MAX = 255
SEED_MAX = 64
RULE_TYPES = ("ALL", "ANY", "NONE")
_FEATURE_NAME = re.compile(FEATURE_NAME_PATTERN)
_MISSING: Any = object()
# Rounding: 33.3 + 33.3 + 33.4 must still count as 100.
_ALLOCATION_SLACK = 1e-9
# Segment override priorities are stored in an INTEGER column (32 bits on PostgreSQL).
_PRIORITY_MIN, _PRIORITY_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class VariantRecord:
    """One multivariate value of a feature state."""

    seed: str
    option_id: int | None
    value: TypedValue
    percentage: float
    # The option's variant key (``multivariate_feature_option.key``), when the document has one.
    key: str | None = None


@dataclass(frozen=True)
class StateRecord:
    """A feature state: environment default, segment override or identity override."""

    feature_id: int
    feature_name: str
    feature_type: str | None
    enabled: bool
    value: TypedValue
    hash_key: str | None
    priority: int | None
    variants: tuple[VariantRecord, ...]


@dataclass(frozen=True)
class SegmentRecord:
    seed: str
    name: str
    rules: list[dict[str, Any]]
    overrides: tuple[StateRecord, ...]


@dataclass(frozen=True)
class IdentityRecord:
    identifier: str
    overrides: tuple[StateRecord, ...]
    traits: tuple[tuple[str, TypedValue], ...]


@dataclass(frozen=True)
class DocumentRecord:
    """A checked environment document."""

    api_key: str
    name: str
    project_name: str
    allow_client_traits: bool
    hide_disabled_flags: bool
    server_key_only_ids: frozenset[int]
    states: tuple[StateRecord, ...]
    segments: tuple[SegmentRecord, ...]
    identities: tuple[IdentityRecord, ...]

    @property
    def size(self) -> int:
        """Return the number of items an import processes (for a progress bar)."""
        return (
            len(self.states)
            + sum(1 + len(segment.overrides) for segment in self.segments)
            + len(self.identities)
        )


def _fail(path: str, message: str) -> NoReturn:
    raise ValidationError(f"{path}: {message}", field=path)


def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _get(obj: Mapping[str, Any], key: str, path: str, default: Any = _MISSING) -> Any:
    if key in obj:
        return obj[key]
    if default is _MISSING:
        _fail(_at(path, key), "missing")
    return default


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(path or "document", "expected an object")
    return value


def _items(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        _fail(path, "expected a list")
    return list(value)


def _text(value: Any, path: str, max_length: int, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        _fail(path, "expected a string")
    if len(value) > max_length or (not value and not empty):
        _fail(path, f"expected 1 to {max_length} characters")
    return str(value)


def _optional_text(value: Any, path: str, max_length: int) -> str | None:
    return None if value is None else _text(value, path, max_length, empty=True)


def _integer(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, "expected an integer")
    return int(value)


def _optional_integer(value: Any, path: str) -> int | None:
    return None if value is None else _integer(value, path)


def _id(value: Any, path: str) -> int:
    """An id the import stores (an INTEGER column): one outside the range cannot be written."""
    number = _integer(value, path)
    if not is_id(number):
        _fail(path, f"expected an id from {ID_MIN} to {ID_MAX}")
    return number


def _optional_id(value: Any, path: str) -> int | None:
    return None if value is None else _id(value, path)


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, "expected a boolean")
    return bool(value)


def _percentage(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, "expected a number")
    if not math.isfinite(value) or not 0 <= value <= 100:
        _fail(path, "expected a number from 0 to 100")
    return float(value)


def _typed_value(value: Any, path: str, role: values.Role = values.FLAG) -> TypedValue:
    """Check a document's value against the limits of a flag's (or a trait's) value."""
    if value is not None and not isinstance(value, str | bool | int | float):
        _fail(path, "expected a string, number, boolean or null")
    try:
        return values.check_value(value, role)
    except ValidationError as exc:
        return _fail(path, str(exc))


def _seed(value: Any, path: str) -> str:
    """Check an id or uuid that feeds hashing; stored as text (documents reuse numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        _fail(path, "expected an integer or a string")
    return _text(str(value), path, SEED_MAX)


def parse_document(doc: Any) -> DocumentRecord:
    """Check a whole environment document and return it as typed records.

    :param doc: the decoded JSON of a Flagsmith environment document.
    :return: the parsed document.
    :raises ValidationError: naming the JSON path of the first wrong field.
    """
    root = _mapping(doc, "")
    project = _mapping(_get(root, "project", ""), "project")
    states = _states(_get(root, "feature_states", ""), "feature_states", segment=False)
    names = {state.feature_name for state in states}
    hide = _get(root, "hide_disabled_flags", "", None)
    if hide is None:
        hide = _get(project, "hide_disabled_flags", "project", None)
    return DocumentRecord(
        api_key=_text(_get(root, "api_key", ""), "api_key", KEY_MAX),
        name=_text(_get(root, "name", ""), "name", NAME_MAX),
        project_name=_text(_get(project, "name", "project"), "project.name", NAME_MAX),
        allow_client_traits=_flag(
            _get(root, "allow_client_traits", "", True), "allow_client_traits"
        ),
        hide_disabled_flags=False if hide is None else _flag(hide, "hide_disabled_flags"),
        server_key_only_ids=_server_key_only(project),
        states=states,
        segments=_segments(_get(project, "segments", "project"), names),
        identities=_identities(_get(root, "identity_overrides", "", None), names),
    )


def _server_key_only(project: Mapping[str, Any]) -> frozenset[int]:
    path = "project.server_key_only_feature_ids"
    raw = _get(project, "server_key_only_feature_ids", "project", None) or []
    return frozenset(_integer(item, _at(path, i)) for i, item in enumerate(_items(raw, path)))


def _states(
    value: Any, path: str, *, segment: bool, identity: bool = False
) -> tuple[StateRecord, ...]:
    found: dict[str, StateRecord] = {}
    for index, raw in enumerate(_items(value, path)):
        item_path = _at(path, index)
        state = _state(raw, item_path, segment=segment, identity=identity)
        if state.feature_name in found:
            _fail(_at(item_path, "feature.name"), f"feature {state.feature_name!r} appears twice")
        found[state.feature_name] = state
    return tuple(found.values())


def _check_known(states: tuple[StateRecord, ...], path: str, names: set[str]) -> None:
    for index, state in enumerate(states):
        if state.feature_name not in names:
            _fail(
                _at(_at(path, index), "feature.name"),
                f"unknown feature {state.feature_name!r} (not in feature_states)",
            )


def _state(raw: Any, path: str, *, segment: bool, identity: bool) -> StateRecord:
    item = _mapping(raw, path)
    feature_path = _at(path, "feature")
    feature = _mapping(_get(item, "feature", path), feature_path)
    name = _text(_get(feature, "name", feature_path), _at(feature_path, "name"), 150)
    if not _FEATURE_NAME.fullmatch(name):
        _fail(_at(feature_path, "name"), f"invalid feature name (expected {FEATURE_NAME_PATTERN})")
    kind = _get(feature, "type", feature_path, None)
    if kind is not None and kind not in FEATURE_TYPES:
        _fail(_at(feature_path, "type"), "expected STANDARD or MULTIVARIATE")
    return StateRecord(
        feature_id=_id(_get(feature, "id", feature_path), _at(feature_path, "id")),
        feature_name=name,
        feature_type=kind,
        enabled=_flag(_get(item, "enabled", path), _at(path, "enabled")),
        value=_typed_value(
            _get(item, "feature_state_value", path), _at(path, "feature_state_value")
        ),
        hash_key=_hash_key(item, path, required=not identity),
        priority=_priority(item, path) if segment else None,
        variants=_variants(item, path),
    )


def _hash_key(item: Mapping[str, Any], path: str, *, required: bool) -> str | None:
    # The SDK hashes str(django_id or featurestate_uuid); keep exactly that text.
    django_id = _optional_integer(item.get("django_id"), _at(path, "django_id"))
    if django_id:
        return _seed(django_id, _at(path, "django_id"))
    uuid_path = _at(path, "featurestate_uuid")
    state_uuid = item.get("featurestate_uuid")
    if state_uuid is None and not required:
        return None
    if not isinstance(state_uuid, str) or not state_uuid:
        _fail(uuid_path, "expected a string (a state needs django_id or featurestate_uuid)")
    return _seed(state_uuid, uuid_path)


def _priority(item: Mapping[str, Any], path: str) -> int | None:
    feature_segment = item.get("feature_segment")
    if feature_segment is None:
        return None
    segment_path = _at(path, "feature_segment")
    feature_segment = _mapping(feature_segment, segment_path)
    priority_path = _at(segment_path, "priority")
    priority = _optional_integer(feature_segment.get("priority"), priority_path)
    if priority is not None and not _PRIORITY_MIN <= priority <= _PRIORITY_MAX:
        _fail(priority_path, f"expected an integer from {_PRIORITY_MIN} to {_PRIORITY_MAX}")
    return priority


def _variants(item: Mapping[str, Any], path: str) -> tuple[VariantRecord, ...]:
    list_path = _at(path, "multivariate_feature_state_values")
    raw = item.get("multivariate_feature_state_values") or []
    variants = tuple(_variant(v, _at(list_path, i)) for i, v in enumerate(_items(raw, list_path)))
    if sum(variant.percentage for variant in variants) > 100 + _ALLOCATION_SLACK:
        _fail(list_path, "percentage allocations add up to more than 100")
    # Options without an id are told apart by value, in type and value: 1 and true are two.
    options = [
        ("value", values.identity_key(v.value)) if v.option_id is None else ("id", v.option_id)
        for v in variants
    ]
    for index, option in enumerate(options):
        if option in options[:index]:
            _fail(_at(list_path, index), "the same option appears twice")
    keys = [v.key for v in variants]
    for index, key in enumerate(keys):
        if key is not None and key in keys[:index]:
            _fail(_at(list_path, index), f"the variant key {key!r} appears twice")
    return variants


def _variant(raw: Any, path: str) -> VariantRecord:
    item = _mapping(raw, path)
    option_path = _at(path, "multivariate_feature_option")
    option = _mapping(_get(item, "multivariate_feature_option", path), option_path)
    value_id = _optional_integer(item.get("id"), _at(path, "id"))
    if value_id:
        seed = str(value_id)
    else:
        # The SDK reads uuid.UUID(mv_fs_value_uuid).int as the variant's priority.
        uuid_path = _at(path, "mv_fs_value_uuid")
        seed = _text(item.get("mv_fs_value_uuid"), uuid_path, SEED_MAX)
        try:
            uuid.UUID(seed)
        except ValueError:
            _fail(uuid_path, "expected a UUID (the value has no id)")
    return VariantRecord(
        seed=seed,
        option_id=_optional_id(option.get("id"), _at(option_path, "id")),
        value=_typed_value(_get(option, "value", option_path), _at(option_path, "value")),
        percentage=_percentage(
            _get(item, "percentage_allocation", path), _at(path, "percentage_allocation")
        ),
        key=_optional_text(option.get("key"), _at(option_path, "key"), OPTION_KEY_MAX) or None,
    )


def _segments(value: Any, names: set[str]) -> tuple[SegmentRecord, ...]:
    path = "project.segments"
    segments: list[SegmentRecord] = []
    for index, raw in enumerate(_items(value, path)):
        segment = _segment(raw, _at(path, index), names)
        if any(seen.seed == segment.seed for seen in segments):
            _fail(_at(_at(path, index), "id"), f"segment id {segment.seed} appears twice")
        segments.append(segment)
    return tuple(segments)


def _segment(raw: Any, path: str, names: set[str]) -> SegmentRecord:
    item = _mapping(raw, path)
    states_path = _at(path, "feature_states")
    overrides = _states(item.get("feature_states") or [], states_path, segment=True)
    _check_known(overrides, states_path, names)
    return SegmentRecord(
        seed=_seed(_get(item, "id", path), _at(path, "id")),
        name=_text(_get(item, "name", path), _at(path, "name"), NAME_MAX),
        rules=_rules(_get(item, "rules", path), _at(path, "rules")),
        overrides=overrides,
    )


def _rules(value: Any, path: str) -> list[dict[str, Any]]:
    return [_rule(raw, _at(path, index)) for index, raw in enumerate(_items(value, path))]


def _rule(raw: Any, path: str) -> dict[str, Any]:
    rule = _mapping(raw, path)
    kind = _get(rule, "type", path)
    if kind not in RULE_TYPES:
        _fail(_at(path, "type"), "expected ALL, ANY or NONE")
    conditions_path = _at(path, "conditions")
    conditions = _items(rule.get("conditions", []), conditions_path)
    return {
        "type": kind,
        "rules": _rules(rule.get("rules", []), _at(path, "rules")),
        "conditions": [_condition(c, _at(conditions_path, i)) for i, c in enumerate(conditions)],
    }


def _condition(raw: Any, path: str) -> dict[str, Any]:
    condition = _mapping(raw, path)
    operator = _get(condition, "operator", path)
    if operator not in SUPPORTED_OPERATORS:
        _fail(_at(path, "operator"), "unknown operator")
    value = _optional_text(condition.get("value"), _at(path, "value"), 10_000)
    if operator == REGEX and (problem := regex_guard.pattern_problem(str(value))):
        _fail(_at(path, "value"), f"{problem} (pattern {value!r})")
    return {
        "operator": operator,
        "property_": _optional_text(condition.get("property_"), _at(path, "property_"), 1000),
        "value": value,
    }


def _identities(value: Any, names: set[str]) -> tuple[IdentityRecord, ...]:
    path = "identity_overrides"
    found: dict[str, IdentityRecord] = {}
    for index, raw in enumerate(_items(value or [], path)):
        item_path = _at(path, index)
        identity = _identity(raw, item_path, names)
        if identity.identifier in found:
            _fail(_at(item_path, "identifier"), "identifier appears twice")
        found[identity.identifier] = identity
    return tuple(found.values())


def _identity(raw: Any, path: str, names: set[str]) -> IdentityRecord:
    item = _mapping(raw, path)
    features_path = _at(path, "identity_features")
    overrides = _states(
        item.get("identity_features") or [], features_path, segment=False, identity=True
    )
    _check_known(overrides, features_path, names)
    traits_path = _at(path, "identity_traits")
    raw_traits = _items(item.get("identity_traits") or [], traits_path)
    return IdentityRecord(
        identifier=_text(_get(item, "identifier", path), _at(path, "identifier"), IDENTIFIER_MAX),
        overrides=overrides,
        traits=tuple(_trait(t, _at(traits_path, i)) for i, t in enumerate(raw_traits)),
    )


def _trait(raw: Any, path: str) -> tuple[str, TypedValue]:
    item = _mapping(raw, path)
    key = _text(_get(item, "trait_key", path), _at(path, "trait_key"), TRAIT_KEY_MAX)
    value_path = _at(path, "trait_value")
    value = _typed_value(_get(item, "trait_value", path), value_path, values.TRAIT)
    return key, value
