"""Flag usage: evaluation counts per environment, feature and hour, and what each identity saw.

The tables stay small by construction: a count row per (environment, feature, hour), however
many evaluations it sums, a "seen" row per (identity, feature, variant), updated in place, and
a value row per (environment, feature, day, served state), however many identities got it.
Writes come from the in-process buffer in ``services/usage`` (batched upserts, off the request
path).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import TypedValueMixin, UTCDateTime, sha256_hex

# The stored variant of a flag that has none (a standard feature, or an identity override):
# a primary-key column cannot hold NULL.
NO_VARIANT = ""
STATE_KEY_LENGTH = 32


def state_key(enabled: bool, value_type: str, value_text: str | None) -> str:
    """Return the key of a served state (enabled and typed value) in ``FlagValuesDaily``.

    The type is part of it, so 1, True, 1.0 and "1" are four states; a hash keeps the primary
    key short whatever the value's length (128 bits: two states of a feature never collide).
    """
    text = "" if value_text is None else value_text  # only the "null" type has no text
    return sha256_hex(f"{int(enabled)}|{value_type}|{text}")[:STATE_KEY_LENGTH]


class FlagUsage(Model):
    """Evaluations of one feature in one environment during one hour (UTC)."""

    __tablename__ = "flag_usage"
    __table_args__ = (Index("ix_flag_usage_hour", "hour"),)

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)


class FlagUsageDaily(Model):
    """The day's sum of ``FlagUsage`` (UTC), kept alongside so 30-day charts read 30 rows."""

    __tablename__ = "flag_usage_daily"
    __table_args__ = (Index("ix_flag_usage_daily_day", "day"),)

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # The latest hour counted this day ("last evaluated").
    last_hour: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class FlagSeen(TypedValueMixin, Model):
    """The value (and variant) an identity last got for a feature, and when it first/last did."""

    __tablename__ = "flag_seen"
    __table_args__ = (
        # Stale flags: the values one feature served in an environment since a date.
        Index("ix_flag_seen_feature", "environment_id", "feature_id", "last_seen_at"),
        # Retention: delete the rows not seen since the cut-off.
        Index("ix_flag_seen_last_seen", "last_seen_at"),
    )

    identity_id: Mapped[int] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), primary_key=True
    )
    variant: Mapped[str] = mapped_column(String(100), primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
    )
    enabled: Mapped[bool] = mapped_column(nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class FlagValuesDaily(TypedValueMixin, Model):
    """A state (enabled and value) a feature served to identities on one day (UTC).

    The rollup of what ``FlagSeen`` records, by day and state instead of by identity: the
    stale "constant value" filter reads a few rows per feature and day instead of a row per
    identity. No identity is in it, so erasing one leaves it as it is (like the counts).
    """

    __tablename__ = "flag_values_daily"
    # Retention: delete the days past the cut-off.
    __table_args__ = (Index("ix_flag_values_daily_day", "day"),)

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    state_key: Mapped[str] = mapped_column(String(STATE_KEY_LENGTH), primary_key=True)
    enabled: Mapped[bool] = mapped_column(nullable=False)
    # Identities recorded with this state this day, each once per buffer flush (an identity
    # served across several flushes counts once in each): how much use, not distinct people.
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # The first and last time this day that an identity was recorded getting this state.
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
