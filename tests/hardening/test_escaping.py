"""Escaping: hostile text stored in every field renders as text on every page and partial.

``build_hostile_world`` stores HTML/JS payloads in identifiers, trait keys and values,
feature descriptions and values, multivariate options, segment names, descriptions and rule
values, override values, server key, project, environment and organisation names, user
emails and audit labels. The walk fetches every GET route of the dashboard (as a page and as
an htmx partial), asserts no payload appears unescaped, parses the HTML to prove no element
or event handler was injected and that JSON carried in attributes still parses, and checks
that the pages showing each field contain its escaped form (so the test can fail).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask, current_app, url_for
from flask.testing import FlaskClient
from markupsafe import escape

from tests import worlds
from tests.factories import (
    identities_make_link,
    identities_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_user,
)
from webapp.api_paths import API_PREFIXES
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.services import audit, environments, humanize, people
from webapp.services.experiments import lifecycle
from webapp.services.features import feature_options
from webapp.services.identities import identity_overrides, manage, traits
from webapp.services.segments import definitions
from webapp.services.usage.recorder import Served, UsageBuffer

# Page escaping: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
QUOTE = "'-alert(1)-'"
TEMPLATE = "{{7*7}}"
TEXTAREA = "</textarea><svg onload=alert(1)>"
JS_URL = "javascript:alert(1)"
PAYLOADS = (SCRIPT, IMG, QUOTE, TEMPLATE, TEXTAREA, JS_URL)
# Any of these in a response body means a payload was not escaped.
UNESCAPED = ("<script>alert(1)", "<img src=x", "<svg onload", "'-alert(1)-'", "</textarea><svg")
# The test walks every GET route except these prefixes (JSON APIs and files).
SKIPPED_PREFIXES = (*API_PREFIXES, "/static/")
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "data",
                  "hx-get", "hx-post", "hx-put", "hx-delete", "hx-patch"}  # fmt: skip
JSON_ATTRIBUTES = {"hx-vals", "hx-headers", "hx-request"}
PASSWORD = "password123"
# Lower-case already: login lower-cases the address it is given.
ADMIN_EMAIL = f"{IMG}@example.com"
LINKED_EMAIL = f"{SCRIPT}@example.com"
INVITED_EMAIL = f"{TEXTAREA}@example.com"


def hostile(tag: str) -> str:
    """Return a value tagged ``tag`` that carries every markup payload (about 110 chars)."""
    return f"{tag}{SCRIPT}{IMG}{QUOTE}{TEMPLATE}{TEXTAREA}"


def shown(value: str) -> str:
    """Return ``value`` as HTML-escaped text, the way the templates must show it."""
    return str(escape(value))


@dataclass(frozen=True)
class HostileWorld:
    """Ids of the objects holding payloads, and the values stored in them."""

    env: int
    identity: int
    plain_identity: int
    features: tuple[int, ...]
    segment: int
    option: int
    trait_keys: tuple[str, ...]
    values: dict[str, str]
    project: int = 0
    users: tuple[int, ...] = ()  # accounts with hostile emails (people pages)
    tokens: tuple[str, ...] = ()  # an invitation and a password-reset link of those accounts
    experiment: int = 0


def _segment_rules(values: dict[str, str]) -> list[dict[str, Any]]:
    """Rules the hostile identity matches, with payloads as properties and values."""
    conditions = [
        {"property_": values["trait_key"], "operator": "EQUAL", "value": values["trait_value"]},
        {"property_": "link", "operator": "IN", "value": f"{SCRIPT},{IMG}"},
        {"property_": "link", "operator": "EQUAL", "value": JS_URL},
    ]
    return [{"type": "ALL", "conditions": [],
             "rules": [{"type": "ANY", "rules": [], "conditions": conditions}]}]  # fmt: skip


def build_hostile_world() -> HostileWorld:
    """Store a payload in every field a page shows; the admin's email is one too.

    Changes go through the services where they exist, so the audit log carries the
    payloads in its labels and before/after values the way real changes do.
    """
    values = {name: hostile(tag) for name, tag in (
        ("organisation", "on"), ("project", "pn"), ("environment", "en"),
        ("identifier", "id"), ("trait_key", "tk"), ("trait_value", "tv"),
        ("description", "fd"), ("default_value", "fv"), ("option_value", "ov"),
        ("override_value", "iv"), ("segment_name", "sn"), ("segment_description", "sd"),
        ("segment_value", "sv"), ("server_key", "sk"), ("audit_label", "al"),
        ("audit_key", "ak"), ("audit_value", "av"), ("variant_key", "vk"),
        ("experiment_name", "xn"), ("goal_event", "ge"),
    )}  # fmt: skip
    values |= {"admin_email": ADMIN_EMAIL, "linked_email": LINKED_EMAIL, "js_url": JS_URL,
               "invited_email": INVITED_EMAIL}  # fmt: skip
    project = make_project(values["project"], organisation=values["organisation"])
    env = make_environment(project, values["environment"])
    # An organisation admin (every project), so the people pages are walked too.
    admin = make_user(ADMIN_EMAIL, "admin", all_projects=True)
    invited = make_user(INVITED_EMAIL, "viewer", project)
    invited.invitation_pending = True
    linked = make_user(LINKED_EMAIL, "qa", project)
    description = values["description"]
    multi = make_feature(
        project, "xss.multi", type="MULTIVARIATE", value=values["default_value"],
        description=description,
    )  # fmt: skip
    other = make_feature(
        project, "xss-override", enabled=True, value="plain", description=description
    )
    identity = make_identity(env, values["identifier"])
    plain = make_identity(env, JS_URL, traits={"link": JS_URL})
    identities_make_link(linked, identity)
    db.session.commit()

    now = utcnow()
    traits.set_trait(admin, identity, values["trait_key"], values["trait_value"], "string", now)
    traits.set_trait(admin, identity, "link", JS_URL, "string", now)
    identity_overrides.set_override_value(
        admin, identity, other, values["override_value"], now, None
    )
    option = feature_options.add_option(multi, "string", values["option_value"], 40.0, admin)
    segment = definitions.create_segment(
        project.id, admin, values["segment_name"], values["segment_description"],
        _segment_rules(values),
    )  # fmt: skip
    identities_make_segment_override(segment, multi, env, value=values["segment_value"])
    environments.create_server_key(env, values["server_key"], admin)
    manage.save_trait_columns(admin, env.id, [values["trait_key"], "link"])
    audit.record(admin, "update", "trait", object_label=values["audit_label"],
                 project_id=project.id, environment_id=env.id, identity_id=identity.id,
                 before={values["audit_key"]: values["audit_value"]},
                 after={"value": values["audit_value"]})  # fmt: skip
    people.set_roles(admin, linked.id, {project.id: "qa", None: "viewer"})
    invitation = people.issue_reset_link(admin, invited.id, now)
    reset = people.issue_reset_link(admin, linked.id, now)
    experiment = lifecycle.start_experiment(
        env, multi, values["experiment_name"], values["goal_event"], segment.id, admin, now
    )
    # usage: an imported variant key (documents accept any text) and what the identity saw
    option.key = values["variant_key"]
    db.session.commit()
    buffer = UsageBuffer(db.engine, interval=None)
    seen = [Served(multi.id, True, values["option_value"], values["variant_key"])]
    buffer.add_served(env.id, identity.id, seen, now)
    buffer.flush()
    db.session.commit()
    return HostileWorld(
        env=env.id, identity=identity.id, plain_identity=plain.id,
        features=(multi.id, other.id), segment=segment.id, option=option.id,
        trait_keys=(values["trait_key"], "link"), values=values, project=project.id,
        users=(linked.id, invited.id), tokens=(invitation.token, reset.token),
        experiment=experiment.id,
    )  # fmt: skip


# ----------------------------------------------------------------------------- the walk


def _argument_values(world: HostileWorld) -> dict[str, tuple[Any, ...]]:
    return {
        "environment_id": (world.env,),
        "identity_id": (world.identity, world.plain_identity),
        "feature_id": world.features,
        "segment_id": (world.segment,),
        "option_id": (world.option,),
        "key": world.trait_keys,
        "project_id": (world.project,),
        "user_id": world.users,
        "token": world.tokens,
        "experiment_id": (world.experiment,),
    }


# Query strings that make a page show more of the stored data.
EXTRA_QUERIES: dict[str, tuple[str, ...]] = {
    "segments.detail": ("tab=members", "tab=overrides"),
    "users.index": ("q=id", "q=link+%3D+javascript:alert(1)"),
}


def dashboard_get_urls(app: Flask, world: HostileWorld) -> Iterator[tuple[str, str]]:
    """Yield (endpoint, url) for every dashboard GET route, for every stored object.

    :raises AssertionError: when a route has an argument this walk cannot fill.
    """
    choices = _argument_values(world)
    with app.test_request_context():
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in (rule.methods or ()) or rule.rule.startswith(SKIPPED_PREFIXES):
                continue
            unknown = set(rule.arguments) - set(choices)
            assert not unknown, f"{rule.endpoint}: no hostile object for {sorted(unknown)}"
            names = sorted(rule.arguments)
            for combo in itertools.product(*(choices[n] for n in names)):
                url = url_for(rule.endpoint, **dict(zip(names, combo, strict=True)))
                yield rule.endpoint, url
                for query in EXTRA_QUERIES.get(rule.endpoint, ()):
                    yield rule.endpoint, f"{url}?{query}"


class _Markup(HTMLParser):
    """Collect what an injection would add: elements, handlers, URLs, JSON attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("iframe", "object", "embed") or (tag == "img" and found.get("src") == "x"):
            self.problems.append(f"injected <{tag}> element {found}")
        if tag == "script" and not found.get("src"):
            self.problems.append("inline <script> element")
        for name, value in attrs:
            self._check_attribute(tag, name, value or "")

    def _check_attribute(self, tag: str, name: str, value: str) -> None:
        if name.startswith("on"):
            self.problems.append(f"<{tag} {name}=…> event handler")
        if name in URL_ATTRIBUTES and value.strip().lower().startswith("javascript:"):
            self.problems.append(f"<{tag} {name}={value!r}> javascript: URL")
        if name in JSON_ATTRIBUTES or (tag == "meta" and name == "content" and value[:1] == "{"):
            try:
                parsed = json.loads(value)
            except ValueError:
                self.problems.append(f"<{tag} {name}={value!r}> is not JSON")
            else:
                if not isinstance(parsed, dict):
                    self.problems.append(f"<{tag} {name}={value!r}> is not a JSON object")


