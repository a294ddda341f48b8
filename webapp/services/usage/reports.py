"""Usage read models for the pages: daily charts, totals, stale flags, an identity's seen flags.

Every query reads the small tables of ``models/usage.py`` through their primary keys or
indexes: charts read the day rows (30 per feature), stale checks the hour rows by time or the
day rows of served states, and "seen" rows are read by identity (the primary key's prefix).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from ...extensions import db
from ...models import (
    NO_VARIANT,
    Environment,
    Feature,
    FlagSeen,
    FlagUsage,
    FlagUsageDaily,
    FlagValuesDaily,
    decode_value,
)
from ...models.base import TypedValue
from .states import day_of

CHART_DAYS = 30
STALE_DAYS_DEFAULT = 30
STALE_DAYS_MAX = 3650


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    count: int


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """A feature's evaluations in one environment over the chart's days (oldest first)."""

    feature_id: int
    days: tuple[DayCount, ...]
    total: int
    last_evaluated: datetime | None

    @property
    def peak(self) -> int:
        return max((d.count for d in self.days), default=0)

    def bars_path(self, height: int) -> str:
        """Return the day bars as one SVG path (10 units per day, 8 wide, peak at full height).

        One element instead of a rect per day keeps a 50-row list's charts cheap to render.
        """
        peak = self.peak
        if not peak:
            return ""
        base = height - 1
        parts = []
        for index, day in enumerate(self.days):
            if day.count:
                bar = max(day.count / peak * (height - 2), 1.0)
                parts.append(f"M{index * 10 + 1} {base}v-{bar:.2f}h8v{bar:.2f}z")
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class EnvironmentUsage:
    environment: Environment
    summary: UsageSummary


@dataclass(frozen=True, slots=True)
class SeenFlag:
    """What an identity last got for one feature (and variant), and when."""

    feature_id: int
    feature_name: str
    variant: str | None
    enabled: bool
    value: TypedValue
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class StaleFlag:
    """Why a feature counts as stale: no evaluations, or one value for every identity."""

    feature_id: int
    last_evaluated: datetime | None = None
    enabled: bool | None = None
    value: TypedValue = None
    # constant: the only state served since then, on how many days since the cut-off
    since: datetime | None = None
    days_served: int = 0
    kind: str = "unused"


@dataclass(frozen=True, slots=True)
class StaleReport:
    kind: str
    days: int
    flags: dict[int, StaleFlag] = field(default_factory=dict)


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC)


def _utc(value: Any) -> datetime:
    """Return a non-null stored time as aware UTC (min/max over non-null columns)."""
    moment = _as_utc(value)
    assert moment is not None
    return moment


def chart_start(now: datetime) -> datetime:
    """Return the first instant of the chart: midnight UTC, CHART_DAYS - 1 days ago."""
    return day_of(now) - timedelta(days=CHART_DAYS - 1)


def _summaries(
    groups: dict[Any, dict[date, int]],
    last: dict[Any, datetime | None],
    keys: Iterable[Any],
    start: datetime,
    feature_of: Any,
) -> dict[Any, UsageSummary]:
    first_day = start.date()
    out = {}
    for key in keys:
        per_day = groups.get(key, {})
        days = tuple(
            DayCount(first_day + timedelta(days=i), per_day.get(first_day + timedelta(days=i), 0))
            for i in range(CHART_DAYS)
        )
        out[key] = UsageSummary(feature_of(key), days, sum(d.count for d in days), last.get(key))
    return out


def feature_summaries(
    environment_id: int, feature_ids: Sequence[int], now: datetime
) -> dict[int, UsageSummary]:
    """Summarise the features' evaluations in one environment (the Features list).

    :return: feature id -> daily counts of the last CHART_DAYS days, total, last evaluated.
    """
    if not feature_ids:
        return {}
    start = chart_start(now)
    # The day rows: 30 per feature, however many hours had evaluations.
    rows = db.session.execute(
        select(
            FlagUsageDaily.feature_id,
            FlagUsageDaily.day,
            FlagUsageDaily.count,
            FlagUsageDaily.last_hour,
        ).where(
            FlagUsageDaily.environment_id == environment_id,
            FlagUsageDaily.feature_id.in_(feature_ids),
            FlagUsageDaily.day >= start,
        )
    ).all()
    groups: dict[int, dict[date, int]] = defaultdict(dict)
    last: dict[int, datetime | None] = {}
    for feature_id, day, count, latest in rows:
        groups[feature_id][day.date()] = int(count)
        if last.get(feature_id) is None or latest > last[feature_id]:  # type: ignore[operator]
            last[feature_id] = latest
    quiet = [f for f in feature_ids if f not in last]
    last.update(_last_evaluated(environment_id, quiet))
    return _summaries(groups, last, feature_ids, start, lambda key: key)


def _last_evaluated(environment_id: int, feature_ids: Sequence[int]) -> dict[int, datetime | None]:
    """Return when each feature was last counted (any time within the retention)."""
    if not feature_ids:
        return {}
    rows = db.session.execute(
        select(FlagUsageDaily.feature_id, func.max(FlagUsageDaily.last_hour))
        .where(
            FlagUsageDaily.environment_id == environment_id,
            FlagUsageDaily.feature_id.in_(feature_ids),
        )
        .group_by(FlagUsageDaily.feature_id)
    ).all()
    return {feature_id: _as_utc(latest) for feature_id, latest in rows}


def feature_usage_by_environment(
    environments: Sequence[Environment], feature_id: int, now: datetime
) -> list[EnvironmentUsage]:
    """Summarise one feature's evaluations in each environment (the Feature page)."""
    return [
        EnvironmentUsage(env, feature_summaries(env.id, [feature_id], now)[feature_id])
        for env in environments
    ]


