"""Flag usage: evaluation counts per environment, feature and hour, and what each identity saw.

Both tables stay small by construction: a count row per (environment, feature, hour), however
many evaluations it sums, and a "seen" row per (identity, feature, variant), updated in place.
Writes come from the in-process buffer in ``services/usage`` (batched upserts, off the request
path).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import TypedValueMixin, UTCDateTime

# The stored variant of a flag that has none (a standard feature, or an identity override):
# a primary-key column cannot hold NULL.
NO_VARIANT = ""


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
