"""Form input for identity override changes: a typed value from text, an expiry from the picker.

Pure functions (no database); ``overrides`` re-exports them for its callers.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from ..models import TypedValue
from . import humanize
from .errors import ValidationError

VALUE_KINDS = ("string", "integer", "boolean", "json")
EXPIRY_CHOICES = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "1w": timedelta(weeks=1)}
OVERRIDE_STRING_MAX = 20_000
_INTEGER = re.compile(r"-?[0-9]+")


def parse_value(raw: str, kind: str) -> TypedValue:
    """Turn form text into a typed override value (JSON is validated, stored as text).

    :param raw: the text typed
    :param kind: one of ``string``, ``integer``, ``boolean``, ``json``
    :return: the typed value
    :raises ValidationError: when the text is not a value of that kind
    """
    text = raw.strip()
    if kind == "integer":
        if not _INTEGER.fullmatch(text) or len(text) > 19:
            shown = humanize.value_text(raw)
            raise ValidationError(f"{shown} is not a whole number.", field="value")
        return int(text)
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValidationError("A boolean is true or false.", field="value")
        return text.lower() == "true"
    if len(raw) > OVERRIDE_STRING_MAX:
        raise ValidationError(
            f"A value has at most {OVERRIDE_STRING_MAX:,} characters.", field="value"
        )
    if kind == "json":
        _check_json(text)
        return text
    if kind != "string":
        shown = humanize.value_text(kind)
        raise ValidationError(f"Unknown value type {shown}.", field="value_type")
    return raw


def _check_json(text: str) -> None:
    """Refuse text that is not strict JSON (no NaN or Infinity, no nesting too deep to parse)."""
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise ValidationError("Not valid JSON: nested too deeply.", field="value") from exc
    except ValueError as exc:
        raise ValidationError(f"Not valid JSON: {exc}", field="value") from exc


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def expiry_from_choice(
    choice: str | None, custom: datetime | None, now: datetime
) -> datetime | None:
    """Turn the expiry picker into a datetime: never, 1 hour, 1 day, 1 week or custom.

    :param choice: ``""``/``never``, ``1h``, ``1d``, ``1w`` or ``custom``
    :param custom: the custom date and time (naive means UTC)
    :param now: the current time
    :raises ValidationError: unknown choice, or a custom time missing or not in the future
    """
    if not choice or choice == "never":
        return None
    if choice in EXPIRY_CHOICES:
        return now + EXPIRY_CHOICES[choice]
    if choice != "custom":
        raise ValidationError(f"Unknown expiry {humanize.value_text(choice)}.", field="expires")
    if custom is None:
        raise ValidationError("Choose the date and time the override ends.", field="expires_at")
    moment = custom if custom.tzinfo is not None else custom.replace(tzinfo=UTC)
    if moment <= now:
        raise ValidationError("The expiry must be in the future.", field="expires_at")
    return moment
