"""Every dashboard route: who may call it, a valid request body, and the world it runs in.

``ROUTES`` declares, for each (endpoint, method) outside ``/api/`` and ``/ofrep/``, the
weakest role allowed to call it and a request body that succeeds for an allowed user. The
authorisation matrix and the CSRF walk both use it; a route missing from it fails a test,
so a new route must be declared here. ``$name`` placeholders in bodies are filled with the
ids of the world built by ``build_world``; ``ARGUMENTS`` says which world object fills each
URL argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Template
from typing import Any

from flask import Flask
from sqlalchemy import select
from werkzeug.routing import Rule

from tests import worlds
from tests.factories import (
    identities_make_link,
    identities_make_option,
    identities_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from webapp import create_app
from webapp.api_paths import API_PREFIXES
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import IdentityOverride, Organisation, ServerKey, Trait
from webapp.services import people
from webapp.services.experiments import lifecycle
from webapp.services.features import catalog, feature_overrides
from webapp.services.identities import identity_overrides, identity_page, manage
from webapp.services.identities import traits as trait_service

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
PASSWORD = "password123"
NEW_PASSWORD = "a fresh long passphrase"

# Minimum roles. "public": anyone, logged in or not; "login": any logged-in user, even one
# without a role here; "qa_own": QA users only on an identity linked to them (editors and
# admins on any identity).
PUBLIC, LOGIN, VIEWER, QA, QA_OWN, EDITOR, ADMIN = (
    "public", "login", "viewer", "qa", "qa_own", "editor", "admin"
)  # fmt: skip
# "any_admin": an admin of any project of the organisation (the outsider included): adding
# a project, which has no project of its own yet.
ANY_ADMIN = "any_admin"
# People pages: organisation admins only (admin on every project; services/people.py).
ORG_ADMIN = "org_admin"

# The actors of the matrix and the account each logs in as (None: anonymous).
ACTORS: dict[str, str | None] = {
    "anonymous": None,
    "viewer": "viewer@example.com",
    "qa_own": "qa@example.com",  # linked to alice, the identity in every identity URL
    "qa_other": "qa2@example.com",  # linked to bob only
    "editor": "editor@example.com",
    "admin": "admin@example.com",
    "outsider": "outsider@example.com",  # admin of another project
    "org_admin": "root@example.com",  # admin on every project: manages people
}


@dataclass(frozen=True)
class Route:
    """One route's declared minimum role and a request that succeeds for allowed users."""

    minimum: str
    data: Mapping[str, str] = field(default_factory=dict)
    args: Mapping[str, str] = field(default_factory=dict)  # URL argument -> world name
    changes: bool | None = None  # does an allowed request change the database? (default: unsafe)
    quiet_for: tuple[str, ...] = ()  # allowed actors for whom it changes nothing

    def expects_change(self, method: str, actor: str) -> bool:
        changes = method in UNSAFE if self.changes is None else self.changes
        return changes and actor not in self.quiet_for


def R(minimum: str, data: Mapping[str, str] | None = None, **kwargs: Any) -> Route:  # noqa: N802
    return Route(minimum, data or {}, **kwargs)


RULES = {
    "name": "Gold", "description": "", "match": "ALL", "groups-0-type": "ANY",
    "groups-0-conditions-0-property_": "plan", "groups-0-conditions-0-operator": "EQUAL",
    "groups-0-conditions-0-value": "gold",
}  # fmt: skip
CHECKOUT = {"feature_id": "checkout"}
EXPIRY = {"expires": "never"}