def seen_by_identity(identity_id: int) -> list[SeenFlag]:
    """Return what the identity last got for each feature (one row per variant), by name."""
    rows = db.session.execute(
        select(FlagSeen, Feature.name)
        .join(Feature, Feature.id == FlagSeen.feature_id)
        .where(FlagSeen.identity_id == identity_id)
        .order_by(Feature.name, FlagSeen.last_seen_at.desc())
    ).all()
    return [
        SeenFlag(
            seen.feature_id,
            name,
            None if seen.variant == NO_VARIANT else seen.variant,
            seen.enabled,
            decode_value(seen.value_type, seen.value_text),
            seen.first_seen_at,
            seen.last_seen_at,
        )
        for seen, name in rows
    ]


def unused_flags(
    environment_id: int, feature_ids: Sequence[int], days: int, now: datetime
) -> dict[int, StaleFlag]:
    """Return the features with no evaluation in the last ``days`` days, with the last one."""
    cutoff = now - timedelta(days=days)
    used = set(
        db.session.scalars(
            select(FlagUsage.feature_id)
            .distinct()
            .where(FlagUsage.environment_id == environment_id, FlagUsage.hour >= cutoff)
        )
    )
    quiet = [f for f in feature_ids if f not in used]
    last = _last_evaluated(environment_id, quiet)
    return {f: StaleFlag(f, last_evaluated=last.get(f), kind="unused") for f in quiet}


@dataclass(slots=True)
class _Span:
    """When one state was served (first and last) and on how many days, from its day rows."""

    first: datetime
    last: datetime
    days: int


@dataclass(slots=True)
class _States:
    """One feature's served states, by state key: the state and its span."""

    values: dict[str, tuple[bool, str, str | None]] = field(default_factory=dict)
    spans: dict[str, _Span] = field(default_factory=dict)

    def add(self, key: str, state: tuple[bool, str, str | None], span: _Span) -> None:
        self.values[key] = state
        self.spans[key] = span


def _state_groups(environment_id: int, where: Sequence[Any]) -> dict[int, _States]:
    """Group the environment's day rows matching ``where`` by feature and state."""
    values = FlagValuesDaily
    rows = db.session.execute(
        select(
            values.feature_id, values.state_key, values.enabled, values.value_type,
            values.value_text, func.min(values.first_at), func.max(values.last_at), func.count(),
        )
        .where(values.environment_id == environment_id, *where)
        .group_by(
            values.feature_id, values.state_key, values.enabled, values.value_type,
            values.value_text,
        )
    ).all()  # fmt: skip
    found: dict[int, _States] = defaultdict(_States)
    for feature_id, key, enabled, kind, text, first, last, days in rows:
        span = _Span(_utc(first), _utc(last), int(days))
        found[feature_id].add(key, (bool(enabled), kind, text), span)
    return found


