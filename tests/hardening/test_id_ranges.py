"""Out-of-range ids: no URL argument, form field or query string holding an id gives a 5xx.

Database ids lie in 1..2**31-1 (``INTEGER`` columns). A bigger number reaching a query
fails in the driver, at a limit that differs by database (PostgreSQL:
``NumericValueOutOfRange`` from 2**31; SQLite: ``OverflowError`` from 2**63), so every way in
is walked with ``BAD_IDS`` (0, -1, 2**31, 2**63, 10**30, words, non-ASCII digits), logged in
as the admin of the ``routes_table`` world, on SQLite and PostgreSQL:

- every rule of the URL map, every method, every integer path argument: 404;
- every id-like field of every form in ``webapp.forms`` (a name ending in ``_id`` or an id
  field type), on every route that validates that form: never 5xx, and htmx gets a 4xx
  with the field's inline message;
- every query-string argument a route reads: never 5xx;
- every integer of an environment document (ids, priorities) given to ``import-environment``:
  imported, or refused naming the field, never a crash.

Nothing is listed by hand: the routes come from the URL map and ``routes_table.ROUTES``,
the fields from the form classes, and which route validates which form (and reads which
query argument) from sending each route's valid request once, so a route or form added
later is covered without editing this module.
"""

from __future__ import annotations

import html
import importlib
import json
import pkgutil
import re
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import flask_wtf
import pytest
import wtforms
from flask import Flask, current_app, g
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.routing.converters import NumberConverter
from werkzeug.test import TestResponse
from werkzeug.utils import cached_property
from wtforms.fields.core import UnboundField

import webapp.forms
from tests import worlds
from tests.hardening.dbdump import changes_mark, describe_change, dump, restore
from tests.hardening.routes_table import (
    API_PREFIXES,
    PASSWORD,
    ROUTES,
    body,
    build_url,
    build_world,
    collection_app,
    dashboard_routes,
    rule_for,
)
from webapp.extensions import db
from webapp.forms.ids import IdField, IdListField, IdSelectField
from webapp.ids import ID_MAX, ID_PATTERN, IdConverter, parse_id

pytestmark = pytest.mark.databases("sqlite", "postgres")  # database behaviour: overflow differs

# The last is 12 in Arabic-Indic digits: Python's int() reads it, no id is written so.
BAD_IDS = ["0", "-1", str(2**31), str(2**63), str(10**30), "abc", "\u0661\u0662"]
ID_MESSAGE = re.compile(r"not found|not a valid id", re.IGNORECASE)
HTMX = {"HX-Request": "true"}
PROBE = "987654321"  # a valid id no world object has, replaced by each bad value
SESSION = "session_cookie"  # the world's entry holding the admin's session cookie
_TAGS = re.compile(r"<[^>]+>")

_APP = collection_app()


def _integer_arguments() -> list[tuple[str, str, str]]:
    """Every (endpoint, method, argument) whose path argument is an integer or id."""
    found = set()
    for rule in _APP.url_map.iter_rules():
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            for name, converter in (rule._converters or {}).items():
                if isinstance(converter, NumberConverter | IdConverter):
                    found.add((rule.endpoint, method, name))
    return sorted(found)


def _id_fields() -> list[tuple[type[Any], str]]:
    """Every (form class, posted field name) of ``webapp.forms`` that holds database ids."""
    found = []
    for info in pkgutil.iter_modules(webapp.forms.__path__):
        module = importlib.import_module(f"webapp.forms.{info.name}")
        for cls in vars(module).values():
            is_form = isinstance(cls, type) and issubclass(cls, flask_wtf.FlaskForm)
            if is_form and cls.__module__ == module.__name__:
                found += [(cls, name) for name in _id_names(cls)]
    return sorted(found, key=lambda item: (item[0].__qualname__, item[1]))


def _id_names(form: type[Any], prefix: str = "") -> list[str]:
    """Posted names of the id-like fields of ``form``, subforms included (``rows-0-x_id``)."""
    names = []
    for attribute in dir(form):
        unbound = getattr(form, attribute, None)
        if isinstance(unbound, UnboundField):
            names += _names_of(unbound, f"{prefix}{unbound.kwargs.get('name') or attribute}")
    return names


