"""Every mutating service records exactly one complete audit event.

Mutating services are discovered, not listed by hand: every public function of a
``webapp.services`` module that takes an ``actor`` parameter. The table below must name
each of them (a new service without a row fails ``test_table__covers_every_mutating_service``)
with a valid call and what its one event must say:

- ``create``: ``before`` is None and ``after`` is set;
- ``update``: both are set and differ;
- ``delete``: ``before`` is set and ``after`` is None;

plus the actor (or None for system actions), the object type, and the project,
environment and identity ids. Decisions recorded in the table:

- Bulk operations record ONE event whose ``count`` says how many objects changed
  (``identities.manage.apply_bulk``, ``identities.identity_overrides.reset_my_overrides``,
  the reorder of segment override priorities, ``identities.identity_overrides.cleanup_expired``,
  the document import).
- ``identities.manage.create_identities`` records one event per identity it creates (each
  identity's history starts with its creation); with one pasted identifier that is one.
- System actions have no actor and are listed explicitly in ``SYSTEM`` (they take no
  ``actor`` parameter): the CLI's expired-override cleanup and the document import.
- ``audit.record`` is the recorder itself, not a change.
- Not audited on purpose (no ``actor``, outside the dashboard): ``accounts.create_user``
  (the ``create-user`` CLI bootstrapping accounts), ``demo.seed_demo`` (seeds an empty
  database) and ``identities.manage.save_trait_columns`` (a user's own column preference).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

import webapp.services
from tests import worlds
from tests.factories import (
    identities_make_link,
    identities_make_option,
    identities_make_override,
    identities_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AuditEvent, FeatureState, IdentityOverride, ServerKey
from webapp.services import environments, people
from webapp.services.documents import exporting, importing
from webapp.services.experiments import lifecycle
from webapp.services.features import catalog, feature_options, feature_overrides
from webapp.services.identities import (
    editing_rights,
    erase,
    identity_overrides,
    manage,
    trait_columns,
    traits,
)
from webapp.services.projects import admin as projects_admin
from webapp.services.projects import clone as projects_clone
from webapp.services.segments import definitions, segment_overrides

# Audit rules: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")

W = SimpleNamespace
NOT_CHANGES = {
    "audit.record": "the recorder itself",
    "projects.admin.record_environment": "a recorder: the environment services below call it",
}
RULES = [{"type": "ALL", "conditions": [], "rules": [
    {"type": "ANY", "rules": [],
     "conditions": [{"property_": "plan", "operator": "EQUAL", "value": "team"}]}]}]  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One mutating call and the single audit event it must record."""

    kind: str  # "create", "update" or "delete": the shape of before/after
    object_type: str
    call: Callable[[W, Any], object]
    prepare: Callable[[W], Any] = field(default=lambda w: None)  # runs before the baseline
    actor: bool = True  # False: a system action (no actor)
    # False: a project-wide object (no environment id); a name: the world attribute holding
    # the environment the event names (one the call creates)
    environment: bool | str = True
    # the world attribute holding the project the event names; False: an organisation-wide
    # object (no project id)
    project: str | bool = "project"
    identity: str | None = None  # the world attribute whose id the event carries
    count: int | None = 1  # the event's count (None: any positive number)


def _now() -> Any:
    return utcnow()


def _prepared_state(w: W) -> tuple[Any, dict[str, Any]]:
    state = catalog.state_for_update(w.env, w.welcome)
    return state, catalog.state_snapshot(state)


def _save_state(w: W, prepared: tuple[Any, dict[str, Any]]) -> None:
    state, before = prepared
    state.enabled = not state.enabled
    catalog.save_state(w.env, w.welcome, state, before, w.actor)


def _changed_value(w: W) -> int:
    change = identity_overrides.set_override_value(
        w.actor, w.alice, w.welcome, "changed", _now(), None
    )
    return change.event_id


def _expire_override(w: W) -> None:
    identities_make_override(w.bob, w.colour, True, "old", expires_at=utcnow() - timedelta(days=1))
    db.session.commit()