def markup_problems(body: str) -> list[str]:
    """Return every sign of injected markup in an HTML body (empty when it is clean)."""
    problems = [f"unescaped {marker!r}" for marker in UNESCAPED if marker in body]
    parser = _Markup()
    parser.feed(body)
    parser.close()
    return problems + parser.problems


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def world(app: Flask) -> HostileWorld:
    return worlds.restore_or_build("escaping", build_hostile_world)


@pytest.fixture
def admin_client(client: FlaskClient, auth: Any, world: HostileWorld) -> FlaskClient:
    response = auth.login(ADMIN_EMAIL)
    assert response.status_code == 302, "the admin with a hostile email could not log in"
    return client


def _get(client: FlaskClient, url: str, partial: bool = False) -> Any:
    headers = {"HX-Request": "true"} if partial else {}
    return client.get(url, headers=headers)


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    "body",
    [
        f"<p>{SCRIPT}</p>",
        f'<input value="{IMG}">',
        f"<textarea>{TEXTAREA}</textarea>",
        f'<button hx-vals=\'{{"a": "{QUOTE}"}}\'>x</button>',
        f'<a href="{JS_URL}">x</a>',
        "<div hx-vals='{\"a\": 1'>x</div>",
        '<p onclick="x()">x</p>',
    ],
)
def test_markup_problems__injected_markup__detected(body: str) -> None:
    # Given a body where a payload broke out of its text or attribute
    # When it is checked / Then the check reports it (the walk below can fail)
    assert markup_problems(body)


