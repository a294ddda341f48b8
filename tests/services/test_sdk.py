"""The identify service: last-seen throttling and type-aware change detection."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.api.conftest import build_sdk_environment
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import Identity
from webapp.services import values
from webapp.services.sdk import sdk_service
from webapp.services.sdk.parsing import IdentifyInput, TraitInput
from webapp.services.sdk.snapshots import SnapshotCache

# Database behaviour (typed change detection on stored traits): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")


def _identify(bundle, identifier, now, traits=()):
    return sdk_service.identify(
        bundle, IdentifyInput(identifier, tuple(traits)), is_server=False, now=now
    )


def _last_seen(identifier):
    db.session.expire_all()
    return db.session.scalar(select(Identity.last_seen_at).where(Identity.identifier == identifier))


def test_last_seen__is_written_at_most_once_per_resolution(app):
    env = build_sdk_environment()
    db.session.commit()
    _, bundle = SnapshotCache().resolve(env.client_key)
    start = utcnow()
    _identify(bundle, "walker", start)
    assert _last_seen("walker") == start
    _identify(bundle, "walker", start + timedelta(minutes=5))
    assert _last_seen("walker") == start  # nothing changed, no write
    later = start + sdk_service.LAST_SEEN_RESOLUTION + timedelta(seconds=1)
    _identify(bundle, "walker", later)
    assert _last_seen("walker") == later


def test_last_seen__moves_with_a_trait_change(app):
    env = build_sdk_environment()
    db.session.commit()
    _, bundle = SnapshotCache().resolve(env.client_key)
    start = utcnow()
    _identify(bundle, "runner", start)
    soon = start + timedelta(seconds=30)
    _identify(bundle, "runner", soon, [TraitInput("plan", "pro")])
    assert _last_seen("runner") == soon


def test_values_same__distinguishes_types():
    assert values.same("42", "42")
    assert not values.same("42", 42)
    assert not values.same(1, True)
    assert not values.same(3, 3.0)
    assert not values.same(0.0, -0.0)
    assert not values.same(None, "x")
    assert values.same(2.5, 2.5)


def test_trait_changes__only_real_changes():
    stored = {"plan": "pro", "age": 30}
    upserts, deletions = sdk_service.trait_changes(
        stored,
        [
            TraitInput("plan", "pro"),
            TraitInput("age", "30"),
            TraitInput("gone", None),
            TraitInput("new", True),
        ],
    )
    assert upserts == {"age": "30", "new": True}
    assert deletions == []
    _, deletions = sdk_service.trait_changes(stored, [TraitInput("plan", None)])
    assert deletions == ["plan"]
