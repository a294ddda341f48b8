"""The per-worker snapshot cache: a change reaches every worker within the TTL."""

import pytest
from sqlalchemy import select

from tests.api.conftest import build_sdk_environment
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import Feature, ServerKey
from webapp.services.sdk import sdk_service
from webapp.services.sdk.snapshots import SnapshotCache

# Database behaviour (revisions read by several workers): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _welcome(cache, key):
    _, bundle = cache.resolve(key)
    return {f["feature"]["name"]: f for f in sdk_service.environment_flags(bundle, False)}[
        "welcome"
    ]


def _enable_welcome(environment):
    feature = db.session.scalar(select(Feature).where(Feature.name == "welcome"))
    feature.states[0].enabled = True
    environment.bump_revision()
    db.session.commit()


def test_cache__serves_a_change_once_the_ttl_has_passed(app):
    env = build_sdk_environment()
    db.session.commit()
    clock = FakeClock()
    # Two caches stand for two gunicorn workers (or two app servers) on one database.
    worker_a, worker_b = SnapshotCache(ttl=0.5, clock=clock), SnapshotCache(ttl=0.5, clock=clock)
    assert _welcome(worker_a, env.client_key)["enabled"] is False
    assert _welcome(worker_b, env.client_key)["enabled"] is False
    _enable_welcome(env.environment)
    clock.now += 0.2  # within the TTL the cached revision is trusted
    assert _welcome(worker_a, env.client_key)["enabled"] is False
    clock.now += 0.4  # past it, each worker re-reads the revision and recompiles
    assert _welcome(worker_a, env.client_key)["enabled"] is True
    assert _welcome(worker_b, env.client_key)["enabled"] is True


def test_cache__recompiles_only_when_the_revision_moves(app):
    env = build_sdk_environment()
    db.session.commit()
    clock = FakeClock()
    cache = SnapshotCache(ttl=0.5, clock=clock)
    _, first = cache.resolve(env.client_key)
    clock.now += 10
    _, second = cache.resolve(env.client_key)
    assert second is first
    env.environment.bump_revision()
    db.session.commit()
    clock.now += 10
    _, third = cache.resolve(env.client_key)
    assert third is not first and third.revision == first.revision + 1


def test_cache__revoked_key_is_refused_after_the_ttl(app):
    env = build_sdk_environment()
    db.session.commit()
    clock = FakeClock()
    cache = SnapshotCache(ttl=0.5, clock=clock)
    assert cache.resolve(env.server_key) is not None
    key = db.session.scalar(select(ServerKey).where(ServerKey.key == env.server_key))
    key.revoked_at = utcnow()
    db.session.commit()
    clock.now += 0.6
    assert cache.resolve(env.server_key) is None


def test_cache__unknown_and_malformed_keys(app):
    build_sdk_environment()
    db.session.commit()
    cache = SnapshotCache()
    assert cache.resolve(None) is None
    assert cache.resolve("") is None
    assert cache.resolve("k" * 256) is None
    assert cache.resolve("no\nnewlines") is None
    assert cache.resolve("unknown-key") is None
