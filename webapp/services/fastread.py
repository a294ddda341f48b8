"""Prepared single-statement reads on a raw DBAPI cursor, for the SDK hot path.

SQLAlchemy's execution and result machinery costs about twice the query itself on SQLite
and a good share on PostgreSQL. A statement here is compiled once per dialect with the
same SQLAlchemy expression, then run on a pooled DBAPI connection; rows come back as
plain tuples. Disconnects are detected with the dialect's own test, and retried once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select


class PreparedRead:
    """A SELECT compiled once per dialect and executed on a raw pooled connection."""

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
        try:
            return self._run(engine, sql, arguments)
        except engine.dialect.loaded_dbapi.Error as exc:
            if not engine.dialect.is_disconnect(exc, None, None):
                raise
            return self._run(engine, sql, arguments)

    @staticmethod
    def _run(engine: Engine, sql: str, arguments: Any) -> Sequence[tuple[Any, ...]]:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, arguments)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, None, None):
                connection.invalidate(exc)
            raise
        finally:
            connection.close()


def as_utc(value: datetime | str | None) -> datetime | None:
    """Read a naive-UTC timestamp column as stored (SQLite gives text, psycopg a datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)