def _names_of(unbound: UnboundField, name: str) -> list[str]:
    kind = unbound.field_class
    if issubclass(kind, wtforms.FieldList):
        return _names_of(unbound.args[0], f"{name}-0")
    if issubclass(kind, wtforms.FormField):
        return _id_names(unbound.args[0], f"{name}-")
    is_id = issubclass(kind, IdField | IdSelectField | IdListField) or name.endswith("_id")
    return [name] if is_id else []


ARGUMENTS = _integer_arguments()
ID_FIELDS = _id_fields()
# Every dashboard route, and any other with an integer path argument.
ROUTE_KEYS = sorted(
    {key for key in dashboard_routes(_APP) if key[0] != "static"}
    | {(endpoint, method) for endpoint, method, _ in ARGUMENTS}
)


def build_logged_in_world() -> dict[str, str]:
    """Build the routes_table world and log its project's admin in through the real form
    (its ``last_login_at`` is part of the world); return the ids and the session cookie."""
    ids = build_world()
    login = current_app.test_client()
    log_in(login)
    g.pop("_login_user", None)  # every test's request loads the user from its cookie
    cookie = login.get_cookie(current_app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None, "the login set no session cookie"
    return {**ids, SESSION: cookie.value}


@pytest.fixture
def world(app: Flask, client: FlaskClient, database: str) -> Iterator[dict[str, str]]:
    """The routes_table world (built once per process, then restored), with ``client``
    logged in as the project's admin: the first test of a process logs in through the
    form, the later ones carry the session cookie it set (the login is in the restored rows).
    """
    ids = worlds.restore_or_build("routes_admin", build_logged_in_world)
    set_session(client, ids.pop(SESSION))
    yield ids


_DUMPS: dict[Hashable, dict[str, list[tuple[Any, ...]]]] = {}


def world_dump() -> dict[str, list[tuple[Any, ...]]]:
    """``dump()`` of the database; on PostgreSQL read once per content: every test starts
    from the same restored world, and an equal ``changes_mark()`` (the md5 of every table's
    rows and the sequences) means equal rows. (A SQLite mark counts the writes of one
    connection: it says nothing across tests, so SQLite is dumped every time.)"""
    if db.engine.dialect.name != "postgresql":
        return dump()
    mark = changes_mark()
    if mark not in _DUMPS:
        _DUMPS.clear()
        _DUMPS[mark] = dump()
    return _DUMPS[mark]


def set_session(client: FlaskClient, cookie: str) -> None:
    """Give ``client`` the admin's session cookie (logged in, as after ``log_in``)."""
    client.set_cookie(current_app.config["SESSION_COOKIE_NAME"], cookie)


def session_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(current_app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None, "the client has no session cookie"
    return cookie.value


def log_in(client: FlaskClient) -> None:
    credentials = {"email": "admin@example.com", "password": PASSWORD}
    response = send(client, "/login", "POST", data=credentials)
    assert response.status_code == 302, "the admin could not log in"


def send(client: FlaskClient, url: str, method: str = "GET", **kwargs: Any) -> TestResponse:
    """Send a request as its own (the tests share one app context, and so Flask-Login's ``g``).

    A GET's fields go in the query string, where a GET form (the compare page's) reads them.
    """
    g.pop("_login_user", None)
    if method == "GET" and kwargs.get("data"):
        url += ("&" if "?" in url else "?") + urlencode(kwargs.pop("data"))
    return client.open(url, method=method, **kwargs)


def text_of(response: TestResponse) -> str:
    return " ".join(html.unescape(_TAGS.sub(" ", response.get_data(as_text=True))).split())


def _with_segment(url: str, name: str, value: str) -> str:
    path, _, query = url.partition("?")
    parts = [value if part == name else part for part in path.split("/")]
    assert parts != path.split("/"), f"{url}: the probe id is not a path segment"
    return "/".join(parts) + (f"?{query}" if query else "")


# ---- what a route uses, found by sending its valid request -------------------------------
@dataclass
class Uses:
    """What one route's valid request validated (forms) and read from its query string."""

    forms: set[type[Any]] = field(default_factory=set)
    args: set[str] = field(default_factory=set)


class _RecordingArgs(MultiDict[str, str]):
    """A query string that notes every name looked up in it."""

    def __init__(self, items: MultiDict[str, str], seen: set[str]) -> None:
        super().__init__(items)
        self.seen = seen

    def _note(self, key: object) -> None:
        if isinstance(key, str):
            self.seen.add(key)

    def get(self, key: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._note(key)
        return super().get(key, *args, **kwargs)

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return super().__contains__(key)

    def getlist(self, key: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._note(key)
        return super().getlist(key, *args, **kwargs)


def uses_of(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, world: dict[str, str],
    endpoint: str, method: str, before: dict[str, list[tuple[Any, ...]]],
) -> Uses:  # fmt: skip
    """Send the route's valid request, then restore the database to ``before`` (a ``dump()``
    of it as it is now) if the request changed it; return what the request used."""
    uses = Uses()
    validate = wtforms.Form.validate

    def recording_validate(self: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self, flask_wtf.FlaskForm):
            uses.forms.add(type(self))
        return validate(self, *args, **kwargs)

    class RecordingRequest(app.request_class):  # type: ignore[name-defined,misc]
        @cached_property
        def args(self) -> MultiDict[str, str]:
            return _RecordingArgs(super().args, uses.args)

    mark = changes_mark()
    with monkeypatch.context() as patch:
        patch.setattr(wtforms.Form, "validate", recording_validate)
        patch.setattr(app, "request_class", RecordingRequest)
        url = build_url(app, endpoint, method, world)
        send(client, url, method, data=body(endpoint, method, world), headers=HTMX)
    restore(before, mark)
    return uses


# ---- the one rule -------------------------------------------------------------------------
@pytest.mark.parametrize("number", [1, 9, 10, 10**8, 10**9 - 1, 10**9, ID_MAX - 1, ID_MAX,
                                    2047483648, 2147483639])  # fmt: skip
def test_id_rule__ids__match_and_parse(number: int) -> None:
    assert re.fullmatch(ID_PATTERN, str(number)) and parse_id(str(number)) == number


@pytest.mark.parametrize("text", [*BAD_IDS, str(ID_MAX + 1), "2147483650", "2200000000",
                                  str(10**10), "", "1.0", " 1", "+1", "1_0", "007"])  # fmt: skip
def test_id_rule__not_ids__match_nothing_in_urls(text: str) -> None:
    assert not re.fullmatch(ID_PATTERN, text)
    assert parse_id(text) is None or text == "007"  # posted forms may keep leading zeros


# ---- the walks ---------------------------------------------------------------------------
def test_walk__finds_enough_to_mean_something() -> None:
    assert len(ARGUMENTS) >= 40, ARGUMENTS
    assert ("identities.undo", "POST", "event_id") in ARGUMENTS
    names = {f"{form.__name__}.{name}" for form, name in ID_FIELDS}
    expected = {"OptionForm.option_id", "SegmentOverrideForm.feature_id", "ReorderForm.order",
                "AllocationsForm.allocations-0-option_id", "BulkActionForm.feature_id"}  # fmt: skip
    assert expected <= names, names


def test_url_map__integer_path_arguments__use_the_id_converter() -> None:
    plain = [
        f"{rule.rule} ({name})"
        for rule in _APP.url_map.iter_rules()
        for name, converter in (rule._converters or {}).items()
        if isinstance(converter, NumberConverter)
    ]
    assert not plain, f"use <id:…> for database ids, not <int:…>: {plain}"


@pytest.mark.parametrize(("endpoint", "method"), ROUTE_KEYS,
                         ids=[f"{e}-{m}" for e, m in ROUTE_KEYS])  # fmt: skip
def test_route__values_that_are_no_ids__never_5xx(
    app: Flask, client: FlaskClient, world: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    endpoint: str, method: str,
) -> None:  # fmt: skip
    """One test per route (not per argument): each costs an app and a world."""
    url = build_url(app, endpoint, method, world)
    data = body(endpoint, method, world)
    before = world_dump()

    # Given what the route's valid request validates (forms) and reads (query string)
    uses = uses_of(app, client, monkeypatch, world, endpoint, method, before)

    for argument in (a for e, m, a in ARGUMENTS if (e, m) == (endpoint, method)):
        probe = build_url(app, endpoint, method, {**world, "probe": PROBE}, {argument: "probe"})
        for bad in BAD_IDS:
            # When a path argument is no id (the route's valid request otherwise)
            target = _with_segment(probe, PROBE, bad)
            response = send(client, target, method, data=data, headers=HTMX)

            # Then there is no such page: 404, never a server error
            assert response.status_code == 404, (
                f"{method} {target}: {response.status_code} {text_of(response)[:300]}"
            )

    for name in sorted({name for form, name in ID_FIELDS if form in uses.forms}):
        for bad in BAD_IDS:
            # When an id-like form field holds a value that is no id
            sent = {**data, name: bad}
            plain = send(client, url, method, data=sent)
            htmx = send(client, url, method, data=sent, headers=HTMX)

            # Then the form says so inline (4xx), never a server error
            where = f"{method} {url} {name}={bad!r}"
            assert plain.status_code < 500, f"{where}: {text_of(plain)[:300]}"
            assert 400 <= htmx.status_code < 500, f"{where}: {htmx.status_code}"
            assert ID_MESSAGE.search(text_of(htmx)), f"{where}: {text_of(htmx)[:600]}"
    after = dump()
    assert after == before, f"{method} {url}: {describe_change(before, after)}"

    mark = changes_mark()
    for name in sorted(uses.args):
        for bad in BAD_IDS:
            # When a query-string argument the route reads holds a value that is no id
            target = f"{url}{'&' if '?' in url else '?'}{name}={bad}"
            response = send(client, target, method, data=data, headers=HTMX)

            # Then never a server error
            assert response.status_code < 500, f"{method} {target}: {text_of(response)[:300]}"
            if method != "GET":
                mark = restore(before, mark)  # the valid request went through: wind it back


@pytest.mark.heavy(seconds=12)
def test_id_fields__each__validated_by_some_declared_route(
    app: Flask, client: FlaskClient, world: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given every declared route's valid request
    validated: set[type[Any]] = set()
    before, session = dump(), session_of(client)
    for endpoint, method in sorted(ROUTES):
        if endpoint == "static" or rule_for(app, endpoint, method).rule.startswith(API_PREFIXES):
            continue
        validated |= uses_of(app, client, monkeypatch, world, endpoint, method, before).forms
        set_session(client, session)  # logged in again: one of the routes logs out

    # Then every form with an id field is validated by one of them (so the walk reaches it)
    unreached = sorted({form.__qualname__ for form, _ in ID_FIELDS if form not in validated})
    assert not unreached, f"no declared route validates {unreached}: declare it in ROUTES"


# ---- ids in documents ------------------------------------------------------------------
DOCUMENT = Path(__file__).resolve().parent.parent / "data" / "flagsmith_environment_rich.json"


def _integer_paths(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to an integer (not a boolean) in a JSON document."""
    if isinstance(node, int) and not isinstance(node, bool):
        yield path
    if isinstance(node, dict | list):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield from _integer_paths(value, (*path, key))


def _one_per_shape(paths: Iterator[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Keep the first path of each shape (``a.0.b`` and ``a.1.b`` are one field)."""
    shapes: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for path in paths:
        shapes.setdefault(tuple(p for p in path if isinstance(p, str)), path)
    return list(shapes.values())


def test_document_import__integers_out_of_range__refused_by_name_never_a_crash(
    runner: Any, tmp_path: Path
) -> None:
    from webapp.extensions import db

    paths = _one_per_shape(_integer_paths(json.loads(DOCUMENT.read_text())))
    assert len(paths) >= 5, paths
    for path in paths:
        for bad in (0, -1, 2**31, 2**63, 10**30):
            # Given the document with one integer out of the id range
            doc = json.loads(DOCUMENT.read_text())
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = bad
            file = tmp_path / "doc.json"
            file.write_text(json.dumps(doc))

            # When it is imported
            result = runner.invoke(args=["import-environment", str(file)])
            db.session.rollback()

            # Then it is imported, or refused naming the field: never an uncaught error
            where = f"{'.'.join(map(str, path))}={bad}"
            crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
            assert not crashed, f"{where}: {result.exception!r}"
            if result.exit_code != 0:
                assert str(path[-1]) in result.output, f"{where}: {result.output[-300:]}"
