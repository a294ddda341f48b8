"""A dump of every table, to assert that a refused request changed nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable
from typing import Any

from flask import current_app
from sqlalchemy import Integer, Select, delete, insert, select
from sqlalchemy.engine import Connection, Dialect

from webapp.extensions import db
from webapp.services.sdk.snapshots import CACHE_EXTENSION


def dump() -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table, in primary key order (all columns without one).

    Like the end of a real request, anything flushed but not committed is discarded first:
    tests keep one app context, so the session outlives the requests they send. The rows
    are read through the driver's own cursor (:func:`_dump_raw`), with the values SQLAlchemy
    would give (each column type's result processor applied).
    """
    db.session.rollback()
    with db.engine.connect() as connection:
        return _dump_raw(connection)


def dump_by_table(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Read every table with one SQLAlchemy ``SELECT`` each (what :func:`dump` must equal)."""
    return {
        table.name: [tuple(row) for row in connection.execute(_query(table))]
        for table in db.metadata.sorted_tables
    }


def _query(table: Any) -> Select[Any]:
    order = list(table.primary_key.columns) or list(table.columns)
    return select(table).order_by(*order)


_SQL: dict[str, list[str]] = {}  # dialect name -> each table's SELECT, compiled once


def _dump_raw(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Run each table's compiled ``SELECT`` on the driver's cursor (no SQLAlchemy statement,
    compile-cache or result machinery per table). On PostgreSQL all of them go in one string
    (psycopg runs a string without parameters as a simple query, each statement's rows a
    result set of their own): one round trip instead of one per table, which under load is
    most of a dump's time."""
    dialect = connection.dialect
    tables = db.metadata.sorted_tables
    statements = _SQL.get(dialect.name)
    if statements is None:
        statements = _SQL[dialect.name] = [
            str(_query(table).compile(dialect=dialect)) for table in tables
        ]
    at_once = dialect.name == "postgresql"
    rows: dict[str, list[tuple[Any, ...]]] = {}
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if at_once:
            cursor.execute(";\n".join(statements))
        for index, (table, statement) in enumerate(zip(tables, statements, strict=True)):
            if not at_once:
                cursor.execute(statement)
            elif index:
                assert cursor.nextset(), f"no result for {table.name}"
            processors = [
                _processor(column.type, dialect, described[1])
                for column, described in zip(table.columns, cursor.description, strict=True)
            ]
            rows[table.name] = [
                tuple(
                    value if process is None else process(value)
                    for process, value in zip(processors, row, strict=True)
                )
                for row in cursor.fetchall()
            ]
    finally:
        cursor.close()
    return rows


def _processor(kind: Any, dialect: Dialect, type_code: Any) -> Callable[[Any], Any] | None:
    """The function SQLAlchemy applies to a column's values as they come from the driver."""
    return kind.dialect_impl(dialect).result_processor(dialect, type_code)  # type: ignore[no-any-return]


def restore(
    rows: dict[str, list[tuple[Any, ...]]], mark: Hashable | None = None
) -> Hashable | None:
    """Put every table back to a ``dump()`` (ids included) and forget per-app caches.

    Cheaper than building a world again after a request that was allowed to change it. The
    snapshot cache is keyed by environment revision, which a restore winds back.

    :param mark: a ``changes_mark()`` taken while the database held ``rows``: if it still
        holds, nothing was written since, and the tables are left as they are.
    :return: with ``mark``, the ``changes_mark()`` of the database as it now is (it holds
        ``rows``); without, ``None`` (no query spent on it).
    """
    db.session.rollback()
    if mark is not None and changes_mark() == mark:
        return mark
    tables = db.metadata.sorted_tables
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # one round trip, not one per table
            connection.exec_driver_sql(
                "; ".join(f'DELETE FROM "{table.name}"' for table in reversed(tables))
            )
        else:
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
    return None if mark is None else changes_mark()


def changes_mark() -> Hashable:
    """Something that changes whenever a row of the database does (one query, no rows read
    into Python). PostgreSQL: each table's row count and the md5 of its rows as text, and
    where each id sequence stands. SQLite (in memory: one connection for the app): the
    connection's count of rows written (``total_changes``: every insert, update and delete,
    even one rolled back), so SQLite marks compare only within one app's database.
    """
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            rows = "md5(string_agg(t::text, ',' ORDER BY t::text))"
            parts = [
                f"(SELECT count(*) || ':' || coalesce({rows}, '') FROM \"{table.name}\" t)"
                for table in db.metadata.sorted_tables
            ]
            parts.append(
                "(SELECT string_agg(sequencename || '=' || coalesce(last_value::text, ''), ','"
                " ORDER BY sequencename) FROM pg_sequences WHERE schemaname = current_schema())"
            )
            return tuple(connection.exec_driver_sql("SELECT " + ", ".join(parts)).one())
        raw = connection.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection), "changes_mark: in-memory SQLite only"
        return ("sqlite", id(raw), raw.total_changes)


def _reset_sequences(connection: Any) -> None:
    """Point each id sequence past the restored rows, so the next insert gets a fresh id.

    One statement for every table (``setval`` of a table without a sequence is NULL).
    """
    calls = []
    for table in db.metadata.sorted_tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        name, column = table.name, keys[0].name
        calls.append(
            f"setval(pg_get_serial_sequence('{name}', '{column}'),"
            f' COALESCE((SELECT max("{column}") FROM "{name}"), 0) + 1, false)'
        )
    if calls:
        connection.exec_driver_sql("SELECT " + ", ".join(calls))


def describe_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Name the tables that differ and show a few of their new or changed rows."""
    changed = [name for name in before if before[name] != after.get(name)]
    return "; ".join(
        f"{name}: {len(before[name])} -> {len(after[name])} rows, "
        f"new/changed {[r for r in after[name] if r not in before[name]][:3]}"
        for name in changed
    )
