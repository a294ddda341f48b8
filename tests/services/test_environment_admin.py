"""Environments administration on both databases: clone (a differential test: every generated
identity evaluates exactly alike in source and clone), compare, deletion counts, and the
lifecycle of server keys (last use, revocation at once).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.factories import (
    identities_make_option,
    identities_make_override,
    identities_make_segment_override,
    make_environment,
    make_feature,
    make_identities,
    make_project,
    make_segment,
    make_user,
)
from webapp.clock import utcnow
from webapp.evaluation import IdentityInput, evaluate
from webapp.extensions import db
from webapp.models import (
    AuditEvent,
    Environment,
    FeatureState,
    Identity,
    IdentityOverride,
    MultivariateAllocation,
    Project,
    SegmentOverride,
    ServerKey,
    Trait,
)
from webapp.services import environments
from webapp.services.documents.exporting import build_environment_document
from webapp.services.errors import ValidationError
from webapp.services.projects import admin, clone, compare
from webapp.services.sdk import sdk_service
from webapp.services.sdk.key_usage import KeyUsage
from webapp.services.sdk.snapshots import app_cache, bundle_for_environment

# Clone, counts and SQL copies are database behaviour: both databases.
pytestmark = pytest.mark.databases("sqlite", "postgres")

IDENTITIES = 240


def _condition(prop: str, operator: str, value: str) -> dict[str, Any]:
    return {"property_": prop, "operator": operator, "value": value}


def _rules(*conditions: dict[str, Any], kind: str = "ALL") -> list[dict[str, Any]]:
    return [{"type": "ALL", "rules": [{"type": kind, "rules": [], "conditions": list(conditions)}],
             "conditions": []}]  # fmt: skip


def build_source(rng: random.Random) -> tuple[Environment, Any]:
    """A project whose flags depend on traits, splits and multivariate buckets."""
    project = make_project("Shop")
    env = make_environment(project, "Production", production=True)
    make_environment(project, "Development")
    actor = make_user("admin@example.com", "admin", project)
    banner = make_feature(project, "banner", enabled=True, value="hello")
    limit = make_feature(project, "limit", enabled=True, value=10)
    beta = make_feature(project, "beta", enabled=False, value=False)
    checkout = make_feature(project, "checkout", type="MULTIVARIATE", enabled=True, value="blue")
    for value, weight in (("red", 30.0), ("green", 25.0), (7, 20.0)):
        identities_make_option(checkout, value, weight)
    pro = make_segment(project, "Pro", _rules(_condition("plan", "EQUAL", "pro")))
    half = make_segment(project, "Half", _rules(_condition("", "PERCENTAGE_SPLIT", "50")))
    adults = make_segment(
        project, "Adults", _rules(_condition("age", "GREATER_THAN_INCLUSIVE", "18"))
    )
    europe = make_segment(project, "Europe", _rules(_condition("country", "IN", "fr,de")))
    identities_make_segment_override(pro, banner, env, value="pro banner", priority=1)
    identities_make_segment_override(half, banner, env, value="half banner", priority=2)
    identities_make_segment_override(adults, limit, env, value=99, priority=None)
    identities_make_segment_override(half, beta, env, value=True, priority=3)
    split = identities_make_segment_override(europe, checkout, env, value="eu", priority=1)
    options = sorted(checkout.options, key=lambda o: o.id)
    split.allocations = [
        MultivariateAllocation(option_id=options[0].id, percentage=50.0),
        MultivariateAllocation(option_id=options[2].id, percentage=30.0),
    ]
    people = []
    for n in range(IDENTITIES):
        traits: dict[str, Any] = {}
        if rng.random() < 0.7:
            traits["plan"] = rng.choice(["pro", "free", "team"])
        if rng.random() < 0.7:
            traits["age"] = rng.choice([rng.randint(1, 90), str(rng.randint(1, 90)), 17.5])
        if rng.random() < 0.6:
            traits["country"] = rng.choice(["fr", "de", "us", "fr,de"])
        people.append((f"user-{n}-{rng.randrange(10**6)}", traits))
    # (two flushes for all the identities and traits, not two per identity: 3/4 of a test)
    for n, identity in enumerate(make_identities(env, people)):
        if n % 17 == 0:
            identities_make_override(identity, banner, value=f"mine {n}")
        if n % 23 == 0:
            identities_make_override(identity, checkout, enabled=False, value=n)
    db.session.commit()
    return env, actor


def evaluate_all(environment: Environment) -> dict[str, dict[str, tuple[Any, ...]]]:
    """Evaluate every stored identity of the environment as the SDK API does."""
    bundle = bundle_for_environment(environment.id)
    now = utcnow()
    found: dict[str, dict[str, tuple[Any, ...]]] = {}
    identities = db.session.scalars(
        select(Identity).where(Identity.environment_id == environment.id)
    ).all()
    for identity in identities:
        stored = sdk_service.read_stored_identity(environment.id, identity.identifier)
        result = evaluate(
            bundle.compiled,
            IdentityInput(identity.identifier, stored.traits),
            overrides=sdk_service.identity_overrides(identity.id, now),
        )
        found[identity.identifier] = {
            name: (flag.enabled, type(flag.value), flag.value, flag.variant, flag.reason)
            for name, flag in result.flags.items()
        }
    return found


def test_clone__with_identities__every_identity_evaluates_exactly_as_in_the_source(app):
    # Given an environment whose flags depend on traits, splits and variants
    source, actor = build_source(random.Random(18))
    expected = evaluate_all(source)
    # When it is cloned with its identities
    copy = clone.clone_environment(source, clone.CloneRequest("Copy", True), actor)
    # Then the copy has new keys, yet every identity gets exactly the same flags (type,
    # value, variant and reason), identity overrides included
    assert copy.client_key != source.client_key
    assert copy.production is False
    assert evaluate_all(copy) == expected
    # and the generated identities really spread over the buckets, so the test can fail
    variants = {flags["checkout"][2] for flags in expected.values()}
    assert {"blue", "red", "green", 7, "eu"} <= variants
    halves = {flags["banner"][2] for flags in expected.values()}
    assert {"hello", "pro banner", "half banner"} <= halves


def test_clone__without_the_inherited_hashing_key__would_move_buckets(app):
    # Given a clone (the control for the test above: hashing with its own key)
    source, actor = build_source(random.Random(7))
    expected = evaluate_all(source)
    copy = clone.clone_environment(source, clone.CloneRequest("Copy", True), actor)
    # When its inherited hashing key is dropped
    copy.hashing_key = None
    copy.bump_revision()
    db.session.commit()
    # Then identities move between buckets: the hashing key is what keeps them
    moved = evaluate_all(copy)
    assert moved != expected
    assert sum(moved[i]["checkout"] != expected[i]["checkout"] for i in expected) > 20


def test_clone__served_document__hashes_with_the_source_key(app):
    # Given a clone
    source, actor = build_source(random.Random(3))
    copy = clone.clone_environment(source, clone.CloneRequest("Copy", False), actor)
    # When the SDKs' environment documents are built
    left = build_environment_document(source)
    right = build_environment_document(copy)
    # Then local evaluation hashes the same inputs: api_key and every seed are the source's
    assert right["api_key"] == left["api_key"] == source.client_key
    assert [s["featurestate_uuid"] for s in right["feature_states"]] == [
        s["featurestate_uuid"] for s in left["feature_states"]
    ]
    assert right["project"]["segments"] == left["project"]["segments"]


def test_clone__without_identities__copies_flags_and_overrides_only(app):
    # Given a source environment
    source, actor = build_source(random.Random(5))
    # When it is cloned without identities
    copy = clone.clone_environment(source, clone.CloneRequest("  Staging  ", False), actor)

    def count(model: Any, env: Environment) -> int:
        return db.session.scalar(
            select(func.count()).select_from(model).where(model.environment_id == env.id)
        )

    # Then states and segment overrides (priorities, weights, seeds) are copied, no identity
    assert copy.name == "Staging"
    assert count(FeatureState, copy) == count(FeatureState, source) == 4
    assert count(SegmentOverride, copy) == count(SegmentOverride, source) == 5
    assert count(Identity, copy) == count(Trait, copy) == count(IdentityOverride, copy) == 0

    def overrides(env: Environment) -> list[tuple[Any, ...]]:
        rows = db.session.scalars(
            select(SegmentOverride).where(SegmentOverride.environment_id == env.id)
        ).all()
        return sorted(
            (o.segment_id, o.feature_id, o.enabled, o.value_type, o.value_text, o.priority,
             o.hash_key, sorted((a.option_id, a.percentage, a.seed) for a in o.allocations))
            for o in rows
        )  # fmt: skip

    assert overrides(copy) == overrides(source)
    # and one audit event says what was copied
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "clone")).one()
    assert event.environment_id == copy.id
    assert event.after["source"] == "Production"
    assert event.after["identities"] == 0
    assert event.after["segment_overrides"] == 5


def test_clone__with_identities__copies_traits_exactly(app):
    source, actor = build_source(random.Random(11))
    copy = clone.clone_environment(source, clone.CloneRequest("Copy", True), actor)

    def traits(env: Environment) -> list[tuple[Any, ...]]:
        rows = db.session.execute(
            select(Identity.identifier, Trait.key, Trait.value_type, Trait.value_text)
            .join(Trait, Trait.identity_id == Identity.id)
            .where(Identity.environment_id == env.id)
        ).all()
        return sorted(tuple(r) for r in rows)

    assert len(traits(source)) > 100
    assert traits(copy) == traits(source)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "production", "Development"])
def test_clone__bad_or_taken_name__is_refused_and_creates_nothing(app, name):
    source, actor = build_source(random.Random(1))
    before = db.session.scalar(select(func.count(Environment.id)))
    with pytest.raises(ValidationError):
        clone.clone_environment(source, clone.CloneRequest(name, True), actor)
    db.session.rollback()
    assert db.session.scalar(select(func.count(Environment.id))) == before


# ----------------------------------------------------------------------------- counts


def test_delete_environment__confirmation_counts__name_what_is_lost_and_all_of_it_goes(app):
    # Given an environment with flags, overrides, identities, traits and a key
    source, actor = build_source(random.Random(2))
    db.session.add(ServerKey(environment=source, name="backend"))
    db.session.commit()
    # When its losses are counted
    losses = admin.environment_losses(source)
    # Then they are exact
    assert losses.flag_states == 4
    assert losses.segment_overrides == 5
    assert losses.identities == IDENTITIES
    assert losses.traits == db.session.scalar(select(func.count(Trait.id)))
    expected_overrides = len(range(0, IDENTITIES, 17)) + len(range(0, IDENTITIES, 23))
    assert losses.identity_overrides == expected_overrides
    assert losses.server_keys == 1
    # When a wrong name is typed nothing goes; the exact name deletes everything it counted
    with pytest.raises(ValidationError):
        admin.delete_environment(source, "production", actor)
    env_id = source.id
    assert admin.delete_environment(source, "Production", actor) == losses
    for model in (FeatureState, SegmentOverride, Identity, Trait, IdentityOverride, ServerKey):
        left = db.session.scalar(select(func.count()).select_from(model).where(
            model.environment_id == env_id))  # fmt: skip
        assert left == 0, model.__name__
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "delete")).one()
    assert event.before["identities"] == IDENTITIES


def test_delete_project__counts_every_environment__and_removes_the_project(app):
    source, actor = build_source(random.Random(4))
    project = source.project
    losses = admin.project_losses(project)
    assert (losses.environments, losses.features, losses.segments) == (2, 4, 4)
    assert losses.flag_states == 8  # four features in two environments
    assert losses.identities == IDENTITIES
    admin.delete_project(project, "Shop", actor)
    assert db.session.scalar(select(func.count(Project.id))) == 0
    assert db.session.scalar(select(func.count(Identity.id))) == 0


def test_create_environment__has_every_feature_off_with_default_weights(app):
    source, actor = build_source(random.Random(6))
    env = admin.create_environment(source.project, "QA", actor)
    states = db.session.scalars(
        select(FeatureState).where(FeatureState.environment_id == env.id)
    ).all()
    assert len(states) == 4
    assert all(s.enabled is False and s.value is None for s in states)
    weights = sorted(a.percentage for s in states for a in s.allocations)
    assert weights == [20.0, 25.0, 30.0]
    with pytest.raises(ValidationError):
        admin.create_environment(source.project, "qa", actor)  # names differ in case only


def test_create_project__creator_becomes_its_admin__elsewhere_is_forbidden(app):
    from webapp.services.errors import Forbidden

    project = make_project("Shop")
    stranger_project = make_project("Theirs", organisation="Other Org")
    actor = make_user("admin@example.com", "admin", project)
    viewer = make_user("viewer@example.com", "viewer", project)
    db.session.commit()
    created = admin.create_project(project.organisation_id, "Second", actor)
    from webapp.services import accounts

    assert accounts.role_for(actor, created.id) == "admin"
    with pytest.raises(Forbidden):
        admin.create_project(stranger_project.organisation_id, "Sneaky", actor)
    with pytest.raises(Forbidden):
        admin.create_project(project.organisation_id, "Viewer's", viewer)
    with pytest.raises(ValidationError):
        admin.create_project(project.organisation_id, "second", actor)


# ---------------------------------------------------------------------------- compare


def test_compare__differences_first__naming_what_differs(app):
    # Given a clone whose flags then change in three ways
    source, actor = build_source(random.Random(8))
    copy = clone.clone_environment(source, clone.CloneRequest("Staging", False), actor)
    states = {s.feature.name: s for s in db.session.scalars(
        select(FeatureState).where(FeatureState.environment_id == copy.id))}  # fmt: skip
    states["limit"].value = "10"  # the same text, another type: a difference
    states["beta"].enabled = True
    states["checkout"].allocations[0].percentage = 31.0
    db.session.commit()
    # When the environments are compared
    result = compare.compare_environments(source, copy)
    # Then the differing features come first, each naming what differs
    rows = {r.feature.name: r.differences for r in result.features}
    assert [r.feature.name for r in result.features][:3] == ["beta", "checkout", "limit"]
    assert rows == {"beta": ("enabled",), "checkout": ("weights",), "limit": ("value",),
                    "banner": ()}  # fmt: skip
    assert result.differing == 3


def test_compare__segment_override_priority__is_a_difference(app):
    source, actor = build_source(random.Random(9))
    copy = clone.clone_environment(source, clone.CloneRequest("Staging", False), actor)
    override = db.session.scalars(
        select(SegmentOverride).where(
            SegmentOverride.environment_id == copy.id, SegmentOverride.priority == 2
        )
    ).one()
    override.priority = 0
    db.session.commit()
    result = compare.compare_environments(source, copy)
    banner = next(r for r in result.features if r.feature.name == "banner")
    assert banner.differences == ("segment overrides",)
    assert [(s.segment, s.differs) for s in banner.segments] == [("Half", True), ("Pro", False)]


def test_compare__environments_of_two_projects__is_refused(app):
    source, _ = build_source(random.Random(10))
    elsewhere = make_environment(make_project("Other"), "Production")
    with pytest.raises(ValidationError):
        compare.compare_environments(source, elsewhere)


# ------------------------------------------------------------------------------- keys


def test_server_key__lifecycle__used_then_revoked_gets_403_at_once(app, client):
    # Given a server key created by an admin
    source, actor = build_source(random.Random(12))
    key = environments.create_server_key(source, "backend", actor)
    assert key.last_used_at is None
    headers = {"X-Environment-Key": key.key}
    # When an SDK uses it
    assert client.get("/api/v1/flags/", headers=headers).status_code == 200
    # Then its last use is recorded
    db.session.expire_all()
    used = db.session.get(ServerKey, key.id)
    assert used is not None and used.last_used_at is not None
    # When it is revoked, the very next request is refused (no cache delay in this worker)
    environments.revoke_server_key(source, key.id, actor)
    response = client.get("/api/v1/flags/", headers=headers)
    assert response.status_code == 403
    assert response.get_json() == {"detail": "Invalid or missing Environment Key"}


def test_key_usage__writes_at_most_once_per_interval(app):
    source, actor = build_source(random.Random(13))
    key = environments.create_server_key(source, "backend", actor)
    now = [100.0]
    usage = KeyUsage(interval=60.0, clock=lambda: now[0])
    assert usage.touch(key.key) is True
    assert usage.touch(key.key) is False  # within the minute: no write
    now[0] += 61
    assert usage.touch(key.key) is True
    app_cache().clear()


def test_clone__local_evaluation_by_the_official_engine__equals_the_source(app):
    """What an official SDK computes from the clone's document is the source's answer."""
    from flag_engine.engine import get_evaluation_result
    from flagsmith.mappers import map_environment_document_to_context

    # Given a clone with identities, and the document its server-key SDKs download
    source, actor = build_source(random.Random(21))
    expected = evaluate_all(source)
    copy = clone.clone_environment(source, clone.CloneRequest("Copy", True), actor)
    context = map_environment_document_to_context(build_environment_document(copy))
    # When the official engine evaluates every identity locally
    for identifier, flags in expected.items():
        traits = sdk_service.read_stored_identity(copy.id, identifier).traits
        result = get_evaluation_result(
            {**context, "identity": {"identifier": identifier, "traits": traits}}
        )
        # Then each flag has the source's state, type, value and variant
        got = {
            name: (flag["enabled"], type(flag["value"]), flag["value"], flag["variant"])
            for name, flag in result["flags"].items()
        }
        assert got == {name: flag[:4] for name, flag in flags.items()}, identifier


def test_create_environment__name_taken_in_a_race__refused_not_a_server_error(app, monkeypatch):
    # Given the name check passed, and then another request took the name (a race)
    source, actor = build_source(random.Random(14))
    monkeypatch.setattr(admin, "check_environment_name", lambda project_id, name, *_: name)
    monkeypatch.setattr(clone, "check_environment_name", lambda project_id, name, *_: name)
    # When the environment is created or cloned under it
    with pytest.raises(ValidationError, match="was just taken"):
        admin.create_environment(source.project, "Development", actor)
    with pytest.raises(ValidationError, match="was just taken"):
        clone.clone_environment(source, clone.CloneRequest("Development"), actor)
    # Then the unique constraint refused it with a message, and nothing was added
    assert db.session.scalar(select(func.count(Environment.id))) == 2


def test_key_usage__write_fails__the_request_does_not(app, monkeypatch):
    from webapp.services.sdk import key_usage

    def broken(*_: Any) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(key_usage, "write_last_used", broken)
    assert KeyUsage(clock=lambda: 1.0).touch("ser.anything") is False
