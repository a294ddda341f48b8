"""Make creating an app per test cheap, without sharing anything a test could change.

Each test gets its own app (its own config, extensions and database), and creating one
is mostly work that gives the same result every time: werkzeug turns each URL rule into
two small Python functions with ``ast`` and ``compile`` (about half of ``create_app``),
and Jinja compiles every template an app renders again. Both are pure functions of their
input, so the tests keep one copy of each result per process:

- :func:`remember_url_builders` memoises werkzeug's per-rule builder functions, keyed by
  everything the generated code depends on (the rule, its parsed trace, its defaults,
  its converter types and whether unknown arguments are appended). werkzeug makes the
  function unbound and binds it to each rule, so a shared one is used exactly as a fresh
  one would be. The hook is on a private method; if werkzeug changes it, this does
  nothing and the tests run as before, only slower.
- :data:`TEMPLATE_BYTECODE` is a Jinja bytecode cache (Jinja's own, documented mechanism)
  kept in memory and shared by the test apps; Jinja checks each template's source checksum,
  so an edited template is compiled again.
- :func:`share_engines` keeps one SQLAlchemy engine per URL, so its compiled-statement
  cache outlives a test (connections are still closed after each one).
- :func:`create_sqlite_schema` copies an empty schema into each in-memory database instead
  of running ``CREATE TABLE`` for every table again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jinja2
from flask import Flask
from sqlalchemy.engine import Engine
from werkzeug.routing import rules

from webapp.extensions import db

_BUILDERS: dict[tuple[Any, ...], Callable[..., tuple[str, str]]] = {}


def remember_url_builders() -> None:
    """Memoise werkzeug's ``Rule._compile_builder`` for this process (idempotent)."""
    original = getattr(rules.Rule, "_compile_builder", None)
    if original is None or getattr(original, "_flagpost_memo", False):
        return

    def compile_builder(self: rules.Rule, append_unknown: bool = True) -> Any:
        try:
            key = (
                self.rule,
                tuple(self._trace),
                append_unknown,
                tuple(sorted((str(k), repr(v)) for k, v in (self.defaults or {}).items())),
                tuple(sorted((k, type(v).__qualname__) for k, v in self._converters.items())),
            )
        except AttributeError:  # werkzeug's internals moved: build it as werkzeug does
            return original(self, append_unknown)
        builder = _BUILDERS.get(key)
        if builder is None:
            builder = _BUILDERS[key] = original(self, append_unknown)
        return builder

    compile_builder._flagpost_memo = True  # type: ignore[attr-defined]
    rules.Rule._compile_builder = compile_builder  # type: ignore[method-assign]


class SharedBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates kept in memory for every app of this test process."""

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        data = self._store.get(bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()

    def clear(self) -> None:
        self._store.clear()


TEMPLATE_BYTECODE = SharedBytecodeCache()


_SQLITE_SCHEMA: sqlite3.Connection | None = None


def create_sqlite_schema(app: Flask) -> None:
    """Give ``app``'s in-memory SQLite database the empty schema.

    The first app of the process runs ``db.create_all()``; its empty database is kept and
    copied into every later one with SQLite's own backup API (a page copy, no DDL to
    compile and run). An in-memory database is one connection (Flask-SQLAlchemy gives it a
    ``StaticPool``), so the copy is what every session of the app sees.
    """
    global _SQLITE_SCHEMA
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            target = raw.driver_connection
            assert isinstance(target, sqlite3.Connection)
            if _SQLITE_SCHEMA is None:
                db.create_all()
                _SQLITE_SCHEMA = sqlite3.connect(":memory:", check_same_thread=False)
                target.backup(_SQLITE_SCHEMA)
            else:
                _SQLITE_SCHEMA.backup(target)
        finally:
            raw.close()


_ENGINES: dict[tuple[str | None, str], Engine] = {}
_SHARING = False


def share_engines() -> None:
    """Let the ``app`` fixture's apps reuse one engine per database URL and options.

    SQLAlchemy caches each statement's compiled SQL on its engine (the cache key holds the
    engine's dialect), so an engine per test compiles every query of every test again. The
    engines are still disposed after each test (their connections closed, so an in-memory
    SQLite database starts empty and PostgreSQL connections are counted as before); only the
    engine object and its compiled-statement cache live on. Apps made outside the fixture
    (two apps that must not share a database, a live server) get engines of their own.
    Flask-SQLAlchemy documents ``_make_engine`` as its engine-creation hook.
    """
    original = db._make_engine
    if getattr(original, "_flagpost_shared", False):
        return

    def make_engine(bind_key: str | None, options: dict[str, Any], app: Flask) -> Engine:
        if not _SHARING:
            return original(bind_key, options, app)
        key = (bind_key, repr(sorted(options.items(), key=lambda item: item[0])))
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = original(bind_key, options, app)
        return engine

    make_engine._flagpost_shared = True  # type: ignore[attr-defined]
    db._make_engine = make_engine  # type: ignore[method-assign]


@contextmanager
def shared_engines() -> Iterator[None]:
    """Within this block, apps created take the shared engines (see :func:`share_engines`)."""
    global _SHARING
    _SHARING = True
    try:
        yield
    finally:
        _SHARING = False


def dispose_shared_engines() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