def constant_flags(
    environment_id: int, feature_ids: Sequence[int], days: int, now: datetime
) -> dict[int, StaleFlag]:
    """Return the features that served one state (enabled and value) to every identity seen
    in the last ``days`` days, and had served it since before then (no other state since).

    Reads the day rollup (``FlagValuesDaily``): the rows since the cut-off (a few per feature
    and day), then the earlier rows of the features with one state, for since when.
    """
    cutoff = now - timedelta(days=days)
    values = FlagValuesDaily
    wanted = list(feature_ids)
    recent = _state_groups(
        environment_id,
        [values.feature_id.in_(wanted), values.day >= day_of(cutoff), values.last_at >= cutoff],
    )
    single = [f for f, states in recent.items() if len(states.values) == 1]
    if not single:
        return {}
    # What they served before the cut-off (on its day too): since when the state is the only one.
    before = _state_groups(
        environment_id,
        [values.feature_id.in_(single), values.day <= day_of(cutoff), values.last_at < cutoff],
    )
    found = {}
    for feature_id, since in _only_since(environment_id, recent, before).items():
        if since > cutoff:
            continue  # not the only value served for long enough to call it constant
        ((key, (enabled, kind, text)),) = recent[feature_id].values.items()
        found[feature_id] = StaleFlag(
            feature_id,
            enabled=enabled,
            value=decode_value(kind, text),
            since=since,
            days_served=recent[feature_id].spans[key].days,
            kind="constant",
        )
    return found


def _only_since(
    environment_id: int, recent: dict[int, _States], before: dict[int, _States]
) -> dict[int, datetime]:
    """Return since when each feature with one recent state has served only that state:
    its first time after another state was last served (or its first time at all).
    """
    since: dict[int, datetime] = {}
    changed: dict[int, tuple[str, datetime]] = {}
    for feature_id, states in recent.items():
        if len(states.values) != 1:
            continue
        ((key, span),) = states.spans.items()
        earlier = before.get(feature_id, _States())
        others = [other.last for k, other in earlier.spans.items() if k != key]
        if others:
            changed[feature_id] = key, max(others)
        else:
            own = earlier.spans.get(key)
            since[feature_id] = min(span.first, own.first) if own else span.first
    if changed:
        values = FlagValuesDaily
        after_change = or_(*(
            and_(values.feature_id == f, values.state_key == k, values.last_at >= last)
            for f, (k, last) in changed.items()
        ))  # fmt: skip
        rows = db.session.execute(
            select(values.feature_id, func.min(values.first_at))
            .where(values.environment_id == environment_id, after_change)
            .group_by(values.feature_id)
        ).all()
        for feature_id, first in rows:
            # A day row may hold both states: then it is only from the other's last time on.
            since[feature_id] = max(_utc(first), changed[feature_id][1])
    return since


def stale_flags(
    environment_id: int, feature_ids: Sequence[int], kind: str, days: int, now: datetime
) -> StaleReport:
    """Return the stale features of one kind ("unused" or "constant") with their evidence."""
    finder = unused_flags if kind == "unused" else constant_flags
    return StaleReport(kind, days, finder(environment_id, feature_ids, days, now))


@dataclass(frozen=True, slots=True)
class FeaturesUsage:
    """The Features list's usage column and, when a stale filter is on, its evidence."""

    summaries: dict[int, UsageSummary]
    stale: StaleReport | None = None

    def keep(self, feature_id: int) -> bool:
        """Say whether the list shows the feature (every one, unless filtered to stale)."""
        return self.stale is None or feature_id in self.stale.flags


def features_usage(
    environment_id: int,
    feature_ids: Sequence[int],
    now: datetime,
    stale: str | None = None,
    days: int = STALE_DAYS_DEFAULT,
) -> FeaturesUsage:
    """Return the usage column of the Features list, filtered to stale flags when asked.

    :param stale: None, "unused" (no evaluations in ``days``) or "constant" (one value
        served to every identity for ``days``).
    """
    report = None
    if stale in ("unused", "constant"):
        report = stale_flags(environment_id, feature_ids, stale, days, now)
        feature_ids = [f for f in feature_ids if f in report.flags]
    return FeaturesUsage(feature_summaries(environment_id, feature_ids, now), report)
