"""A dump of every table, to assert that a refused request changed nothing."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import Integer, delete, func, insert, select

from webapp.extensions import db
from webapp.services.sdk.snapshots import CACHE_EXTENSION


def dump() -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table, in primary key order (all columns without one).

    Like the end of a real request, anything flushed but not committed is discarded first:
    tests keep one app context, so the session outlives the requests they send.
    """
    db.session.rollback()
    with db.engine.connect() as connection:
        return _read(connection)


def _read(connection: Any) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for table in db.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        query = select(table).order_by(*order)
        rows[table.name] = [tuple(row) for row in connection.execute(query)]
    return rows


def restore(rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """Put every table back to a ``dump()`` (ids included) and forget per-app caches.

    Cheaper than building a world again after a request that was allowed to change it. The
    snapshot cache is keyed by environment revision, which a restore winds back. Only the
    tables that differ from the dump are rewritten, with every table referring to them
    (deleting their rows could cascade); most requests change nothing, and then nothing is
    rewritten. Either way, id sequences point past the restored rows afterwards.
    """
    db.session.rollback()
    with db.engine.begin() as connection:
        current = _read(connection)
        changed = _with_referrers({name for name, held in current.items() if held != rows[name]})
        tables = [table for table in db.metadata.sorted_tables if table.name in changed]
        for table in reversed(tables):
            connection.execute(delete(table))
        for table in tables:
            if rows[table.name]:
                names = [column.key for column in table.columns]
                values = [dict(zip(names, row, strict=True)) for row in rows[table.name]]
                connection.execute(insert(table), values)
        if connection.dialect.name == "postgresql":
            _reset_sequences(connection)
    db.session.expire_all()
    current_app.extensions.pop(CACHE_EXTENSION, None)


def _with_referrers(names: set[str]) -> set[str]:
    """``names`` and every table whose foreign keys lead to one of them, transitively."""
    found = set(names)
    grew = bool(found)
    while grew:
        grew = False
        for table in db.metadata.sorted_tables:
            refers = any(key.column.table.name in found for key in table.foreign_keys)
            if table.name not in found and refers:
                found.add(table.name)
                grew = True
    return found


def _reset_sequences(connection: Any) -> None:
    """Point each id sequence past the restored rows, so the next insert gets a fresh id
    (one statement for all tables; a table without a sequence gives setval(NULL): NULL)."""
    resets = [
        func.setval(
            func.pg_get_serial_sequence(table.name, keys[0].name),
            func.coalesce(select(func.max(keys[0])).scalar_subquery(), 0) + 1,
            False,
        )
        for table in db.metadata.sorted_tables
        if len(keys := list(table.primary_key.columns)) == 1 and isinstance(keys[0].type, Integer)
    ]
    if resets:
        connection.execute(select(*resets))


def describe_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Name the tables that differ and show a few of their new or changed rows."""
    changed = [name for name in before if before[name] != after.get(name)]
    return "; ".join(
        f"{name}: {len(before[name])} -> {len(after[name])} rows, "
        f"new/changed {[r for r in after[name] if r not in before[name]][:3]}"
        for name in changed
    )