def test_markup_problems__escaped_payloads__clean() -> None:
    # Given every payload escaped as text and as attribute values
    body = "".join(f'<p title="{shown(p)}">{shown(p)}</p><textarea>{shown(p)}</textarea>'
                   for p in PAYLOADS)  # fmt: skip
    # When it is checked / Then nothing is reported
    assert markup_problems(body) == []


def test_walk__every_dashboard_get_route__is_covered(app: Flask, world: HostileWorld) -> None:
    # Given the stored payloads
    # When the walk lists the dashboard's GET routes
    endpoints = {endpoint for endpoint, _ in dashboard_get_urls(app, world)}
    # Then every one is there (none skipped for unknown arguments)
    expected = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and not rule.rule.startswith(SKIPPED_PREFIXES)
    }
    assert endpoints == expected
    assert {"identities.why", "identities.edit_trait", "segments.edit", "audit.index"} <= endpoints


@pytest.mark.parametrize("partial", [False, True], ids=["page", "htmx"])
def test_every_get_route__hostile_data__renders_as_text(
    app: Flask, admin_client: FlaskClient, world: HostileWorld, partial: bool
) -> None:
    # Given payloads in every field and an admin whose email is one
    failures: list[str] = []
    fetched = 0
    for endpoint, url in dashboard_get_urls(app, world):
        # When every page and partial is fetched
        response = _get(admin_client, url, partial)
        fetched += 1
        if response.status_code >= 500:
            failures.append(f"{endpoint} {url}: {response.status_code}")
            continue
        if response.status_code in (301, 302, 303):
            continue
        # Then nothing is injected
        body = response.get_data(as_text=True)
        failures += [f"{endpoint} {url}: {p}" for p in markup_problems(body)]
    assert fetched > 40
    assert not failures, "\n".join(failures)


