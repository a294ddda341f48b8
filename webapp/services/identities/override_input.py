"""Form input for identity override changes: an expiry from the picker.

Pure functions (no database); ``overrides`` re-exports them for its callers. Values are
parsed by ``values`` (the one typed value model).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .. import humanize
from ..errors import ValidationError

EXPIRY_CHOICES = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "1w": timedelta(weeks=1)}


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