ROUTES: dict[tuple[str, str], Route] = {
    ("static", "GET"): R(PUBLIC),
    ("auth.login", "GET"): R(PUBLIC),
    # Logging in records the time of the login.
    ("auth.login_submit", "POST"): R(PUBLIC, {"email": "admin@example.com", "password": PASSWORD}),
    ("auth.logout", "POST"): R(PUBLIC, changes=False),
    ("dashboard.index", "GET"): R(LOGIN),
    ("dashboard.environment", "GET"): R(VIEWER),
    ("dashboard.create_server_key", "POST"): R(ADMIN, {"name": "ci"}),
    ("dashboard.update_settings", "POST"): R(
        ADMIN, {"production": "y", "allow_client_traits": "y"}
    ),
    ("dashboard.revoke_server_key", "POST"): R(ADMIN),
    ("audit.index", "GET"): R(VIEWER),
    # Features page
    ("features.index", "GET"): R(VIEWER),
    ("features.new", "GET"): R(EDITOR),
    ("features.create", "POST"): R(EDITOR, {"name": "fresh", "type": "STANDARD"}),
    ("features.detail", "GET"): R(VIEWER),
    ("features.row", "GET"): R(VIEWER),
    ("features.edit", "GET"): R(EDITOR),
    ("features.update", "POST"): R(EDITOR, {"name": "banner2", "type": "STANDARD"}),
    ("features.delete", "DELETE"): R(EDITOR),
    ("features.toggle", "POST"): R(EDITOR, {"enabled": "false", "version": "$banner_state"}),
    ("features.edit_value", "GET"): R(EDITOR),
    ("features.update_value", "PUT"): R(
        EDITOR, {"value_kind": "string", "value": "hi", "version": "$banner_state"}
    ),
    ("features.identity_overrides", "GET"): R(VIEWER),
    ("features.remove_identity_override", "DELETE"): R(
        EDITOR, {"version": "$alice_banner_version"}
    ),
    ("features.reorder", "POST"): R(EDITOR, {"order": "$order_reversed", "expected": "$order"}),
    ("features.create_option", "POST"): R(
        EDITOR, {"value_kind": "string", "value": "purple", "default_allocation": "10"},
        args=CHECKOUT,
    ),
    ("features.delete_option", "DELETE"): R(EDITOR, args=CHECKOUT),
    ("features.options", "GET"): R(VIEWER, args=CHECKOUT),
    ("features.edit_option", "GET"): R(EDITOR, args=CHECKOUT),
    ("features.update_option", "PUT"): R(
        EDITOR, {"value_kind": "string", "value": "crimson"}, args=CHECKOUT
    ),
    ("features.update_allocations", "PUT"): R(
        EDITOR, {"allocations-0-option_id": "$opt1", "allocations-0-percentage": "40",
                 "version": "$checkout_state"}, args=CHECKOUT,
    ),  # fmt: skip
    # Identity page
    ("identities.detail", "GET"): R(VIEWER),
    ("identities.flags", "GET"): R(VIEWER),
    ("identities.flag", "GET"): R(VIEWER),
    ("identities.why", "GET"): R(VIEWER),
    ("identities.segments", "GET"): R(VIEWER),
    ("identities.history", "GET"): R(VIEWER),
    ("identities.trait_list", "GET"): R(VIEWER),
    ("identities.trait", "GET"): R(VIEWER),
    ("identities.edit_override", "GET"): R(QA_OWN),
    ("identities.toggle_override", "POST"): R(
        QA_OWN, {**EXPIRY, "version": "$alice_banner_version"}
    ),
    ("identities.update_override", "PUT"): R(
        QA_OWN, {**EXPIRY, "value": "x", "value_type": "string", "version": "$alice_banner_version"}
    ),
    ("identities.choose_option", "POST"): R(
        QA_OWN, {**EXPIRY, "option_id": "$opt1", "version": "$alice_checkout_version"},
        args=CHECKOUT,
    ),
    ("identities.remove_override", "DELETE"): R(QA_OWN, {"version": "$alice_banner_version"}),
    ("identities.undo", "POST"): R(QA_OWN),
    ("identities.add_trait", "POST"): R(
        QA_OWN, {"key": "country", "value": "fr", "value_type": "string"}
    ),
    ("identities.edit_trait", "GET"): R(QA_OWN),
    ("identities.update_trait", "PUT"): R(
        QA_OWN, {"value": "free", "value_type": "string", "version": "$plan_token"}
    ),
    ("identities.delete_trait", "DELETE"): R(QA_OWN, {"version": "$plan_token"}),
    # "This is me" on erin (linked to nobody): any QA user may claim it with proof.
    ("identities.link", "POST"): R(QA, {"proof": "erin"}, args={"identity_id": "erin"}),
    ("identities.unlink", "DELETE"): R(QA_OWN),  # qa@example.com's own link to alice
    ("identities.mine", "GET"): R(VIEWER),
    # Editors and admins have no linked identity, so their reset removes nothing.
    ("identities.reset_mine", "POST"): R(QA, quiet_for=("editor", "admin", "org_admin")),
    # Erase (issue 18): editors and admins, like deleting; QA users not even on their own.
    ("identities.erase_identity", "POST"): R(EDITOR),
    # Segments page
    ("segments.index", "GET"): R(VIEWER),
    ("segments.detail", "GET"): R(VIEWER),
    ("segments.members", "GET"): R(VIEWER),
    ("segments.new", "GET"): R(EDITOR),
    ("segments.create", "POST"): R(EDITOR, RULES),
    ("segments.edit", "GET"): R(EDITOR),
    ("segments.update", "PUT"): R(EDITOR, {**RULES, "version": "$segment_version"}),
    ("segments.delete", "DELETE"): R(EDITOR),
    ("segments.builder", "POST"): R(EDITOR, {**RULES, "action": "add_group"}, changes=False),
    ("segments.preview", "POST"): R(EDITOR, RULES, changes=False),
    ("segments.create_override", "POST"): R(
        EDITOR, {"feature_id": "$dark_mode", "enabled": "y", "value_type": "string", "value": "x"}
    ),
    ("segments.update_override", "PUT"): R(
        EDITOR, {"feature_id": "$banner", "enabled": "y", "value_type": "string", "value": "p2",
                 "priority": "1", "version": "$seg_override_version"},
    ),  # fmt: skip
    ("segments.delete_override", "DELETE"): R(EDITOR, {"version": "$seg_override_version"}),
    # Users page
    ("users.index", "GET"): R(VIEWER),
    ("users.count", "GET"): R(VIEWER),
    ("users.create", "POST"): R(EDITOR, {"identifiers": "zed\nyan"}),
    ("users.delete", "DELETE"): R(EDITOR),
    ("users.delete_post", "POST"): R(EDITOR),
    ("users.save_columns", "POST"): R(VIEWER, {"columns": "plan"}),
    ("users.save_default_columns", "POST"): R(ADMIN, {"columns": "plan"}),
    ("users.bulk_preview", "POST"): R(EDITOR, {"action": "remove_overrides"}, changes=False),
    ("users.bulk_apply", "POST"): R(
        EDITOR, {"action": "remove_overrides", "expected": "$bulk_count"}
    ),
    # Projects and environments administration
    ("projects.new", "GET"): R(ANY_ADMIN),
    ("projects.create", "POST"): R(ANY_ADMIN, {"organisation_id": "$organisation", "name": "New"}),
    ("projects.detail", "GET"): R(ADMIN),
    ("projects.rename", "POST"): R(ADMIN, {"name": "Demo 2"}),
    ("projects.confirm_delete", "GET"): R(ADMIN),
    ("projects.delete", "POST"): R(ADMIN, {"confirm": "Demo"}),
    ("projects.create_environment", "POST"): R(ADMIN, {"name": "QA"}),
    ("projects.rename_environment", "POST"): R(ADMIN, {"name": "Dev 2"}),
    ("projects.confirm_delete_environment", "GET"): R(ADMIN),
    ("projects.delete_environment", "POST"): R(ADMIN, {"confirm": "Development"}),
    ("projects.clone_form", "GET"): R(ADMIN),
    ("projects.clone_environment", "POST"): R(ADMIN, {"name": "Copy", "with_identities": "y"}),
    # A GET form: the id-range walk sends these in the query string.
    ("projects.compare_environments", "GET"): R(VIEWER, {"left": "$env", "right": "$env2"}),
    # People (organisation admins), account links (anyone holding one), one's own password
    ("people.index", "GET"): R(ORG_ADMIN),
    ("people.invite", "POST"): R(ORG_ADMIN, {"email": "new@example.com", "role_all": "viewer"}),
    ("people.detail", "GET"): R(ORG_ADMIN),
    ("people.update_roles", "POST"): R(ORG_ADMIN, {"role_all": "editor"}),
    ("people.disable", "POST"): R(ORG_ADMIN),
    ("people.enable", "POST"): R(ORG_ADMIN, args={"user_id": "disabled_user"}),
    ("people.reset_link", "POST"): R(ORG_ADMIN),
    ("people.accept_invitation", "GET"): R(PUBLIC, args={"token": "invite_token"}),
    ("people.accept_invitation_submit", "POST"): R(
        PUBLIC, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, args={"token": "invite_token"}
    ),
    ("people.reset_password", "GET"): R(PUBLIC, args={"token": "reset_token"}),
    ("people.reset_password_submit", "POST"): R(
        PUBLIC, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, args={"token": "reset_token"}
    ),
    ("people.password", "GET"): R(LOGIN),
    ("people.change_password", "POST"): R(LOGIN, {
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD
    }),  # fmt: skip
    # Experiments (the world runs one on checkout in env; a new one starts in env2)
    ("experiments.index", "GET"): R(VIEWER, args=CHECKOUT),
    ("experiments.start", "POST"): R(
        EDITOR, {"name": "Colour", "goal_event": "purchase", "segment_id": "$segment"},
        args={"environment_id": "env2", "feature_id": "checkout"},
    ),  # fmt: skip
    ("experiments.detail", "GET"): R(VIEWER),
    ("experiments.stop", "POST"): R(EDITOR),
}