def _age(identity: Any, days: int) -> None:
    identity.last_seen_at = utcnow() - timedelta(days=days)
    db.session.commit()


def _bulk(w: W) -> manage.BulkRequest:
    request = manage.BulkRequest(action="override", query="", feature_id=w.welcome.id,
                                         enabled=True, value="bulk")  # fmt: skip
    return request


CASES: dict[str, Case] = {
    "environments.create_server_key": Case(
        "create", "server_key", lambda w, _: environments.create_server_key(w.env, "CI", w.actor)
    ),
    "environments.revoke_server_key": Case(
        "update",
        "server_key",
        lambda w, _: environments.revoke_server_key(w.env, w.server_key.id, w.actor),
    ),  # fmt: skip
    "environments.update_settings": Case(
        "update",
        "environment",
        lambda w, _: environments.update_settings(
            w.env, environments.EnvironmentSettings(True, False, True), w.actor
        ),
    ),  # fmt: skip
    # The first saved default has nothing before it: a "create" in shape.
    "identities.trait_columns.save_default": Case(
        "create",
        "trait_columns",
        lambda w, _: trait_columns.save_default(w.actor, w.project.id, w.env.id, ["plan"]),
    ),
    "features.feature_options.add_option": Case(
        "create",
        "multivariate_option",
        environment=False,
        call=lambda w, _: feature_options.add_option(w.colour, "string", "red", 10.0, w.actor),
    ),  # fmt: skip
    "features.feature_options.update_option": Case(
        "update",
        "multivariate_option",
        environment=False,
        call=lambda w, _: feature_options.update_option(
            w.colour, w.blue.id, "string", "navy", w.actor
        ),
    ),  # fmt: skip
    "features.feature_options.delete_option": Case(
        "delete",
        "multivariate_option",
        environment=False,
        call=lambda w, _: feature_options.delete_option(w.colour, w.blue.id, w.actor),
    ),  # fmt: skip
    "features.feature_options.set_allocations": Case(
        "update",
        "feature_state",
        lambda w, _: feature_options.set_allocations(w.env, w.colour, {w.blue.id: 45.0}, w.actor),
    ),  # fmt: skip
    "features.feature_overrides.remove_identity_override": Case(
        "delete",
        "identity_override",
        identity="alice",
        call=lambda w, _: feature_overrides.remove_identity_override(
            w.env, w.welcome, w.override.id, w.actor
        ),
    ),  # fmt: skip
    # One event for the whole list; its count is the number of overrides reordered.
    "features.feature_overrides.reorder_segment_overrides": Case(
        "update",
        "segment_override",
        count=2,
        call=lambda w, _: feature_overrides.reorder_segment_overrides(
            w.env,
            w.welcome,
            [w.staff_override.id, w.segment_override.id],
            [w.segment_override.id, w.staff_override.id],
            w.actor,
        ),
    ),  # fmt: skip
    "features.catalog.create_feature": Case(
        "create",
        "feature",
        environment=False,
        call=lambda w, _: catalog.create_feature(
            w.project,
            catalog.FeatureFields(name="brand_new", value_kind="string", value_text="x"),
            w.actor,
        ),
    ),  # fmt: skip
    "features.catalog.delete_feature": Case(
        "delete",
        "feature",
        environment=False,
        call=lambda w, _: catalog.delete_feature(w.welcome, w.actor),
    ),  # fmt: skip
    "features.catalog.update_feature": Case(
        "update",
        "feature",
        environment=False,
        call=lambda w, _: catalog.update_feature(
            w.welcome, catalog.FeatureFields(name="welcome_v2", description="new"), w.actor
        ),
    ),  # fmt: skip
    "features.catalog.save_state": Case(
        "update", "feature_state", _save_state, prepare=_prepared_state
    ),
    "features.catalog.set_enabled": Case(
        "update",
        "feature_state",
        lambda w, _: catalog.set_enabled(w.env, w.welcome.id, True, w.actor),
    ),  # fmt: skip
    "features.catalog.set_value": Case(
        "update",
        "feature_state",
        lambda w, _: catalog.set_value(w.env, w.welcome.id, "string", "bye", w.actor),
    ),  # fmt: skip
    # One event for the whole search result; its count is the number of identities.
    "identities.manage.apply_bulk": Case(
        "update",
        "identity",
        count=2,
        prepare=_bulk,
        call=lambda w, request: manage.apply_bulk(w.actor, w.project.id, w.env.id, request, 2),
    ),  # fmt: skip
    # One event per identity created: one pasted identifier, one event.
    "identities.manage.create_identities": Case(
        "create",
        "identity",
        identity="created",
        call=lambda w, _: setattr(
            w,
            "created",
            manage.create_identities(w.actor, w.project.id, w.env.id, "carol@acme.test").created[0],
        ),
    ),  # fmt: skip
    "identities.manage.delete_identity": Case(
        "delete",
        "identity",
        identity="bob",
        call=lambda w, _: manage.delete_identity(w.actor, w.project.id, w.env.id, w.bob.id),
    ),  # fmt: skip
    # Erasure (issue 18): one event naming only the erased:… token; bulk: one with the count.
    "identities.erase.erase_identity": Case(
        "delete",
        "identity",
        identity="bob",
        call=lambda w, _: erase.erase_identity(w.actor, w.project.id, w.env.id, w.bob.id),
    ),  # fmt: skip
    "identities.erase.erase_identities": Case(
        "delete",
        "identity",
        count=2,
        call=lambda w, _: erase.erase_identities(
            w.actor, w.project.id, w.env.id, [w.alice.id, w.bob.id]
        ),
    ),  # fmt: skip
    "identities.identity_overrides.choose_option": Case(
        "create",
        "identity_override",
        identity="alice",
        call=lambda w, _: identity_overrides.choose_option(
            w.actor, w.alice, w.colour, w.blue.id, _now(), None
        ),
    ),  # fmt: skip
    "identities.identity_overrides.remove_override": Case(
        "delete",
        "identity_override",
        identity="alice",
        call=lambda w, _: identity_overrides.remove_override(w.actor, w.alice, w.welcome, _now()),
    ),  # fmt: skip
    # One event for all the actor's linked identities; its count is the overrides removed.
    "identities.identity_overrides.reset_my_overrides": Case(
        "delete",
        "identity_override",
        count=1,
        call=lambda w, _: identity_overrides.reset_my_overrides(w.actor, w.env.id, w.project.id),
    ),  # fmt: skip
    "identities.identity_overrides.set_override_value": Case(
        "update",
        "identity_override",
        identity="alice",
        call=lambda w, _: identity_overrides.set_override_value(
            w.actor, w.alice, w.welcome, "new", _now(), None
        ),
    ),  # fmt: skip
    "identities.identity_overrides.toggle_override": Case(
        "create",
        "identity_override",
        identity="bob",
        call=lambda w, _: identity_overrides.toggle_override(
            w.actor, w.bob, w.welcome, _now(), None
        ),
    ),  # fmt: skip
    "identities.identity_overrides.undo_change": Case(
        "update",
        "identity_override",
        identity="alice",
        prepare=_changed_value,
        call=lambda w, event_id: identity_overrides.undo_change(w.actor, w.alice, event_id, _now()),
    ),  # fmt: skip
    "identities.editing_rights.link_identity": Case(
        "create",
        "identity_link",
        identity="bob",
        call=lambda w, _: editing_rights.link_identity(w.actor, w.bob, proof=None),
    ),  # fmt: skip
    "identities.editing_rights.unlink_identity": Case(
        "delete",
        "identity_link",
        identity="alice",
        call=lambda w, _: editing_rights.unlink_identity(w.actor, w.alice, w.tester.id),
    ),  # fmt: skip
    "segments.segment_overrides.create_override": Case(
        "create",
        "segment_override",
        lambda w, _: segment_overrides.create_override(
            w.segment, w.colour, w.env.id, w.actor, enabled=True, value="seg"
        ),
    ),  # fmt: skip
    "segments.segment_overrides.delete_override": Case(
        "delete",
        "segment_override",
        lambda w, _: segment_overrides.delete_override(w.segment_override, w.actor),
    ),  # fmt: skip
    "segments.segment_overrides.update_override": Case(
        "update",
        "segment_override",
        lambda w, _: segment_overrides.update_override(
            w.segment_override, w.actor, enabled=False, value="y", priority=3
        ),
    ),  # fmt: skip
    "segments.definitions.create_segment": Case(
        "create",
        "segment",
        environment=False,
        call=lambda w, _: definitions.create_segment(w.project.id, w.actor, "Team", "", RULES),
    ),  # fmt: skip
    "segments.definitions.delete_segment": Case(
        "delete",
        "segment",
        environment=False,
        call=lambda w, _: definitions.delete_segment(w.segment, w.actor),
    ),  # fmt: skip
    "segments.definitions.update_segment": Case(
        "update",
        "segment",
        environment=False,
        call=lambda w, _: definitions.update_segment(
            w.segment, w.actor, name="Team", description="", rules=RULES, version=w.segment.version
        ),
    ),  # fmt: skip
    "identities.traits.delete_trait": Case(
        "delete",
        "trait",
        identity="alice",
        call=lambda w, _: traits.delete_trait(w.actor, w.alice, "plan", _now()),
    ),  # fmt: skip
    # Projects and environments administration
    "projects.admin.create_project": Case(
        "create", "project", environment=False, project="created",
        call=lambda w, _: setattr(w, "created", projects_admin.create_project(
            w.project.organisation_id, "Second", w.actor)),
    ),  # fmt: skip
    "projects.admin.rename_project": Case(
        "update", "project", environment=False,
        call=lambda w, _: projects_admin.rename_project(w.project, "Renamed", w.actor),
    ),  # fmt: skip
    "projects.admin.delete_project": Case(
        "delete", "project", environment=False,
        call=lambda w, _: projects_admin.delete_project(w.project, "Demo", w.actor),
    ),  # fmt: skip
    "projects.admin.create_environment": Case(
        "create", "environment", environment="created",
        call=lambda w, _: setattr(w, "created", projects_admin.create_environment(
            w.project, "QA", w.actor)),
    ),  # fmt: skip
    "projects.admin.rename_environment": Case(
        "update", "environment",
        call=lambda w, _: projects_admin.rename_environment(w.env, "Live", w.actor),
    ),  # fmt: skip
    "projects.admin.delete_environment": Case(
        "delete", "environment",
        call=lambda w, _: projects_admin.delete_environment(w.env, "Production", w.actor),
    ),  # fmt: skip
    # One event for the copy; its after names the source and counts what was copied.
    "projects.clone.clone_environment": Case(
        "create", "environment", environment="created",
        call=lambda w, _: setattr(w, "created", projects_clone.clone_environment(
            w.env, projects_clone.CloneRequest("Copy", True), w.actor)),
    ),  # fmt: skip
    "identities.traits.set_trait": Case(
        "update",
        "trait",
        identity="alice",
        call=lambda w, _: traits.set_trait(w.actor, w.alice, "plan", "pro", "infer", _now()),
    ),  # fmt: skip
    # People: organisation-wide events about accounts (no project, no environment).
    "people.invite": Case(
        "create", "account", environment=False, project=False,
        call=lambda w, _: people.invite(w.actor, "new@example.com", {None: "viewer"}, _now()),
    ),
    "people.set_roles": Case(
        "update", "account", environment=False, project=False,
        call=lambda w, _: people.set_roles(w.actor, w.tester.id, {None: "editor"}),
    ),
    "people.set_enabled": Case(
        "update", "account", environment=False, project=False,
        call=lambda w, _: people.set_enabled(w.actor, w.tester.id, False),
    ),
    "people.issue_reset_link": Case(
        "create", "account", environment=False, project=False,
        call=lambda w, _: people.issue_reset_link(w.actor, w.tester.id, _now()),
    ),
    "people.change_password": Case(
        "update", "account", environment=False, project=False,
        call=lambda w, _: people.change_password(w.actor, "password123", "a long new passphrase"),
    ),
    # Experiments: starting creates one, stopping changes it (its results stay).
    "experiments.lifecycle.start_experiment": Case(
        "create",
        "experiment",
        lambda w, _: lifecycle.start_experiment(
            w.env, w.colour, "Colour test", "purchase", w.segment.id, w.actor, _now()
        ),
    ),  # fmt: skip
    "experiments.lifecycle.stop_experiment": Case(
        "update",
        "experiment",
        prepare=lambda w: lifecycle.start_experiment(
            w.env, w.colour, "Colour test", "purchase", None, w.actor, _now()
        ),
        call=lambda w, started: lifecycle.stop_experiment(w.env, started.id, w.actor, _now()),
    ),  # fmt: skip
}

