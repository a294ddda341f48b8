"""The served states of a flush: what identities got, rolled up per feature, day and state.

The buffer's flush collects them from the identities' responses (their first and last of the
interval) and writes one ``FlagValuesDaily`` row per state and day: the stale "constant
value" filter reads these instead of a "seen" row per identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case

from ...models import FlagValuesDaily, state_key
from ...models.base import TypedValue, encode_value
from .upserts import insert_into, write_rows


def day_of(moment: datetime) -> datetime:
    """Return the start of the UTC day holding ``moment`` (the day rows' bucket)."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)

# environment id, feature id, day, enabled, value type, value text
StateKey = tuple[int, int, datetime, bool, str, str | None]


@dataclass(slots=True)
class StateEntry:
    """How many identities got one state of a feature on one day, and first/last when."""

    count: int
    first_at: datetime
    last_at: datetime


# What one identity got: environment id, feature id, enabled, value, when.
StateServed = tuple[int, int, bool, TypedValue, datetime]


class ServedStates:
    """The states identities got during one flush interval, by feature and day."""

    def __init__(self) -> None:
        self.states: dict[StateKey, StateEntry] = {}
        # Encoded values by (type, value): most identities get the same few values. Floats
        # are encoded every time (0.0 == -0.0, yet their texts differ).
        self._encoded: dict[tuple[type, TypedValue], tuple[str, str | None]] = {}

    def _encode(self, value: TypedValue) -> tuple[str, str | None]:
        if isinstance(value, float):
            return encode_value(value)
        cache_key = (type(value), value)
        found = self._encoded.get(cache_key)
        if found is None:
            found = self._encoded[cache_key] = encode_value(value)
        return found

    def add_identity(self, served: Iterable[StateServed]) -> None:
        """Add what one identity got: it counts once per state and day, however often."""
        counted: set[StateKey] = set()
        states = self.states
        moment_of_day: datetime | None = None
        day = None
        for environment_id, feature_id, enabled, value, moment in served:
            if moment != moment_of_day:  # a response's flags share its time
                moment_of_day = moment
                day = day_of(moment)
            assert day is not None
            key = (environment_id, feature_id, day, enabled, *self._encode(value))
            entry = states.get(key)
            if entry is None:
                states[key] = StateEntry(1, moment, moment)
            else:
                if moment < entry.first_at:
                    entry.first_at = moment
                if moment > entry.last_at:
                    entry.last_at = moment
                if key not in counted:
                    entry.count += 1
            counted.add(key)


def write_states(engine: Engine, states: Mapping[StateKey, StateEntry]) -> None:
    """Add the identities of each served state to its day row (one row per state and day)."""
    rows = [
        {"environment_id": e, "feature_id": f, "day": d,
         "state_key": state_key(enabled, kind, text), "enabled": enabled, "value_type": kind,
         "value_text": text, "count": entry.count, "first_at": entry.first_at,
         "last_at": entry.last_at}
        for (e, f, d, enabled, kind, text), entry in states.items()
    ]  # fmt: skip
    # Sorted by primary key: concurrent workers lock rows in one order.
    rows.sort(key=lambda r: (r["environment_id"], r["feature_id"], r["day"], r["state_key"]))
    table = FlagValuesDaily.__table__
    statement = insert_into(engine, table)  # type: ignore[arg-type]
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["environment_id", "feature_id", "day", "state_key"],
        set_={
            "count": table.c.count + excluded.count,
            "first_at": case(
                (excluded.first_at < table.c.first_at, excluded.first_at), else_=table.c.first_at
            ),
            "last_at": case(
                (excluded.last_at > table.c.last_at, excluded.last_at), else_=table.c.last_at
            ),
        },
    )
    write_rows(engine, statement, rows)
