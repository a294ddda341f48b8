"""Parse the SDK's events batch (``POST {events_api_url}v1/events``).

The official Python SDK (6.x) posts ``{"events": [...]}``, each event
``{"event", "feature_name", "identifier", "value", "traits", "metadata", "timestamp"}``:
custom events from ``track_event()`` and ``$flag_exposure`` events from
``get_experiment_flag()`` (``feature_name`` set, ``value`` the variant key,
``metadata.experiment_id``). The batch's shape and every limit are checked here, and a
refusal names the offending field (400); what the events are about is looked up later, off
the request path, where events for unknown identities, features or experiments are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...models.experiment import EVENT_NAME_MAX, EVENT_VALUE_MAX
from ..sdk.parsing import BadRequest, parse_identifier

FLAG_EXPOSURE_EVENT = "$flag_exposure"
# The SDK flushes at 1,000 buffered events by default (max_buffer_items); room for five times.
MAX_EVENTS = 5_000
# A full default SDK batch is about 300 KiB; the rest of the SDK API keeps its 64 KiB.
EVENTS_BODY_MAX = 1024 * 1024
FEATURE_NAME_MAX = 150
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class SdkEvent:
    """One event as stored code needs it; traits, timestamps and SDK metadata are dropped."""

    name: str
    identifier: str | None
    feature_name: str | None
    value: str | None
    experiment_id: int | None

    @property
    def is_exposure(self) -> bool:
        return self.name == FLAG_EXPOSURE_EVENT


def parse_events(raw: Any) -> tuple[SdkEvent, ...]:
    """Check a batch and return its events.

    :raises BadRequest: for a batch that is not ``{"events": [...]}``, more than
        ``MAX_EVENTS`` events, or an event with a field of the wrong kind or length.
    """
    if not isinstance(raw, dict) or "events" not in raw:
        raise BadRequest('Expected a JSON object {"events": [...]}', "events")
    items = raw["events"]
    if not isinstance(items, list):
        raise BadRequest("events: expected a list of events", "events")
    if len(items) > MAX_EVENTS:
        raise BadRequest(f"events: at most {MAX_EVENTS:,} events per batch", "events")
    return tuple(_event(item, f"events[{index}]") for index, item in enumerate(items))


def _event(item: Any, field: str) -> SdkEvent:
    if not isinstance(item, dict):
        raise BadRequest(f"{field}: expected an object", field)
    name = _text(item.get("event"), f"{field}.event", EVENT_NAME_MAX, required=True)
    assert name is not None
    identifier = item.get("identifier")
    if identifier is not None:
        identifier = parse_identifier(identifier, f"{field}.identifier")
    feature_name = _text(item.get("feature_name"), f"{field}.feature_name", FEATURE_NAME_MAX)
    if name == FLAG_EXPOSURE_EVENT and feature_name is None:
        raise BadRequest(f"{field}.feature_name: required for {FLAG_EXPOSURE_EVENT}", field)
    for optional in ("traits", "metadata"):
        if item.get(optional) is not None and not isinstance(item[optional], dict):
            raise BadRequest(f"{field}.{optional}: expected an object", f"{field}.{optional}")
    timestamp = item.get("timestamp")
    if timestamp is not None and not _is_int(timestamp):
        raise BadRequest(f"{field}.timestamp: expected milliseconds (an integer)", field)
    return SdkEvent(
        name=name,
        identifier=identifier,
        feature_name=feature_name,
        value=_value(item.get("value"), f"{field}.value"),
        experiment_id=_experiment_id(item.get("metadata"), f"{field}.metadata.experiment_id"),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64


def _text(value: Any, field: str, limit: int, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise BadRequest(f"{field}: this field is required", field)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{field}: expected a string", field)
    if not value or len(value) > limit:
        raise BadRequest(f"{field}: must have 1 to {limit} characters", field)
    if "\x00" in value:
        raise BadRequest(f"{field}: must not contain NUL characters", field)
    return value


def _value(value: Any, field: str) -> str | None:
    """Read an event value; the SDK sends text, other clients may send a number or boolean."""
    if value is None:
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise BadRequest(f"{field}: expected a string, number or boolean", field)
    if len(value) > EVENT_VALUE_MAX:
        raise BadRequest(f"{field}: at most {EVENT_VALUE_MAX} characters", field)
    if "\x00" in value:
        raise BadRequest(f"{field}: must not contain NUL characters", field)
    return value


def _experiment_id(metadata: Any, field: str) -> int | None:
    if not isinstance(metadata, dict) or metadata.get("experiment_id") is None:
        return None
    value = metadata["experiment_id"]
    if not _is_int(value):
        raise BadRequest(f"{field}: expected an integer", field)
    return int(value)