EXTRA_CASES: dict[str, Case] = {
    # An admin linking again a link the QA user made themself vouches for it (production).
    "qa.link_identity[vouch for an own link]": Case(
        "update",
        "identity_link",
        identity="alice",
        call=lambda w, _: editing_rights.link_identity(
            w.actor, w.alice, proof=None, email=w.tester.email
        ),
    ),  # fmt: skip
    # A second shape of the same function: creating a trait has no "before".
    "traits.set_trait[new key]": Case(
        "create",
        "trait",
        identity="alice",
        call=lambda w, _: traits.set_trait(w.actor, w.alice, "age", "31", "infer", _now()),
    ),  # fmt: skip
}

# System actions: no actor parameter, recorded with actor None.
SYSTEM: dict[str, Case] = {
    # The CLI's cleanup: one event for every expired override; its count is how many.
    "identities.identity_overrides.cleanup_expired": Case(
        "delete",
        "identity_override",
        actor=False,
        prepare=lambda w: _expire_override(w),
        call=lambda w, _: identity_overrides.cleanup_expired(utcnow()),
    ),  # fmt: skip
    # The CLI's retention: one event per environment; its count is the identities erased.
    "identities.erase.prune_identities": Case(
        "delete",
        "identity",
        actor=False,
        prepare=lambda w: _age(w.bob, days=40),
        call=lambda w, _: erase.prune_identities(30, utcnow(), dry_run=False),
    ),  # fmt: skip
    # The CLI's import: one event for the document; its count is the items imported.
    "documents.importing.import_environment_document": Case(
        "create",
        "environment",
        actor=False,
        count=None,
        prepare=lambda w: exporting.export_environment(w.env.client_key),
        call=lambda w, doc: importing.import_environment_document(doc),
    ),  # fmt: skip
}


