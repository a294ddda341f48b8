"""The usage buffer: evaluation counts and "seen" rows, aggregated in memory, written in batches.

Request threads only add to dictionaries under a lock (a few microseconds per request); a
background thread of the worker swaps the dictionaries out every ``USAGE_FLUSH_INTERVAL``
seconds (or sooner when the buffer holds ``USAGE_BUFFER_MAX`` keys, and at exit) and writes
them with one upsert per table and batch, on its own session. So a count row is written once
per flush, however many evaluations it sums, a busy identity's "seen" rows once per flush, and
a feature's served state (the daily rollup of the "seen" rows) once per flush and day.

Counts still in the buffer when a worker is killed (SIGKILL, power loss) are lost: usage is a
statistic, not a ledger; a clean exit flushes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Engine, case

from ...models import NO_VARIANT, FlagSeen, FlagUsage, FlagUsageDaily
from ...models.base import TypedValue, encode_value
from .states import ServedStates, StateServed, day_of, write_states
from .upserts import insert_into, write_rows

log = logging.getLogger(__name__)

UsageKey = tuple[int, int, datetime]  # environment id, feature id, hour
SeenKey = tuple[int, int, str]  # identity id, feature id, variant


@dataclass(slots=True)
class SeenEntry:
    """What one identity got for one feature and variant during the buffered interval."""

    environment_id: int
    enabled: bool
    value: TypedValue
    first_seen_at: datetime
    last_seen_at: datetime
    # add_served: the state at first_seen_at (the other fields follow the last one).
    first_state: tuple[bool, TypedValue] | None = None


class Served(NamedTuple):
    """One flag as a response served it (a tuple: built for every flag of every identify)."""

    feature_id: int
    enabled: bool
    value: TypedValue
    variant: str | None


def hour_of(moment: datetime) -> datetime:
    """Return the start of the UTC hour holding ``moment`` (the count rows' bucket)."""
    return moment.replace(minute=0, second=0, microsecond=0)


# Forks so far in this process's line: a buffer whose flush thread was started before the
# latest fork (gunicorn's workers) has none in this process. Counted by an at-fork hook
# rather than comparing os.getpid() on every request (a system call).
_forks = 0


def _after_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_after_fork)

_NO_HOUR = (datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC))