# Which world object fills each URL argument (per blueprint where the name is ambiguous).
# A new route with an argument missing here fails with a message naming it.
ARGUMENTS: dict[str, str | dict[str, str]] = {
    "environment_id": "env",
    "feature_id": "banner",
    "identity_id": "alice",
    "override_id": {"features": "alice_banner_override", "segments": "seg_override"},
    "option_id": "opt1",
    "key": "alice_trait",
    "event_id": "alice_event",
    "segment_id": "segment",
    "key_id": "server_key",
    "user_id": "qa_user",
    "filename": "static_file",
    "project_id": "project",
    "experiment_id": "experiment",
}


def collection_app() -> Flask:
    """A throw-away app (in-memory SQLite) whose URL map parametrises the tests."""
    return create_app(
        {"TESTING": True, "SECRET_KEY": "collect", "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    )


def dashboard_routes(app: Flask) -> list[tuple[str, str]]:
    """Return every (endpoint, method) outside the APIs, HEAD and OPTIONS left out."""
    found = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if not rule.rule.startswith(API_PREFIXES)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    return sorted(found)


def rule_for(app: Flask, endpoint: str, method: str) -> Rule:
    rules = [r for r in app.url_map.iter_rules(endpoint) if method in (r.methods or ())]
    assert len(rules) == 1, f"{endpoint} {method}: expected one rule, found {rules}"
    return rules[0]


def build_url(
    app: Flask,
    endpoint: str,
    method: str,
    world: Mapping[str, str],
    args: Mapping[str, str] | None = None,
) -> str:
    """Fill the URL arguments with world objects: ``args``, then the route's, then ARGUMENTS."""
    rule = rule_for(app, endpoint, method)
    route = ROUTES.get((endpoint, method))
    chosen = {**(route.args if route else {}), **(args or {})}
    values = {}
    for name in sorted(rule.arguments):
        source = chosen.get(name, ARGUMENTS.get(name))
        if isinstance(source, dict):
            source = source.get(endpoint.split(".")[0])
        if source is None:
            raise LookupError(
                f"{rule.rule} ({endpoint}) has the URL argument {name!r}, which ARGUMENTS in "
                "tests/hardening/routes_table.py does not know: map it to a world object"
            )
        values[name] = world[source]
    return app.url_map.bind("localhost").build(endpoint, values, method=method)


def body(
    endpoint: str, method: str, world: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The route's declared request body (updated with ``extra``), world ids filled in."""
    route = ROUTES.get((endpoint, method))
    data = {**(route.data if route else {}), **(extra or {})}
    return {name: Template(value).substitute(world) for name, value in data.items()}


def world_on() -> dict[str, str]:
    """Build the world on the app's empty database, or restore the one built before.

    Each test still starts from the same rows and ids; the building is done once per test
    process and database (``tests/worlds.py``).
    """
    return worlds.restore_or_build("routes", build_world)


def build_world() -> dict[str, str]:
    """Create two projects with every kind of object and the actors; return their ids."""
    project = make_project("Demo")
    env = make_environment(project, "Development")
    env2 = make_environment(project, "Staging")
    other = make_project("Other")
    foreign_organisation = Organisation(name="Globex")  # nobody administers it
    db.session.add(foreign_organisation)
    other_env = make_environment(other, "Production")
    admin = make_user("admin@example.com", "admin", project)
    for role in ("viewer", "editor"):
        make_user(f"{role}@example.com", role, project)
    qa_user = make_user("qa@example.com", "qa", project)
    qa2 = make_user("qa2@example.com", "qa", project)
    make_user("outsider@example.com", "admin", other)
    root = make_user("root@example.com", "admin", all_projects=True)
    disabled_user = make_user("gone@example.com", "viewer", project)
    disabled_user.active = False

    banner = make_feature(project, "banner", enabled=True, value="hello")
    checkout = make_feature(project, "checkout", type="MULTIVARIATE", value="blue")
    opt1 = identities_make_option(checkout, "red", 30.0)
    identities_make_option(checkout, "green", 30.0)
    dark_mode = make_feature(project, "dark_mode")
    foreign = make_feature(other, "foreign", type="MULTIVARIATE")
    foreign_opt = identities_make_option(foreign, "x", 10.0)

    segment = make_segment(project, "Pro users")
    beta = make_segment(project, "Beta testers")
    foreign_segment = make_segment(other, "Elsewhere")
    seg_override = identities_make_segment_override(segment, banner, env, value="p", priority=1)
    beta_override = identities_make_segment_override(beta, banner, env, value="b", priority=2)
    seg_override_env2 = identities_make_segment_override(segment, banner, env2, value="p")

    alice = make_identity(env, "alice", traits={"plan": "pro", "age": 41})
    bob = make_identity(env, "bob", traits={"plan": "free", "tier": "gold"})
    erin = make_identity(env, "erin")
    dave = make_identity(env2, "dave")
    carol = make_identity(other_env, "carol")
    identities_make_link(qa_user, alice)
    identities_make_link(qa2, bob)

    key = ServerKey(environment=env, name="backend")
    foreign_key = ServerKey(environment=other_env, name="theirs")
    db.session.add_all([key, foreign_key])
    db.session.commit()

    now = utcnow()
    invitation = people.invite(root, "invitee@example.com", {project.id: "viewer"}, now)
    reset = people.issue_reset_link(root, qa2.id, now)
    events = {
        name: identity_overrides.toggle_override(admin, identity, banner, now, None).event_id
        for name, identity in (("alice", alice), ("bob", bob), ("dave", dave))
    }
    order = [row.id for row in feature_overrides.list_segment_overrides(env.id, banner.id).rows]
    experiment = lifecycle.start_experiment(
        env, checkout, "Checkout colour", "purchase", None, admin, now
    )
    everyone = manage.BulkRequest(action="remove_overrides", query="")
    plan = db.session.scalar(
        select(Trait).where(Trait.identity_id == alice.id, Trait.key == "plan")
    )

    def override_of(identity: Any) -> int:
        return int(db.session.scalar(select(IdentityOverride.id).where(
            IdentityOverride.identity_id == identity.id, IdentityOverride.feature_id == banner.id
        )))  # fmt: skip

    ids: dict[str, Any] = {
        "env": env.id, "env2": env2.id, "other_env": other_env.id,
        "project": project.id, "organisation": project.organisation_id,
        "foreign_organisation": foreign_organisation.id,
        "banner": banner.id, "checkout": checkout.id, "dark_mode": dark_mode.id,
        "foreign_feature": foreign.id, "opt1": opt1.id, "foreign_opt": foreign_opt.id,
        "segment": segment.id, "beta": beta.id, "foreign_segment": foreign_segment.id,
        "segment_version": segment.version, "seg_override": seg_override.id,
        "beta_override": beta_override.id, "seg_override_env2": seg_override_env2.id,
        "seg_override_version": seg_override.version,
        "alice": alice.id, "bob": bob.id, "erin": erin.id, "dave": dave.id, "carol": carol.id,
        "alice_trait": "plan", "bob_only_trait": "tier",
        "alice_banner_override": override_of(alice), "bob_banner_override": override_of(bob),
        "dave_banner_override": override_of(dave),
        "alice_event": events["alice"], "bob_event": events["bob"], "dave_event": events["dave"],
        "qa_user": qa_user.id, "qa2_user": qa2.id, "disabled_user": disabled_user.id,
        "invite_token": invitation.token, "reset_token": reset.token,
        "experiment": experiment.id,
        "server_key": key.id, "foreign_key": foreign_key.id,
        "static_file": "vendor/htmx.min.js",
        "banner_state": catalog.get_row(env, banner.id).version,
        "checkout_state": catalog.get_row(env, checkout.id).version,
        "alice_banner_version": identity_page.flag_row(alice, banner, now).version,
        "alice_checkout_version": identity_page.flag_row(alice, checkout, now).version,
        "plan_token": trait_service.trait_version(plan),
        "order": ",".join(map(str, order)), "order_reversed": ",".join(map(str, order[::-1])),
        "bulk_count": manage.preview_bulk(project.id, env.id, everyone),
    }  # fmt: skip
    db.session.commit()
    return {name: str(value) for name, value in ids.items()}
