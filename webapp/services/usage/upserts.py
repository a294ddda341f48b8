"""The usage writer's upserts: one statement per table and batch, on its own sessions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

BATCH_ROWS = 1000


def insert_into(engine: Engine, table: Table) -> Any:
    """Return an INSERT of the engine's dialect (both have ON CONFLICT DO UPDATE)."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _batches(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH_ROWS):
        yield rows[start : start + BATCH_ROWS]


def write_rows(engine: Engine, statement: Any, rows: list[dict[str, Any]]) -> None:
    """Execute the upsert for the rows, a transaction per batch of BATCH_ROWS."""
    for batch in _batches(rows):
        try:
            with Session(engine) as session, session.begin():
                session.execute(statement, batch)
        except IntegrityError:
            # A feature or identity was deleted since it was served: keep the other rows.
            for row in batch:
                try:
                    with Session(engine) as session, session.begin():
                        session.execute(statement, [row])
                except IntegrityError:
                    continue
