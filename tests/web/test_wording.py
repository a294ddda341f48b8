"""Words a person would write, on every page and partial.

Walks every dashboard GET route of the URL map (as admin, QA and viewer; full page and htmx
partial) over a world with history, traits of every kind and identifiers made of blanks, and
fails on Python in the visible text: wrong plurals ("1 identities", "2 segment"), ``None``,
``False``/``True``, snake_case action or object names, backticks, and Werkzeug's default error
texts. The audit log and the identity history are rendered for every audit action and object
kind that ``services.humanize`` declares (``audit.record`` refuses any other), and a scan of the
services checks that every action the code writes is one of them.

Not about the database: it runs on SQLite only.
"""

from __future__ import annotations

import ast
import itertools
import re
import unicodedata
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import werkzeug.exceptions
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import make_identity
from tests.hardening.routes_table import (
    ACTORS,
    PASSWORD,
    ROUTES,
    build_url,
    collection_app,
    world_on,
)
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AuditEvent, Environment, Feature, Identity, User
from webapp.services import humanize
from webapp.services.identities import identity_overrides, manage
from webapp.services.identities import traits as trait_service

pytestmark = pytest.mark.databases("sqlite")  # pages and rules: runs once

_APP = collection_app()
GET_ROUTES = sorted(
    endpoint for (endpoint, method) in ROUTES if method == "GET" and endpoint != "static"
)
WALKERS = ("admin", "qa_own", "viewer")
HTMX = {"HX-Request": "true"}
SERVICES = Path(__file__).resolve().parents[2] / "webapp" / "services"

# Identifiers an SDK may send that show as nothing: blanks, zero-width, bidi, control.
RULES_OF_ONE = {
    "name": "Gold", "match": "ALL", "groups-0-type": "ANY",
    "groups-0-conditions-0-property_": "plan", "groups-0-conditions-0-operator": "EQUAL",
    "groups-0-conditions-0-value": "gold",
}  # fmt: skip
INVISIBLE_IDENTIFIERS = (
    "   ",
    "\t",
    "\u200b",
    "\u200e\u200f",
    "\u202e",
    "\u00a0\u00a0",
    "\u3164",
    "\u2800",
    "\x7f",
    "a\u200bb",
    " lead",
    "trail ",
)

_NOUNS = (
    "identity|segment|trait|feature|change|condition|member|option|variant|event|rule|line"
    "|override|key|object|environment"
)
PROBLEMS = {
    "a plural after one": re.compile(rf"(?<![\d.,])\b1 (?:identities|(?:{_NOUNS})s)\b"),
    "a singular after many": re.compile(
        rf"(?<![\d.,:-])\b(?:0|[2-9]|[1-9]\d+|\d{{1,3}}(?:,\d{{3}})+) (?:{_NOUNS})\b"
        r"(?! (?:override|key|state|value|column|link)s?\b)"
    ),
    # (a string value "None" that someone typed is shown quoted: “None”)
    "Python's None": re.compile(r"(?<!“)\bNone\b(?!”)"),
    "Python's booleans": re.compile(r"\b(?:True|False)\b"),
    "a backtick": re.compile(r"`"),
    "a snake_case name from the code": re.compile(
        r"\b(?:"
        + "|".join(
            sorted(
                name
                for name in (*humanize.ACTION_LABELS, *humanize.OBJECT_LABELS,
                             *humanize.FIELD_LABELS)
                if "_" in name
            )
        )
        + r")\b"
    ),
    "Werkzeug's default text": re.compile(
        "|".join(
            re.escape(cls.description[:40])
            for cls in vars(werkzeug.exceptions).values()
            if isinstance(cls, type)
            and issubclass(cls, werkzeug.exceptions.HTTPException)
            and isinstance(getattr(cls, "description", None), str)
            and len(cls.description) > 20
        )
        + "|read-protected"
    ),
}
VISIBLE_ATTRIBUTES = ("title", "placeholder", "aria-label", "hx-confirm", "data-confirm", "alt")