# Which fields each full page must show (escaped): proves the payloads reached the markup.
# Keys are (endpoint, query); identity pages use the hostile identity and the first feature.
SHOWN_ON: dict[tuple[str, str], tuple[str, ...]] = {
    ("dashboard.index", ""): ("project", "environment", "admin_email"),
    # Admins see the environment's "this is me" links (identifier and linked account).
    ("dashboard.environment", ""): (
        "project",
        "environment",
        "server_key",
        "identifier",
        "linked_email",
    ),
    ("users.index", ""): ("identifier", "trait_key", "trait_value", "js_url"),
    ("identities.detail", ""): (
        "identifier",
        "linked_email",
        "trait_key",
        "trait_value",
        "default_value",
        "segment_value",
        "override_value",
        "option_value",
        "segment_name",
        "audit_label",
        "admin_email",
        "variant_key",
    ),
    # People (the admin is an organisation admin): emails, and project names as role labels.
    ("people.index", ""): ("admin_email", "linked_email", "invited_email", "project"),
    ("people.detail", ""): ("linked_email", "project"),
    ("people.reset_password", ""): ("linked_email",),
    ("identities.why", ""): ("segment_name", "trait_key", "trait_value", "js_url"),
    ("identities.edit_trait", ""): ("trait_key", "trait_value"),
    ("identities.edit_override", ""): ("segment_value",),  # in a <textarea>
    ("segments.index", ""): ("segment_name",),
    ("segments.detail", ""): ("segment_name", "segment_description", "trait_key", "trait_value"),
    ("segments.detail", "tab=members"): ("identifier", "js_url"),
    ("segments.detail", "tab=overrides"): ("segment_value",),
    ("segments.edit", ""): ("segment_name", "segment_description", "trait_key", "trait_value"),
    ("features.index", ""): ("default_value",),
    ("features.detail", ""): (
        "description",
        "default_value",
        "option_value",
        "segment_name",
        "segment_value",
        "variant_key",
    ),  # fmt: skip
    ("features.edit", ""): ("description",),
    ("experiments.index", ""): ("experiment_name", "goal_event", "segment_name"),
    ("experiments.detail", ""): (
        "experiment_name", "goal_event", "segment_name", "option_value", "default_value"
    ),  # fmt: skip
    ("features.edit_option", ""): ("option_value",),  # in the editor's <input value>
    # Projects and environments administration
    ("projects.detail", ""): ("project", "organisation", "environment"),
    ("projects.confirm_delete", ""): ("project",),
    ("projects.confirm_delete_environment", ""): ("environment",),
    ("projects.clone_form", ""): ("project", "environment"),
    ("projects.compare_environments", ""): ("project", "environment"),
    ("projects.new", ""): ("organisation",),
    # The audit log shows before/after values as every page does (``:json`` -> value_text).
    ("audit.index", ""): (
        "admin_email",
        "audit_label",
        "audit_key",
        "audit_value:json",
        "trait_key",
        "trait_value:json",
        "segment_name",
        "server_key",
    ),
}


def _field_text(world: HostileWorld, field: str) -> str:
    """Return the escaped text a page shows for ``field`` (``name:json``: as a typed value)."""
    name, _, form = field.partition(":")
    value = world.values[name]
    return shown(humanize.value_text(value) if form == "json" else value)


def _page_url(endpoint: str, world: HostileWorld) -> str:
    """Return the URL of ``endpoint`` for the hostile identity, first feature and trait."""
    arguments = {
        "environment_id": world.env,
        "identity_id": world.identity,
        "feature_id": world.features[0],
        "segment_id": world.segment,
        "option_id": world.option,
        "key": world.trait_keys[0],
        "project_id": world.project,
        "user_id": world.users[0],
        "token": world.tokens[1],
        "experiment_id": world.experiment,
    }
    rule = next(r for r in current_app.url_map.iter_rules() if r.endpoint == endpoint)
    return url_for(endpoint, **{name: arguments[name] for name in rule.arguments})


