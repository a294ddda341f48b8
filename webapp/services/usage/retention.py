"""Retention: delete usage older than ``USAGE_RETENTION_DAYS`` in small batches (cron-safe).

Each batch is its own short transaction, so pruning millions of rows never holds long locks
or one huge transaction, and an interrupted run simply resumes on the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_

from ...extensions import db
from ...models import FlagSeen, FlagUsage, FlagUsageDaily, FlagValuesDaily
from .states import day_of

PRUNE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class PruneResult:
    counts: int
    seen: int
    cutoff: datetime


def _delete_batches(model: Any, keys: tuple[Any, ...], older: Any, batch: int) -> int:
    total = 0
    while True:
        chosen = select(*keys).where(older).limit(batch)
        result = db.session.execute(delete(model).where(tuple_(*keys).in_(chosen)))
        db.session.commit()
        removed = int(result.rowcount or 0)  # type: ignore[attr-defined]
        total += removed
        if removed < batch:
            return total


def prune_usage(now: datetime, days: int, batch: int = PRUNE_BATCH) -> PruneResult:
    """Delete hour counts older than ``days``, seen rows not seen since then, and the day
    rows (counts and served states) of the days wholly before the cut-off.

    :param days: the retention in days (at least 1).
    :param batch: rows deleted per transaction.
    :return: how many rows of each table went, and the cut-off used.
    """
    if days < 1:
        raise ValueError("the retention is at least one day")
    cutoff = now - timedelta(days=days)
    counts = _delete_batches(
        FlagUsage,
        (FlagUsage.environment_id, FlagUsage.feature_id, FlagUsage.hour),
        FlagUsage.hour < cutoff,
        batch,
    )
    # Day rows go once the whole day is past the cut-off.
    midnight = day_of(cutoff)
    _delete_batches(
        FlagUsageDaily,
        (FlagUsageDaily.environment_id, FlagUsageDaily.feature_id, FlagUsageDaily.day),
        FlagUsageDaily.day < midnight,
        batch,
    )
    values = FlagValuesDaily
    _delete_batches(
        values,
        (values.environment_id, values.feature_id, values.day, values.state_key),
        values.day < midnight,
        batch,
    )
    seen = _delete_batches(
        FlagSeen,
        (FlagSeen.identity_id, FlagSeen.feature_id, FlagSeen.variant),
        FlagSeen.last_seen_at < cutoff,
        batch,
    )
    return PruneResult(counts, seen, cutoff)
