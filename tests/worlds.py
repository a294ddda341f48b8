"""Build a test's world once per process; give every later test a copy of its rows.

Many tests (the hardening walks above all) start by building the same world: projects,
environments, users, features, identities, made through the factories and services. The
rows are the same every time, so building them again per test is wasted work. Call::

    ids = worlds.restore_or_build("hostile", build_world)

inside the app context of the test's app, on its empty database (the ``app`` fixture's).
The first call in a process runs ``build_world()`` and keeps a copy of every row it wrote;
each later call with the same key puts that copy back instead (ids, sequences and all) and
returns what the first build returned. ``build`` must return plain data (ids, strings,
numbers, and tuples, lists, dicts or dataclasses of them), never ORM objects: the session is
emptied after the build and after a restore (``db.session.remove()``), so no object of the
build's identity map reaches a test, and every test gets its own deep copy of the value.

- SQLite (in-memory, one connection per app): the built database is copied with SQLite's
  backup API into an in-memory connection of this process, and copied back into each later
  app's connection (``speedups.copy_sqlite``, which also gives each app the empty schema).
- PostgreSQL (the process's schema, emptied before each test): each non-empty table is
  copied into a schema of its own, ``<schema>_snap_<key>``, outside the metadata, and every
  sequence's state is recorded; a restore inserts the rows back in foreign-key order and sets
  the sequences. The snapshot schemas start with the run's prefix, so the end of the run drops
  them with the test schemas (``PostgresSchema.drop`` drops its own too).

A restored world is the first build's: its timestamps, random keys and tokens are those of
that build, minutes old at most (the tokens in the worlds last a day or more).
``tests/hardening/test_worlds.py`` checks that a restored world equals a freshly built one.
Per-app caches are cleared after a build, so the first test sees what later ones see.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tests.speedups import copy_sqlite
from webapp.extensions import db
from webapp.services.sdk.snapshots import CACHE_EXTENSION

T = TypeVar("T")
_KEY = re.compile(r"[a-z0-9_]{1,20}")
_PLAIN = (str, int, float, bool, type(None))


@dataclass
class _Snapshot:
    """One built world of this process: what ``build`` returned and where its rows are."""

    builder: str
    value: Any
    sqlite: sqlite3.Connection | None = None
    schema: str = ""  # PostgreSQL: the snapshot schema
    tables: tuple[str, ...] = ()  # PostgreSQL: the non-empty tables, in foreign-key order
    sequences: tuple[tuple[str, int, bool], ...] = ()  # PostgreSQL: name, last_value, is_called
    restore_sql: str = ""  # PostgreSQL: the statements of a restore, made at the first one


_SNAPSHOTS: dict[tuple[str, str], _Snapshot] = {}


def restore_or_build(key: str, build: Callable[[], T]) -> T:
    """Restore the world ``key`` into the current app's empty database, or build it first.

    :param key: names the world in this process (lower case, digits and ``_``).
    :param build: makes the world on the empty database and returns plain data.
    :return: a copy of what ``build`` returned when it ran.
    """
    assert _KEY.fullmatch(key), f"world key {key!r}: use [a-z0-9_]{{1,20}}"
    # By its code, not its module's name: pytest may import a test module under another
    # name than a module importing it does, and both copies build the same world.
    builder = f"{build.__code__.co_filename}:{build.__qualname__}"
    place = _place()
    snapshot = _SNAPSHOTS.get((place, key))
    if snapshot is None:
        snapshot = _SNAPSHOTS[place, key] = _build(key, build, builder)
    else:
        assert snapshot.builder == builder, (
            f"world {key!r} is built by {snapshot.builder}, not {builder}: use another key"
        )
        _restore(snapshot)
    current_app.extensions.pop(CACHE_EXTENSION, None)
    return copy.deepcopy(snapshot.value)  # type: ignore[no-any-return]


def snapshot_schemas_of(schema: str) -> str:
    """A LIKE pattern for the snapshot schemas of the test schema ``schema``."""
    return schema.replace("_", "\\_") + "\\_snap\\_%"


def _place() -> str:
    """Where the current app's database lives: its URL (on PostgreSQL it names the schema)."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite":
        assert url.database in (None, "", ":memory:"), "worlds keeps in-memory SQLite only"
    return url.render_as_string(hide_password=True)


