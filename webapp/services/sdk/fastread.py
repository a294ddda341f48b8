"""Prepared single-statement reads on a raw DBAPI cursor, for the SDK hot path.

SQLAlchemy's execution and result machinery costs about twice the query itself on SQLite
and a good share on PostgreSQL. A statement here is compiled once per dialect with the
same SQLAlchemy expression, then run on a raw DBAPI connection; rows come back as plain
tuples. Disconnects are detected with the dialect's own test, and retried once.

On PostgreSQL the connections are detached from the engine's pool and kept in a small
free list with one reusable cursor each: a pool checkout and check-in cost about as much
CPU as running the statement (~50 µs), on the path every SDK identify takes.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select


class PreparedRead:
    """A SELECT compiled once per dialect and executed on a raw DBAPI connection."""

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def _sql(self, engine: Engine) -> tuple[str, tuple[str, ...] | None]:
        name = engine.dialect.name
        found = self._compiled.get(name)
        if found is None:
            compiled = self.statement.compile(dialect=engine.dialect)
            order = tuple(compiled.positiontup) if compiled.positiontup else None
            found = self._compiled[name] = (compiled.string, order)
        return found

    def rows(self, engine: Engine, params: Mapping[str, Any]) -> Sequence[tuple[Any, ...]]:
        """Run the statement and return its rows; one retry after a dropped connection."""
        sql, order = self._sql(engine)
        arguments: Any = tuple(params[name] for name in order) if order else dict(params)
        run = _run_detached if engine.dialect.name == "postgresql" else _run_pooled
        found = run(engine, sql, arguments, True)
        if found is None:  # the connection had died: once more, on a fresh one
            found = run(engine, sql, arguments, False)
        assert found is not None  # noqa: S101 - a run without retry returns rows or raises
        return found


def _is_disconnect(engine: Engine, exc: BaseException, connection: Any, cursor: Any) -> bool:
    # The dialects need the DBAPI connection: psycopg's test is its ``closed``/``broken``.
    dbapi_error = engine.dialect.loaded_dbapi.Error
    return isinstance(exc, dbapi_error) and engine.dialect.is_disconnect(exc, connection, cursor)


def _run_pooled(
    engine: Engine, sql: str, arguments: Any, retry: bool
) -> Sequence[tuple[Any, ...]] | None:
    """Run on a pooled connection; None (to retry) when it turned out to be dead."""
    connection = engine.raw_connection()
    cursor = connection.cursor()
    try:
        cursor.execute(sql, arguments)
        return list(cursor.fetchall())
    except Exception as exc:
        if not _is_disconnect(engine, exc, connection.dbapi_connection, cursor):
            raise
        connection.invalidate(exc)
        if retry:
            return None
        raise
    finally:
        cursor.close()
        connection.close()


class _FreeList:
    """Idle (connection, cursor) pairs detached from one engine's pool, for this process."""

    MAX_IDLE = 8

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.idle: list[tuple[Any, Any]] = []


_FREE: weakref.WeakKeyDictionary[Engine, _FreeList] = weakref.WeakKeyDictionary()
# Connections inherited through a fork belong to the parent: closing them here would end
# the parent's session too, so they are only kept out of use.
_INHERITED: list[tuple[Any, Any]] = []


def _free_list(engine: Engine) -> _FreeList:
    free = _FREE.get(engine)
    if free is None:
        free = _FREE[engine] = _FreeList()
    elif free.pid != os.getpid():
        _INHERITED.extend(free.idle)
        free.idle, free.pid = [], os.getpid()
    return free


def _close_idle(engine: Engine) -> None:
    free = _free_list(engine)
    idle, free.idle = free.idle, []
    for connection, _cursor in idle:
        connection.close()


def _run_detached(
    engine: Engine, sql: str, arguments: Any, retry: bool
) -> Sequence[tuple[Any, ...]] | None:
    """Run on a free-list connection; None (to retry) when it turned out to be dead.

    List ``pop`` and ``append`` are atomic, so the threads of a worker may share the list.
    """
    free = _free_list(engine)
    connection: Any
    cursor: Any
    try:
        connection, cursor = free.idle.pop()
    except IndexError:
        fairy = engine.raw_connection()
        fairy.detach()  # ours from now on: closing it really closes it
        connection = fairy.dbapi_connection
        connection.autocommit = True  # single statements; nothing to commit or roll back
        cursor = connection.cursor()
    try:
        cursor.execute(sql, arguments)
        found = list(cursor.fetchall())
    except BaseException as exc:
        dead = _is_disconnect(engine, exc, connection, cursor)
        connection.close()  # never reuse a connection in an unknown state
        if dead and retry:
            _close_idle(engine)  # the server went away: its other connections did too
            return None
        raise
    if len(free.idle) < free.MAX_IDLE:
        free.idle.append((connection, cursor))
    else:
        connection.close()
    return found


def as_utc(value: datetime | str | None) -> datetime | None:
    """Read a naive-UTC timestamp column as stored (SQLite gives text, psycopg a datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)
