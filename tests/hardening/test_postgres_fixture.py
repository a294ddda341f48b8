"""The ``app`` fixture on PostgreSQL: each test starts on an empty schema and a fresh session,
and a connection left open is caught (tests/conftest.py).

The fixture keeps a test's one idle connection of the shared engine for the next test
(``dispose_engines(app, keep_idle=True)``) and empties the schema on it in one round trip
(``PostgresSchema.empty``), which also resets its session; these tests show that the rows,
the sequences and every session setting a test can leave behind are gone, that any other
pool is still closed, and that the connection count after each test still fails on a leak.
"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests import speedups
from tests.conftest import (
    PostgresSchema,
    check_held_connections,
    connection_name,
    dispose_engines,
    held_connections,
    wait_for_connections,
)
from tests.factories import make_environment, make_project
from webapp.extensions import db

pytestmark = pytest.mark.databases("postgres")


def session_state() -> dict[str, object]:
    """What a test may leave on its connection, read on a connection of the pool."""
    with db.engine.connect() as conn:
        row = conn.execute(text(
            "SELECT pg_backend_pid(),"
            " (SELECT setting <> reset_val FROM pg_settings WHERE name = 'work_mem'),"
            " current_schema(), to_regclass('pg_temp.fp_probe') IS NOT NULL,"
            " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            "  AND pid = pg_backend_pid()),"
            " (SELECT count(*) FROM pg_listening_channels())"
        )).one()  # fmt: skip
    pid, work_mem_changed, schema, temp_table, locks, channels = row
    return {
        "pid": pid, "work_mem_changed": work_mem_changed, "schema": schema,
        "temp_table": temp_table, "advisory_locks": locks, "listening": channels,
    }  # fmt: skip


def rows_and_sequences() -> tuple[dict[str, int], dict[str, tuple[int, bool]]]:
    with db.engine.connect() as conn:
        rows = {
            table.name: int(conn.scalar(text(f'SELECT count(*) FROM "{table.name}"')))
            for table in db.metadata.sorted_tables
        }
        names = conn.scalars(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'S' AND n.nspname = current_schema()"
        )).all()  # fmt: skip
        sequences = {
            name: tuple(conn.execute(text(f'SELECT last_value, is_called FROM "{name}"')).one())
            for name in names
        }
    return rows, sequences


def test_empty__kept_connection__rows_sequences_and_session_as_new(
    app: Flask, postgres_schema: PostgresSchema
) -> None:
    # Given rows, used sequences and session state left on the pool's one connection
    make_environment(make_project())
    db.session.commit()
    db.session.remove()
    with db.engine.connect() as conn:
        conn.execute(text("SET work_mem = '77MB'"))
        conn.execute(text("CREATE TEMP TABLE fp_probe (x int)"))
        conn.execute(text("SELECT pg_advisory_lock(4242)"))
        conn.execute(text("LISTEN fp_probe"))
        conn.commit()
    left = session_state()
    assert left["work_mem_changed"] and left["temp_table"]
    assert (left["advisory_locks"], left["listening"]) == (1, 1)
    rows, sequences = rows_and_sequences()
    assert rows["projects"] == rows["environments"] == 1
    assert sequences["projects_id_seq"] == (1, True)

    # When the fixture keeps it for the next test, which empties the schema on it
    dispose_engines(app, keep_idle=True)
    postgres_schema.empty(app)

    # Then it is the same connection, as a new one would be, on an empty schema
    assert session_state() == {
        "pid": left["pid"], "work_mem_changed": False, "schema": postgres_schema.name,
        "temp_table": False, "advisory_locks": 0, "listening": 0,
    }  # fmt: skip
    rows, sequences = rows_and_sequences()
    assert set(rows.values()) == {0}
    assert sequences and set(sequences.values()) == {(1, False)}


def test_dispose__keeps_only_one_idle_connection_of_a_shared_engine(app: Flask) -> None:
    engine = db.engine
    assert speedups.is_shared(engine)

    # One idle connection: kept
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    dispose_engines(app, keep_idle=True)
    assert engine.pool.checkedin() == 1  # type: ignore[attr-defined]

    # Two idle connections: both closed
    with engine.connect() as first, engine.connect() as second:
        first.execute(text("SELECT 1"))
        second.execute(text("SELECT 1"))
    assert engine.pool.checkedin() == 2  # type: ignore[attr-defined]
    dispose_engines(app, keep_idle=True)
    assert engine.pool.checkedin() == 0  # type: ignore[attr-defined]

    # One checked out (a test that did not close it): the pool is closed
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    leaked = engine.connect()
    dispose_engines(app, keep_idle=True)
    assert engine.pool.checkedin() == engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    leaked.close()

    # Without keep_idle (an app of a test's own), nothing is kept
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    dispose_engines(app)
    assert engine.pool.checkedin() == 0  # type: ignore[attr-defined]


def test_held_connections__a_leaked_engine__fails_the_check(
    app: Flask, postgres_schema: PostgresSchema
) -> None:
    admin = postgres_schema.admin
    dispose_engines(app)
    before = wait_for_connections(admin, connection_name(), at_most=0)
    leaky = create_engine(postgres_schema.url, poolclass=NullPool)
    leaked = [leaky.connect() for _ in range(3)]
    try:
        assert held_connections(admin, connection_name()) == before + 3
        with pytest.raises(AssertionError, match="an engine or connection was not closed"):
            check_held_connections(admin, at_most=before + 2)
        check_held_connections(admin, at_most=before + 3)
    finally:
        for conn in leaked:
            conn.close()
        leaky.dispose()
    assert wait_for_connections(admin, connection_name(), at_most=before) == before
