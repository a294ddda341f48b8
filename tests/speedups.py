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
- :func:`freeze_long_lived` keeps the objects that live as long as the process (modules,
  the collected tests) out of the garbage collector's full collections.
- :func:`create_sqlite_schema` copies an empty schema into each in-memory database instead
  of running ``CREATE TABLE`` for every table again.
"""

from __future__ import annotations

import gc
import inspect
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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
    compile_builder._flagpost_original = original  # type: ignore[attr-defined]
    rules.Rule._compile_builder = compile_builder  # type: ignore[method-assign]


@dataclass(frozen=True)
class _ConverterCall:
    """One ``get_converter`` call of a parsed rule, and what the parse took from its result."""

    variable: str
    name: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    regex: str
    weight: int
    part_isolating: bool


@dataclass(frozen=True)
class _ParsedRule:
    """What werkzeug's ``Rule._parse_rule`` did for one rule string: the trace entries it
    appended, the converters it asked for (in order), and the parts it yielded (as tuples:
    content, final, static, suffixed and the weighting with its lists as tuples)."""

    trace: tuple[tuple[bool, str], ...]
    converters: tuple[_ConverterCall, ...]
    parts: tuple[tuple[Any, ...], ...]


class _ParseRecorder:
    """Stands in for the rule while werkzeug's own ``_parse_rule`` runs once for a string:
    it collects the side effects, so the real rule gets them exactly as a replay would."""

    def __init__(self, rule: rules.Rule) -> None:
        self._rule = rule
        self._trace: list[tuple[bool, str]] = []
        self._converters: dict[str, Any] = {}
        self.arguments: set[str] = set()
        self.calls: list[tuple[str, str, tuple[Any, ...], dict[str, Any], Any]] = []

    def get_converter(
        self, variable: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Any:
        converter = self._rule.get_converter(variable, name, args, kwargs)
        self.calls.append((variable, name, tuple(args), dict(kwargs), converter))
        return converter


_PARSED: dict[str, _ParsedRule] = {}


def _frozen_part(part: rules.RulePart) -> tuple[Any, ...]:
    weight = part.weight
    return (
        part.content, part.final, part.static, part.suffixed,
        (weight[0], tuple(weight[1]), weight[2], tuple(weight[3])),
    )  # fmt: skip


def _fresh_part(frozen: tuple[Any, ...]) -> rules.RulePart:
    content, final, static, suffixed, (statics, static_weights, arguments, argument_weights) = (
        frozen
    )
    weight = rules.Weighting(statics, list(static_weights), arguments, list(argument_weights))
    return rules.RulePart(
        content=content, final=final, static=static, suffixed=suffixed, weight=weight
    )


def _record_parse(
    original: Callable[..., Iterable[rules.RulePart]], rule: rules.Rule, string: str
) -> _ParsedRule:
    recorder = _ParseRecorder(rule)
    parts = tuple(_frozen_part(part) for part in original(recorder, string))
    calls = tuple(
        _ConverterCall(
            variable, name, args, tuple(kwargs.items()),
            converter.regex, converter.weight, converter.part_isolating,
        )
        for variable, name, args, kwargs, converter in recorder.calls
    )  # fmt: skip
    # The recorder must have seen everything the parse did to the rule.
    assert [call.variable for call in calls] == [
        data for dynamic, data in recorder._trace if dynamic
    ]
    return _ParsedRule(tuple(recorder._trace), calls, parts)


def _replay_parse(rule: rules.Rule, parsed: _ParsedRule) -> list[rules.RulePart] | None:
    """Do to ``rule`` what parsing did, with converters of its own; ``None`` (nothing done)
    when one of its converters differs in what the parse used (regex, weight, isolation)."""
    converters = []
    for call in parsed.converters:
        converter = rule.get_converter(call.variable, call.name, call.args, dict(call.kwargs))
        if (converter.regex, converter.weight, converter.part_isolating) != (
            call.regex, call.weight, call.part_isolating,
        ):  # fmt: skip
            return None
        converters.append(converter)
    rule._trace.extend(parsed.trace)
    for call, converter in zip(parsed.converters, converters, strict=True):
        rule._converters[call.variable] = converter
        rule.arguments.add(call.variable)
    return [_fresh_part(part) for part in parsed.parts]


def remember_parsed_rules() -> None:
    """Memoise werkzeug's ``Rule._parse_rule`` for this process (idempotent).

    Parsing a rule string tokenises it with regular expressions and builds the regex of each
    part; only the converters' ``regex``, ``weight`` and ``part_isolating`` enter the result.
    The first parse of a string runs werkzeug's own code against a recorder; every parse
    (the first too) then gives the rule what it would have got: the same trace entries,
    fresh converter objects from the rule's own ``get_converter`` (with the same arguments),
    the same arguments, and fresh parts. A converter that differs in what the parse used
    (another map's ``id`` converter, say) makes that rule parse as werkzeug does. If
    werkzeug's internals move (the method is gone, or uses more of the rule than the
    recorder has), rules parse as werkzeug does.
    """
    original = getattr(rules.Rule, "_parse_rule", None)
    if (
        original is None
        or getattr(original, "_flagpost_memo", False)
        or not inspect.isgeneratorfunction(original)
        or not hasattr(rules, "RulePart")
        or not hasattr(rules, "Weighting")
    ):
        return

    def parse_rule(self: rules.Rule, rule: str) -> Iterator[rules.RulePart]:
        parsed = _PARSED.get(rule)
        if parsed is None:
            try:
                parsed = _record_parse(original, self, rule)
            except Exception:  # a malformed rule, or werkzeug's internals moved: its own way
                yield from original(self, rule)
                return
            _PARSED[rule] = parsed
        parts = _replay_parse(self, parsed)
        if parts is None:
            yield from original(self, rule)
            return
        yield from parts

    parse_rule._flagpost_memo = True  # type: ignore[attr-defined]
    parse_rule._flagpost_original = original  # type: ignore[attr-defined]
    rules.Rule._parse_rule = parse_rule  # type: ignore[method-assign]


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
        if _SQLITE_SCHEMA is None:
            db.create_all()
            _SQLITE_SCHEMA = sqlite3.connect(":memory:", check_same_thread=False)
            copy_sqlite(into=_SQLITE_SCHEMA)
        else:
            copy_sqlite(source=_SQLITE_SCHEMA)


def copy_sqlite(
    into: sqlite3.Connection | None = None, source: sqlite3.Connection | None = None
) -> None:
    """Copy the current app's SQLite database into ``into``, or ``source`` into it, with
    SQLite's backup API (a page copy: every table, row and ``sqlite_sequence`` counter)."""
    raw = db.engine.raw_connection()
    try:
        target = raw.driver_connection
        assert isinstance(target, sqlite3.Connection)
        if into is not None:
            target.backup(into)
        else:
            assert source is not None
            source.backup(target)
    finally:
        raw.close()


def freeze_long_lived() -> None:
    """Leave the objects alive now (modules, collected tests) out of later garbage collections.

    Python's full collections walk every tracked object to find cycles. A test process holds
    about 330,000 of them once the suite is collected (imported modules, test items, their
    marks and parameters), and they live until the process ends; yet every app a test drops
    is a cycle (rules point back to their map), so full collections keep coming, each
    walking all of them again. ``gc.freeze()`` (the standard library's way to do this) moves
    the objects alive now into a permanent generation that collections skip; objects made
    afterwards (every app, every test's data) are collected as before. A collection first, so
    nothing already garbage is kept.
    """
    gc.collect()
    gc.freeze()


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


def is_shared(engine: Engine) -> bool:
    """Whether ``engine`` is one of the shared engines (see :func:`share_engines`)."""
    return any(engine is shared for shared in _ENGINES.values())


def dispose_shared_engines() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