def _build(key: str, build: Callable[[], T], builder: str) -> _Snapshot:
    value = build()
    _check_plain(value, key)
    db.session.commit()  # the build's last flushed rows belong to the world too
    db.session.remove()
    snapshot = _Snapshot(builder=builder, value=copy.deepcopy(value))
    if db.engine.dialect.name == "sqlite":
        snapshot.sqlite = sqlite3.connect(":memory:", check_same_thread=False)
        copy_sqlite(into=snapshot.sqlite)
    else:
        with db.engine.begin() as connection:
            _postgres_save(connection, key, snapshot)
    return snapshot


def _restore(snapshot: _Snapshot) -> None:
    db.session.remove()
    if snapshot.sqlite is not None:
        copy_sqlite(source=snapshot.sqlite)
    else:
        with db.engine.begin() as connection:
            _postgres_restore(connection, snapshot)


def _postgres_save(connection: Connection, key: str, snapshot: _Snapshot) -> None:
    schema = str(connection.scalar(text("SELECT current_schema()")))
    snapshot.schema = f"{schema}_snap_{key}"
    assert len(snapshot.schema) <= 63, f"{snapshot.schema}: too long for a PostgreSQL name"
    connection.execute(text(f'DROP SCHEMA IF EXISTS "{snapshot.schema}" CASCADE'))
    connection.execute(text(f'CREATE SCHEMA "{snapshot.schema}"'))
    tables = []
    for table in db.metadata.sorted_tables:
        if connection.scalar(text(f'SELECT EXISTS (SELECT 1 FROM "{table.name}")')):
            connection.execute(text(
                f'CREATE TABLE "{snapshot.schema}"."{table.name}" AS TABLE "{table.name}"'
            ))  # fmt: skip
            tables.append(table.name)
    snapshot.tables = tuple(tables)
    snapshot.sequences = _sequence_states(connection)


def _sequence_states(connection: Connection) -> tuple[tuple[str, int, bool], ...]:
    """Each sequence of the current schema: name, last value and whether it was used."""
    names = connection.scalars(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'S' AND n.nspname = current_schema() ORDER BY c.relname"
    )).all()  # fmt: skip
    states = []
    for name in names:
        last, called = connection.execute(
            text(f'SELECT last_value, is_called FROM "{name}"')
        ).one()
        states.append((str(name), int(last), bool(called)))
    return tuple(states)


def _postgres_restore(connection: Connection, snapshot: _Snapshot) -> None:
    """Insert the saved rows into the (empty) tables, parents first; set the sequences.

    All in one string without parameters (psycopg sends it as one simple query): one round
    trip instead of one per table and per sequence, made once per snapshot.
    """
    if not snapshot.restore_sql:
        tables = db.metadata.tables
        statements = []
        for name in snapshot.tables:
            columns = ", ".join(f'"{column.name}"' for column in tables[name].columns)
            statements.append(
                f'INSERT INTO "{name}" ({columns}) '
                f'SELECT {columns} FROM "{snapshot.schema}"."{name}"'
            )
        if snapshot.sequences:
            # Sequence names come from pg_class; quote them as SQL literals of regclass text.
            settings = ", ".join(
                f"setval({_literal(_quoted(name))}::regclass, {int(last)}, {str(called).lower()})"
                for name, last, called in snapshot.sequences
            )
            statements.append(f"SELECT {settings}")
        snapshot.restore_sql = ";\n".join(statements)
    if snapshot.restore_sql:
        connection.exec_driver_sql(snapshot.restore_sql)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _check_plain(value: Any, key: str) -> None:
    """Refuse ORM objects (or anything else tied to a session) in a world's value."""
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_plain(item, key)
    elif isinstance(value, dict):
        for name, item in value.items():
            _check_plain(name, key)
            _check_plain(item, key)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            _check_plain(getattr(value, item.name), key)
    else:
        raise AssertionError(
            f"world {key!r}: build returned a {type(value).__name__}; return plain ids"
        )


def sequences() -> dict[str, tuple[Any, ...]]:
    """Where the current database's id counters stand (what the next insert's id depends on):
    each PostgreSQL sequence's last value and use, or SQLite's ``sqlite_sequence`` rows."""
    with db.engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            return {name: (last, called) for name, last, called in _sequence_states(connection)}
        found = connection.scalar(
            text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'")
        )
        if not found:
            return {}
        rows = connection.execute(text("SELECT name, seq FROM sqlite_sequence ORDER BY name"))
        return {str(name): (int(seq),) for name, seq in rows}