class _Text(HTMLParser):
    """Collect the text a person sees: content outside scripts and a few attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.parts.extend(v for k, v in attrs if k in VISIBLE_ATTRIBUTES and v)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def problems_in(text: str) -> list[str]:
    found = []
    for name, pattern in PROBLEMS.items():
        for match in pattern.finditer(text):
            start = max(0, match.start() - 40)
            found.append(f"{name}: …{text[start:match.end() + 40]}…")
    return found


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def database() -> str:
    # Wording does not depend on the database; one backend is enough.
    return "sqlite"


@pytest.fixture
def world(app: Flask) -> dict[str, str]:
    """The hardening world, plus history of every value kind and invisible identifiers."""
    ids = world_on()
    env = db.session.get(Environment, int(ids["env"]))
    admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
    alice = db.session.get(Identity, int(ids["alice"]))
    banner = db.session.get(Feature, int(ids["banner"]))
    assert env and admin and alice and banner
    now = utcnow()
    # Trait history: a boolean false -> true, a number, a string, then a deletion.
    trait_service.set_trait(admin, alice, "beta", "false", "boolean", now)
    trait_service.set_trait(admin, alice, "beta", "true", "boolean", now)
    trait_service.set_trait(admin, alice, "visits", "1", "integer", now)
    trait_service.set_trait(admin, alice, "nick", "None", "string", now)
    trait_service.delete_trait(admin, alice, "nick", now)
    # Override history: a value set to no value, then removed.
    identity_overrides.set_override_value(admin, alice, banner, None, now, None)
    identity_overrides.remove_override(admin, alice, banner, now)
    for identifier in INVISIBLE_IDENTIFIERS:
        make_identity(env, identifier, traits={"plan": "pro"})
    db.session.commit()
    return ids


def login(app: Flask, actor: str) -> FlaskClient:
    client = app.test_client()
    g.pop("_login_user", None)
    email = ACTORS[actor]
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def get(client: FlaskClient, url: str, partial: bool = False) -> str:
    g.pop("_login_user", None)
    response = client.get(url, headers=HTMX if partial else {})
    assert response.status_code < 500, f"{url}: {response.status_code}"
    return response.get_data(as_text=True)


# ----------------------------------------------------------------------------- the walk


def test_problems_in__python_isms__found() -> None:
    # The patterns must be able to fail.
    for text in ("1 identities changed", "Apply to 1 segments", "2 segment", "value None",
                 "False → True", "created segment_override", "choose_option", "use `a`",
                 "It is either read-protected or not readable by the server."):  # fmt: skip
        assert problems_in(text), text
    for text in ("1 identity changed", "2 segments", "2 segment overrides", "no value", "“None”",
                 "false → true", "created segment override", "dark_mode", "2026-12-04 10:30"):
        assert not problems_in(text), (text, problems_in(text))


@pytest.mark.parametrize("actor", WALKERS)
def test_every_get_route__visible_text__has_no_python(
    app: Flask, world: dict[str, str], actor: str
) -> None:
    # Given someone logged in, and every page and partial of the URL map
    client = login(app, actor)
    found = []
    for endpoint in GET_ROUTES:
        url = build_url(app, endpoint, "GET", world)
        for partial in (False, True):
            # When they open it
            text = visible_text(get(client, url, partial))
            # Then it reads as a person would write it
            found += [f"{endpoint}{' (htmx)' if partial else ''}: {p}" for p in problems_in(text)]
    assert not found, "\n".join(found)


def test_walk__covers_every_dashboard_get_route() -> None:
    declared = set(GET_ROUTES) | {"static"}
    served = {
        rule.endpoint
        for rule in _APP.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and not rule.rule.startswith(("/api/", "/ofrep/"))
    }
    assert served <= declared, sorted(served - declared)


@pytest.mark.parametrize(
    "query", ["a or b", "plan in x", "and", "plan = ", '"unclosed', "plan @ 3", "~"]
)
def test_search_errors__refused_queries__no_backticks(
    app: Flask, world: dict[str, str], query: str
) -> None:
    client = login(app, "viewer")
    for endpoint in ("users.index", "users.count"):
        url = build_url(app, endpoint, "GET", world)
        body = get(client, f"{url}?q={query}")
        assert not problems_in(visible_text(body)), (query, problems_in(visible_text(body)))


@pytest.mark.parametrize("status_url", ["/no/such/page", "/environments/{env}/users/bulk"])
def test_error_pages__not_found_and_wrong_method__our_words(
    app: Flask, world: dict[str, str], status_url: str
) -> None:
    client = login(app, "viewer")
    for partial in (False, True):
        body = get(client, status_url.format(env=world["env"]), partial)
        assert not problems_in(visible_text(body))


def test_error_pages__viewer_on_editor_page__our_words(app: Flask, world: dict[str, str]) -> None:
    # Given a viewer opening a page only editors may use
    client = login(app, "viewer")
    g.pop("_login_user", None)
    response = client.get(build_url(app, "features.new", "GET", world))
    # Then the 403 says it in our words
    assert response.status_code == 403
    text = visible_text(response.get_data(as_text=True))
    assert "read-protected" not in text and "Not allowed" in text
    assert not problems_in(text)


# ----------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize("identifier", INVISIBLE_IDENTIFIERS)
def test_name_text__invisible_identifier__quoted_and_marked(identifier: str) -> None:
    shown = humanize.name_text(identifier)
    assert shown.startswith("“") and shown.endswith("”")
    inner = shown[1:-1]
    # Every character is visible: no blank at the edges, no invisible one anywhere
    assert inner.strip() == inner and inner
    assert not any(humanize.needs_marking(ch) and ch != " " for ch in inner)
    assert "␣" in inner or "<U+" in inner


@pytest.mark.parametrize("identifier", ["alice", "Ann Lee", "ünïcødé", "a-b_c.d", "👍"])
def test_name_text__ordinary_identifier__unchanged(identifier: str) -> None:
    assert humanize.name_text(identifier) == identifier


def test_invisible_identifiers__every_page_showing_them__marks_them(
    app: Flask, world: dict[str, str]
) -> None:
    # Given identities whose identifiers are blanks or invisible characters
    client = login(app, "admin")
    env = world["env"]
    ids = {
        i.identifier: i.id
        for i in db.session.scalars(select(Identity).where(Identity.environment_id == int(env)))
    }
    users_page = get(client, f"/environments/{env}/users?sort=identifier")
    for identifier in INVISIBLE_IDENTIFIERS:
        shown = humanize.name_text(identifier)
        detail = f"/environments/{env}/identities/{ids[identifier]}"
        # Then the Users list links them with visible text
        assert f'href="{detail}">{_escaped(shown)}</a>' in users_page, identifier
        # And the identity page names them visibly in the title and heading
        page = get(client, detail)
        assert _escaped(shown) in page.split("<h1", 1)[1].split("</h1>", 1)[0]
        assert _escaped(shown)[:60] in page.split("<title>", 1)[1].split("</title>", 1)[0]


def test_invisible_identifier__audit_log_and_members__marked(
    app: Flask, world: dict[str, str]
) -> None:
    # Given an admin deleting an identity made of blanks (an audited change)
    client = login(app, "admin")
    env = world["env"]
    admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
    blank = db.session.scalar(select(Identity).where(Identity.identifier == "   "))
    assert admin and blank
    project_id = int(db.session.get(Environment, int(env)).project_id)  # type: ignore[union-attr]
    manage.delete_identity(admin, project_id, int(env), blank.id)
    # Then the audit log names it visibly
    assert _escaped("“␣␣␣”") in get(client, f"/environments/{env}/audit")
    # And segment members show them visibly wherever they are listed
    members = get(client, build_url(app, "segments.members", "GET", world))
    for identity in db.session.scalars(select(Identity).where(Identity.environment_id == int(env))):
        if f'id="member-{identity.id}"' in members:
            assert f">{_escaped(humanize.name_text(identity.identifier))}</a>" in members


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ----------------------------------------------------------------------------- audit


def _every_event(env: Environment, identity: Identity) -> Iterator[AuditEvent]:
    for action in humanize.ACTION_LABELS:
        for object_type in humanize.OBJECT_LABELS:
            yield AuditEvent(
                actor_label="admin@example.com", action=action, object_type=object_type,
                object_id="1", object_label="Gold plan", count=2,
                project_id=env.project_id, environment_id=env.id, identity_id=identity.id,
                before={"enabled": False, "value": None, "value_type": "null"},
                after={"enabled": True, "value": "x", "value_type": "string"},
            )  # fmt: skip


def test_audit_log_and_history__every_declared_action__human_words(
    app: Flask, world: dict[str, str]
) -> None:
    # Given one event of every declared action on every declared kind of object
    env = db.session.get(Environment, int(world["env"]))
    alice = db.session.get(Identity, int(world["alice"]))
    assert env and alice
    db.session.add_all(_every_event(env, alice))
    db.session.commit()
    client = login(app, "viewer")
    # When the audit log (every page of it) and alice's history are shown
    texts = []
    url: str | None = f"/environments/{env.id}/audit"
    while url:
        body = get(client, url)
        texts.append(visible_text(body))
        older = re.search(r'id="audit-older" href="([^"]+)"', body)
        url = older.group(1).replace("&amp;", "&") if older else None
    texts.append(visible_text(get(client, build_url(app, "identities.history", "GET", world))))
    text = " ".join(texts)
    # Then every action and object kind has its words, and nothing reads like code
    for label in (*humanize.ACTION_LABELS.values(), *humanize.OBJECT_LABELS.values()):
        assert label in text, label
    assert not problems_in(text)


def test_action_labels__every_declared_action__words_not_code() -> None:
    for name, label in (*humanize.ACTION_LABELS.items(), *humanize.OBJECT_LABELS.items(),
                        *humanize.FIELD_LABELS.items()):  # fmt: skip
        assert label and "_" not in label and label == label.strip(), name


# The services' audit helpers and where their action / object type arguments sit.
AUDIT_HELPERS = {
    "record": (1, 2), "_record": (1, 2, 3), "_commit_change": (3,), "_audit_feature": (1,),
    "_audit_option": (1, 2),
}  # fmt: skip


def _audited_words() -> Iterator[tuple[str, int, str]]:
    """Snake-case string literals in the action/object positions of audit helper calls."""
    for path in sorted(SERVICES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            for position in AUDIT_HELPERS.get(name, ()):
                if position >= len(node.args):
                    continue
                for sub in ast.walk(node.args[position]):
                    value = sub.value if isinstance(sub, ast.Constant) else None
                    if isinstance(value, str) and re.fullmatch(r"[a-z]+(?:_[a-z]+)*", value):
                        yield path.name, node.lineno, value


def test_audit_actions__written_by_the_code__are_declared() -> None:
    # Every action or object kind a service passes to the audit helpers has words for people
    declared = set(humanize.ACTION_LABELS) | set(humanize.OBJECT_LABELS)
    found = list(_audited_words())
    assert len(found) > 20  # the scan does see the services' calls
    undeclared = [f for f in found if f[2] not in declared]
    assert not undeclared, undeclared
    for action in manage.BULK_ACTIONS:
        assert f"bulk_{action}" in humanize.ACTION_LABELS


def test_audit_record__undeclared_action__refused(app: Flask) -> None:
    from webapp.services import audit

    with pytest.raises(ValueError, match="undeclared"):
        audit.record(None, "frobnicate", "feature")
    with pytest.raises(ValueError, match="undeclared"):
        audit.record(None, "create", "gadget")


# ----------------------------------------------------------------------------- preview


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "Add at least one group with a condition"),
        ({"name": "x" * 201}, "Name"),
        ({**RULES_OF_ONE, "groups-0-conditions-0-operator": "REGEX",
          "groups-0-conditions-0-value": "(a+)+$"}, "Group 1, condition 1: "),
        ({**RULES_OF_ONE, "groups-0-conditions-0-property_": ""}, "Group 1, condition 1: "),
    ],
    ids=["blank", "name-too-long", "refused-regex", "no-property"],
)
def test_preview__rules_not_ready__says_what_is_wrong_not_what_is_highlighted(
    app: Flask, world: dict[str, str], data: dict[str, str], expected: str
) -> None:
    # Given an editor previewing rules that cannot be counted (nothing on the page is marked)
    client = login(app, "admin")
    g.pop("_login_user", None)
    response = client.post(build_url(app, "segments.preview", "POST", world), data=data)
    # Then the preview names each problem where it is
    text = visible_text(response.get_data(as_text=True))
    assert "highlighted" not in text
    assert expected in text, text
    assert not problems_in(text)


def test_invisible_characters__fast_check__agrees_with_the_categories() -> None:
    # Given every code point (walked in C: a Python call per code point takes seconds)
    chars = list(map(chr, range(0x110000)))
    by_category = map(humanize._INVISIBLE_CATEGORIES.__contains__, map(unicodedata.category, chars))
    invisible = list(itertools.compress(chars, by_category))
    invisible.remove(" ")
    # Then str.isprintable, which _all_visible uses, is false for exactly those characters
    assert list(itertools.filterfalse(str.isprintable, chars)) == invisible
    assert not any(map(humanize._all_visible, [*humanize._INVISIBLE_LETTERS, *"\x00\u200b\u00a0"]))
    assert humanize._all_visible("Ann Lee ünï 👍")
    assert humanize._marked("a\u200bb c") == "a<U+200B>b c"
    assert humanize._marked(" a  b ") == "␣a␣␣b␣"
    assert humanize._marked("plain name") == "plain name"