class UsageBuffer:
    """Counts and seen rows of one worker, waiting to be written.

    :param engine: the database the flush writes to (its own sessions, never the request's).
    :param interval: seconds between background flushes; None: only explicit ``flush()``.
    :param max_keys: buffered keys that wake the flush early.
    """

    def __init__(self, engine: Engine, interval: float | None, max_keys: int = 10_000) -> None:
        self.engine = engine
        self.interval = interval
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._counts: dict[UsageKey, int] = {}
        self._seen: dict[SeenKey, SeenEntry] = {}
        # Whole responses, expanded per flag only at flush time (the identify path does one
        # dictionary update for its counts and one for its identity, whatever its flag count).
        self._responses: dict[tuple[int, datetime, int], int] = {}
        self._served_sets: dict[int, Sequence[Any]] = {}
        self._identities: dict[int, IdentityResponses] = {}
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._forks = _forks
        # The hour bucket the last aware-UTC ``now`` fell in, and the next one's start: one
        # tuple, so a thread reading it never sees one half of another thread's update.
        self._hour_span = _NO_HOUR

    # -- the request side ---------------------------------------------------------------

    def _hour(self, now: datetime) -> datetime:
        """Return ``hour_of(now)``: the last one when ``now`` (UTC) is in the same hour.

        ``datetime.replace`` parses its keywords by name and builds the datetime twice:
        with ``os.getpid()`` (now the at-fork counter) it was over half of the instructions
        an identify spent recording (23,000 -> 10,300 per response, callgrind). Other zones
        and naive times always take ``hour_of`` (a zone's wall clock can repeat an hour).
        """
        start, end = self._hour_span
        if now.tzinfo is UTC and start <= now < end:
            return start
        start = hour_of(now)
        if now.tzinfo is UTC:
            self._hour_span = (start, start + timedelta(hours=1))
        return start

    def add_counts(self, environment_id: int, counts: Mapping[int, int], now: datetime) -> None:
        """Add evaluation counts (feature id -> evaluations) for this hour."""
        hour = self._hour(now)
        with self._lock:
            found = self._counts
            for feature_id, count in counts.items():
                key = (environment_id, feature_id, hour)
                found[key] = found.get(key, 0) + count
            size = len(found) + len(self._seen)
        self._after_add(size)

    def add_served(
        self,
        environment_id: int,
        identity_id: int | None,
        served: Iterable[Served],
        now: datetime,
    ) -> None:
        """Count one evaluation of each served flag and, for a stored identity, what it got."""
        hour = self._hour(now)
        with self._lock:
            counts = self._counts
            seen = self._seen
            for flag in served:
                key = (environment_id, flag.feature_id, hour)
                counts[key] = counts.get(key, 0) + 1
                if identity_id is None:
                    continue
                seen_key = (identity_id, flag.feature_id, flag.variant or NO_VARIANT)
                entry = seen.get(seen_key)
                if entry is None:
                    seen[seen_key] = SeenEntry(
                        environment_id, flag.enabled, flag.value, now, now,
                        (flag.enabled, flag.value),
                    )  # fmt: skip
                else:
                    entry.enabled, entry.value, entry.last_seen_at = flag.enabled, flag.value, now
            size = len(counts) + len(seen)
        self._after_add(size)

    def add_response(
        self,
        environment_id: int,
        identity_id: int | None,
        served: Sequence[Any],
        flags: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """Record one flags/identify response: ``served`` are the features it returned
        (objects with ``name`` and ``feature_id``), ``flags`` their results by name.

        The identity keeps its first and last response of the interval; a different response
        in between (a variant change and back within a second) is not recorded.
        """
        key = (environment_id, self._hour(now), id(served))
        with self._lock:
            responses = self._responses
            responses[key] = responses.get(key, 0) + 1
            self._served_sets[id(served)] = served  # keeps the id unique while buffered
            if identity_id is not None:
                entry = self._identities.get(identity_id)
                if entry is None:
                    self._identities[identity_id] = IdentityResponses(
                        environment_id, (now, served, flags), (now, served, flags)
                    )
                else:
                    entry.last = (now, served, flags)
            size = len(responses) + len(self._identities) + len(self._counts)
        self._after_add(size)

    def _after_add(self, size: int) -> None:
        if self.interval is None:
            return
        if self._thread is None or self._forks != _forks:
            self._start()
        if size >= self.max_keys:
            self._wake.set()

    # -- the writer side ----------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._forks == _forks:
                return
            # After a fork (gunicorn) the parent's thread does not exist here: start ours.
            self._forks = _forks
            self._thread = threading.Thread(target=self._run, name="usage-flush", daemon=True)
            self._thread.start()
            _RUNNING.add(self)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the next flush retries what it can; never kill the thread
                log.exception("usage flush failed")

    def stop(self) -> None:
        """Stop the background thread after a last flush (exit, tests)."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.flush()

    def pending(self) -> int:
        """Return how many keys wait to be written."""
        with self._lock:
            return (
                len(self._counts) + len(self._seen) + len(self._responses) + len(self._identities)
            )

    def flush(self) -> None:
        """Write everything buffered so far (one upsert per table and batch)."""
        with self._flush_lock:
            with self._lock:
                counts, self._counts = self._counts, {}
                seen, self._seen = self._seen, {}
                responses, self._responses = self._responses, {}
                served_sets, self._served_sets = self._served_sets, {}
                identities, self._identities = self._identities, {}
            _expand_responses(counts, responses, served_sets)
            states = ServedStates()
            direct = _direct_states(seen)
            _expand_identities(seen, identities, states, direct)
            for served in direct.values():
                states.add_identity(served)
            if counts or seen:
                write_counts(self.engine, counts)
                write_daily(self.engine, counts)
                write_seen(self.engine, seen)
                write_states(self.engine, states.states)


@dataclass(slots=True)
class IdentityResponses:
    """An identity's first and last response of the interval: (time, served, flags)."""

    environment_id: int
    first: tuple[datetime, Sequence[Any], Mapping[str, Any]]
    last: tuple[datetime, Sequence[Any], Mapping[str, Any]]


def _expand_responses(
    counts: dict[UsageKey, int],
    responses: Mapping[tuple[int, datetime, int], int],
    served_sets: Mapping[int, Sequence[Any]],
) -> None:
    """Add whole-response counts to the per-feature counts (one per flag returned)."""
    for (environment_id, hour, served_id), times in responses.items():
        for meta in served_sets[served_id]:
            key = (environment_id, meta.feature_id, hour)
            counts[key] = counts.get(key, 0) + times


def _direct_states(seen: Mapping[SeenKey, SeenEntry]) -> dict[int, list[StateServed]]:
    """Return the states add_served recorded, by identity: each row's first and last."""
    direct: dict[int, list[StateServed]] = {}
    for (identity_id, feature_id, _variant), found in seen.items():
        got = direct.setdefault(identity_id, [])
        if found.first_state is not None:
            enabled, value = found.first_state
            got.append((found.environment_id, feature_id, enabled, value, found.first_seen_at))
        got.append(
            (found.environment_id, feature_id, found.enabled, found.value, found.last_seen_at)
        )
    return direct


def _expand_identities(
    seen: dict[SeenKey, SeenEntry],
    identities: Mapping[int, IdentityResponses],
    states: ServedStates,
    direct: dict[int, list[StateServed]],
) -> None:
    """Turn each identity's first and last response into its seen rows and served states
    (``direct``: states already recorded per identity, taken from it as they are added)."""
    for identity_id, entry in identities.items():
        got = direct.pop(identity_id, [])
        responses = (entry.first,) if entry.first is entry.last else (entry.first, entry.last)
        for moment, served, flags in responses:
            for meta in served:
                result = flags.get(meta.name)
                if result is None:
                    continue
                got.append(
                    (entry.environment_id, meta.feature_id, result.enabled, result.value, moment)
                )
                key = (identity_id, meta.feature_id, result.variant or NO_VARIANT)
                found = seen.get(key)
                if found is None:
                    seen[key] = SeenEntry(
                        entry.environment_id, result.enabled, result.value, moment, moment
                    )
                elif moment >= found.last_seen_at:
                    found.enabled, found.value, found.last_seen_at = (
                        result.enabled, result.value, moment,
                    )  # fmt: skip
                else:
                    found.first_seen_at = min(found.first_seen_at, moment)
        states.add_identity(got)


_RUNNING: weakref.WeakSet[UsageBuffer] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for buffer in list(_RUNNING):
        try:
            buffer.stop()
        except Exception:
            log.exception("usage flush at exit failed")


def write_counts(engine: Engine, counts: Mapping[UsageKey, int]) -> None:
    """Add counts to their hour rows (ON CONFLICT adds to the stored count)."""
    # Sorted: concurrent workers lock rows in one order, so they cannot deadlock.
    rows = [
        {"environment_id": e, "feature_id": f, "hour": h, "count": n}
        for (e, f, h), n in sorted(counts.items())
    ]
    table = FlagUsage.__table__
    statement = insert_into(engine, table)  # type: ignore[arg-type]
    statement = statement.on_conflict_do_update(
        index_elements=["environment_id", "feature_id", "hour"],
        set_={"count": table.c.count + statement.excluded.count},
    )
    write_rows(engine, statement, rows)


def write_daily(engine: Engine, counts: Mapping[UsageKey, int]) -> None:
    """Add the same counts to their day rows, keeping the latest hour seen."""
    days: dict[UsageKey, list[Any]] = {}
    for (environment_id, feature_id, hour), count in counts.items():
        key = (environment_id, feature_id, day_of(hour))
        found = days.setdefault(key, [0, hour])
        found[0] += count
        found[1] = max(found[1], hour)
    rows = [
        {"environment_id": e, "feature_id": f, "day": d, "count": n, "last_hour": last}
        for (e, f, d), (n, last) in sorted(days.items())
    ]
    table = FlagUsageDaily.__table__
    statement = insert_into(engine, table)  # type: ignore[arg-type]
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["environment_id", "feature_id", "day"],
        set_={
            "count": table.c.count + excluded.count,
            # GREATEST on PostgreSQL is MAX on SQLite: a CASE reads the same on both.
            "last_hour": case(
                (excluded.last_hour > table.c.last_hour, excluded.last_hour),
                else_=table.c.last_hour,
            ),
        },
    )
    write_rows(engine, statement, rows)


def write_seen(engine: Engine, seen: Mapping[SeenKey, SeenEntry]) -> None:
    """Upsert seen rows: first seen stays, last seen, value and enabled follow the latest."""
    rows = []
    for (identity_id, feature_id, variant), entry in sorted(seen.items(), key=lambda i: i[0]):
        value_type, value_text = encode_value(entry.value)
        rows.append({
            "identity_id": identity_id, "feature_id": feature_id, "variant": variant,
            "environment_id": entry.environment_id, "enabled": entry.enabled,
            "first_seen_at": entry.first_seen_at, "last_seen_at": entry.last_seen_at,
            "value_type": value_type, "value_text": value_text,
        })  # fmt: skip
    table = FlagSeen.__table__
    statement = insert_into(engine, table)  # type: ignore[arg-type]
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["identity_id", "feature_id", "variant"],
        set_={
            "last_seen_at": excluded.last_seen_at,
            "enabled": excluded.enabled,
            "value_type": excluded.value_type,
            "value_text": excluded.value_text,
        },
    )
    write_rows(engine, statement, rows)