def mutating_services() -> set[str]:
    """Name every public service function that takes an ``actor`` (``module.function``)."""
    found = set()
    for info in pkgutil.walk_packages(webapp.services.__path__, "webapp.services."):
        module = importlib.import_module(info.name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or function.__module__ != module.__name__:
                continue
            if "actor" in inspect.signature(function).parameters:
                found.add(f"{info.name.removeprefix('webapp.services.')}.{name}")
    return found


def test_table__covers_every_mutating_service():
    discovered = mutating_services()
    missing = discovered - set(CASES) - set(NOT_CHANGES)
    stale = set(CASES) - discovered
    assert not missing, f"add these services to the audit table: {sorted(missing)}"
    assert not stale, f"these table rows name no service with an actor: {sorted(stale)}"
    assert len(discovered) > 25  # the discovery itself works


def test_table__system_actions_exist_and_take_no_actor():
    for name in SYSTEM:
        module, function = name.rsplit(".", 1)
        target = getattr(importlib.import_module(f"webapp.services.{module}"), function)
        assert "actor" not in inspect.signature(target).parameters


def build_world() -> dict[str, tuple[str, int]]:
    """Make the world; return each object's model name and id."""
    project = make_project("Demo")
    env = make_environment(project, "Production")
    make_environment(project, "Staging")
    actor = make_user("admin@example.com", "admin", project)
    tester = make_user("qa@example.com", "qa", project)
    welcome = make_feature(project, "welcome", enabled=False, value="hello")
    colour = make_feature(project, "colour", enabled=True, value="green", type="MULTIVARIATE")
    blue = identities_make_option(colour, "blue", 30.0)
    segment = make_segment(project, "Pro users")
    staff = make_segment(project, "Staff")
    segment_override = identities_make_segment_override(segment, welcome, env, True, "pro", 0)
    staff_override = identities_make_segment_override(staff, welcome, env, True, "staff", 1)
    alice = make_identity(env, "alice@acme.test", {"plan": "free"})
    bob = make_identity(env, "bob@acme.test", {"plan": "pro"})
    override = identities_make_override(alice, welcome, True, "alice's")
    identities_make_link(tester, alice)
    identities_make_link(actor, alice)
    server_key = ServerKey(environment=env, name="backend")
    db.session.add(server_key)
    db.session.commit()
    objects = dict(
        project=project, env=env, actor=actor, tester=tester, welcome=welcome, colour=colour,
        blue=blue, segment=segment, segment_override=segment_override,
        staff_override=staff_override, alice=alice, bob=bob, override=override,
        server_key=server_key,
    )  # fmt: skip
    return {name: (type(item).__name__, item.id) for name, item in objects.items()}


def _world() -> W:
    """The world (built once per process, then restored), its objects loaded afresh."""
    models = {mapper.class_.__name__: mapper.class_ for mapper in db.Model.registry.mappers}
    built = worlds.restore_or_build("audit", build_world)
    return W(**{name: db.session.get(models[model], id_) for name, (model, id_) in built.items()})


ALL_CASES = {**CASES, **EXTRA_CASES, **SYSTEM}


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_service__records_exactly_one_complete_event(app, name):
    case = ALL_CASES[name]
    # Given the world and whatever the call needs, with the audit log as it is
    w = _world()
    prepared = case.prepare(w)
    last = db.session.scalar(select(func.max(AuditEvent.id))) or 0
    # (ids read now: a deleted identity cannot be asked for its id afterwards)
    ids = {name: item.id for name, item in vars(w).items() if hasattr(item, "id")}
    # When the service runs
    case.call(w, prepared)
    # Then it recorded exactly one event, with everything an auditor needs
    db.session.expire_all()
    events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.id > last)))
    assert len(events) == 1, [(e.action, e.object_type) for e in events]
    event = events[0]
    assert event.object_type == case.object_type
    if case.actor:
        assert (event.actor_id, event.actor_label) == (w.actor.id, w.actor.email)
    else:
        assert (event.actor_id, event.actor_label) == (None, "system")
    _assert_shape(case.kind, event)
    if case.project is False:
        assert event.project_id is None
    else:
        project = "project" if case.project is True else case.project
        assert event.project_id == (ids.get(project) or getattr(w, project).id)
    environment = "env" if case.environment is True else case.environment
    expected_env = (ids.get(environment) or getattr(w, environment).id) if environment else None
    assert event.environment_id == expected_env
    if case.identity is not None:
        expected = ids.get(case.identity) or getattr(w, case.identity).id
        assert event.identity_id == expected
    if case.count is None:
        assert event.count >= 1
    else:
        assert event.count == case.count


def _assert_shape(kind: str, event: AuditEvent) -> None:
    if kind == "create":
        assert event.before is None and event.after is not None
    elif kind == "update":
        assert event.before is not None and event.after is not None
        assert event.before != event.after
    else:
        assert kind == "delete"
        assert event.before is not None and event.after is None


def test_reset_my_overrides__several__one_event_with_the_count(app):
    w = _world()
    identities_make_override(w.alice, w.colour, True, "blue")
    db.session.commit()
    assert identity_overrides.reset_my_overrides(w.actor, w.env.id, w.project.id) == 2
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "reset")).all()
    assert event.count == 2 and event.before == {"overrides": 2, "identities": 1}
    assert db.session.scalar(select(func.count(IdentityOverride.id))) == 0
    assert db.session.scalar(select(func.count(FeatureState.id))) == 4  # untouched