def test_pages__hostile_fields__shown_escaped(
    app: Flask, admin_client: FlaskClient, world: HostileWorld
) -> None:
    # Given payloads in every field
    failures: list[str] = []
    for (endpoint, query), fields in SHOWN_ON.items():
        with app.test_request_context():
            url = _page_url(endpoint, world)
        # When each page showing some of them is fetched
        response = admin_client.get(f"{url}?{query}" if query else url)
        body = response.get_data(as_text=True)
        # Then each field it shows is there as escaped text, and nothing was injected
        if response.status_code != 200:
            failures.append(f"{endpoint}?{query}: {response.status_code}")
            continue
        missing = [f for f in fields if _field_text(world, f) not in body]
        if missing:
            failures.append(f"{endpoint}?{query}: not shown escaped: {missing}")
        failures += [f"{endpoint}?{query}: {p}" for p in markup_problems(body)]
    assert not failures, "\n".join(failures)


REFLECTED = [
    ("users.index", "q"),
    ("users.index", "sort"),
    ("users.count", "q"),
    ("features.index", "q"),
    ("segments.index", "q"),
    ("segments.members", "q"),
    ("audit.index", "identity"),
    ("audit.index", "actor"),
    ("audit.index", "cursor"),
    ("audit.index", "since"),
    ("features.identity_overrides", "page"),
    ("projects.compare_environments", "left"),
]


# Search-language shapes whose error messages quote what was typed.
REFLECTED_PAYLOADS = (
    *PAYLOADS,
    hostile("q"),
    f'"{SCRIPT}"',
    f'plan = "x" "{IMG}"',
    f"k ~ '{TEXTAREA}' x",
    f"plan in ({QUOTE}, '{SCRIPT}'",
)


@pytest.mark.parametrize(("endpoint", "parameter"), REFLECTED)
def test_query_parameter__payload__reflected_as_text(
    app: Flask, admin_client: FlaskClient, world: HostileWorld, endpoint: str, parameter: str
) -> None:
    # Given a search or filter parameter carrying a payload (search boxes echo it back)
    with app.test_request_context():
        url = _page_url(endpoint, world)
    failures: list[str] = []
    for payload, partial in itertools.product(REFLECTED_PAYLOADS, (False, True)):
        # When the page or its partial is fetched
        response = _get(admin_client, url + "?" + _query({parameter: payload}), partial)
        body = response.get_data(as_text=True)
        # Then it answers without a server error and echoes the payload only as text
        if response.status_code >= 500:
            failures.append(f"{payload!r} partial={partial}: {response.status_code}")
        failures += [f"{payload!r} partial={partial}: {p}" for p in markup_problems(body)]
    assert not failures, "\n".join(failures)


def _query(params: dict[str, str]) -> str:
    return urlencode(params)


def test_search_box__payload__echoed_escaped_in_input(
    app: Flask, admin_client: FlaskClient, world: HostileWorld
) -> None:
    # Given a payload typed in the Users, Features and Segments search boxes
    for endpoint in ("users.index", "features.index", "segments.index"):
        with app.test_request_context():
            url = _page_url(endpoint, world)
        # When the page is rendered
        body = admin_client.get(url + "?" + _query({"q": IMG})).get_data(as_text=True)
        # Then the box shows it again, attribute-escaped
        assert f'value="{shown(IMG)}"' in body, endpoint
        assert markup_problems(body) == []


# ---- Erase (issue 18): after erasing the hostile identity, its page's confirmation, the
# flash and the redacted audit log (with the bulk preview quoting a hostile search) are text.
def test_erase__hostile_identity__pages_after_erasure_render_as_text(
    admin_client: FlaskClient, world: HostileWorld
) -> None:
    env, identity = world.env, world.identity
    page = admin_client.get(f"/environments/{env}/identities/{identity}").get_data(as_text=True)
    assert 'id="erase-identity"' in page and markup_problems(page) == []
    preview = admin_client.post(f"/environments/{env}/users/bulk/preview",
                                data={"q": json.dumps(IMG), "action": "erase"},
                                headers={"HX-Request": "true"})  # fmt: skip
    shown_preview = preview.get_data(as_text=True)
    assert preview.status_code == 200 and str(escape(IMG)) in shown_preview
    assert markup_problems(shown_preview) == []
    response = admin_client.post(f"/environments/{env}/identities/{identity}/erase")
    assert response.status_code == 302
    for url in (response.headers["Location"], f"/environments/{env}/audit"):
        body = admin_client.get(url).get_data(as_text=True)
        assert "erased:" in body, url
        assert markup_problems(body) == [], url
