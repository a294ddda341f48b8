"""A compiled snapshot of each environment, cached per worker and checked by revision.

Every change that affects evaluation bumps ``Environment.revision``. A worker re-reads a
key's environment id and revision at most every ``ttl`` seconds (one indexed read) and
recompiles only when the revision moved, so a change reaches every worker and every app
server sharing the database within ``ttl`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from ...evaluation import CompiledEnvironment, compile_snapshot
from ...extensions import db
from ...models import (
    SERVER_KEY_PREFIX,
    Environment,
    Feature,
    FeatureState,
    IdentityOverride,
    ServerKey,
)
from .. import context

KEY_MAX = 255
DEFAULT_TTL = 0.5


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What an SDK key grants: one environment, as client or server."""

    environment_id: int
    revision: int
    is_server: bool


@dataclass(frozen=True, slots=True)
class FeatureMeta:
    """What SDK responses say about a feature besides its evaluated state."""

    name: str
    state_id: int
    server_key_only: bool
    feature_json: dict[str, Any]
    # The keys of an SDK flag that do not depend on the evaluation (built once per revision).
    flag_base: dict[str, Any]
    # The feature's database id (usage counts are stored by it).
    feature_id: int


@dataclass(frozen=True, slots=True)
class EnvironmentBundle:
    """An environment compiled for the SDK API at one revision."""

    environment_id: int
    revision: int
    revised_at: datetime
    client_key: str
    allow_client_traits: bool
    hide_disabled_flags: bool
    compiled: CompiledEnvironment
    features: tuple[FeatureMeta, ...]
    # The features a client key may see (never the server-key-only ones), filtered once.
    client_features: tuple[FeatureMeta, ...]
    identities_with_overrides: frozenset[int]

    def feature_ids(self, is_server: bool) -> dict[str, int]:
        """Map the names of the features a key may see to their database ids."""
        visible = self.features if is_server else self.client_features
        return {meta.name: meta.feature_id for meta in visible}


def is_plausible_key(key: str | None) -> bool:
    """Reject keys that cannot exist without touching the database."""
    return bool(key) and len(key or "") <= KEY_MAX and (key or "").isprintable()


def lookup_key(key: str) -> KeyInfo | None:
    """Read which environment a key opens, and its current revision (one indexed read).

    :return: None for unknown or revoked keys.
    """
    if key.startswith(SERVER_KEY_PREFIX):
        server = db.session.execute(
            select(Environment.id, Environment.revision, ServerKey.revoked_at)
            .join(ServerKey, ServerKey.environment_id == Environment.id)
            .where(ServerKey.key == key)
        ).first()
        if server is not None:
            if server.revoked_at is not None:
                return None
            return KeyInfo(server.id, server.revision, True)
    client = db.session.execute(
        select(Environment.id, Environment.revision).where(Environment.client_key == key)
    ).first()
    return None if client is None else KeyInfo(client.id, client.revision, False)


def build_bundle(environment_id: int) -> EnvironmentBundle:
    """Compile an environment for the SDK API from the database.

    The revision is read before the data, so a change racing with the build is at worst
    compiled again on the next check, never labelled with a revision that omits it.
    """
    environment = db.session.get(Environment, environment_id, populate_existing=True)
    if environment is None:
        raise LookupError(f"environment {environment_id} vanished")
    revision = environment.revision
    compiled = compile_snapshot(context.build_snapshot(environment))
    with_overrides = db.session.scalars(
        select(IdentityOverride.identity_id).distinct().where(
            IdentityOverride.environment_id == environment_id
        )
    ).all()
    features = _feature_meta(environment_id)
    return EnvironmentBundle(
        environment_id=environment.id,
        revision=revision,
        revised_at=environment.revised_at,
        client_key=environment.client_key,
        allow_client_traits=environment.allow_client_traits,
        hide_disabled_flags=environment.hide_disabled_flags,
        compiled=compiled,
        features=features,
        client_features=tuple(meta for meta in features if not meta.server_key_only),
        identities_with_overrides=frozenset(with_overrides),
    )


def _feature_meta(environment_id: int) -> tuple[FeatureMeta, ...]:
    rows = db.session.execute(
        select(Feature, FeatureState.id)
        .join(FeatureState, FeatureState.feature_id == Feature.id)
        .where(FeatureState.environment_id == environment_id)
        .order_by(Feature.name)
    ).all()
    metas = []
    for feature, state_id in rows:
        feature_json = {
            "id": feature.sdk_id,
            "name": feature.name,
            "type": feature.type,
            "description": feature.description or None,
            "created_date": feature.created_at.isoformat(),
        }
        base = {"id": state_id, "feature": feature_json, "environment": environment_id,
                "identity": None, "feature_segment": None}  # fmt: skip
        metas.append(
            FeatureMeta(
                feature.name, state_id, feature.server_key_only, feature_json, base, feature.id
            )
        )
    return tuple(metas)


class SnapshotCache:
    """Per-worker cache of key lookups and compiled environments."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._keys: dict[str, tuple[float, KeyInfo | None]] = {}
        self._bundles: dict[int, EnvironmentBundle] = {}
        self._documents: dict[int, tuple[int, bytes]] = {}
        self._lock = threading.Lock()

    def resolve(self, key: str | None) -> tuple[KeyInfo, EnvironmentBundle] | None:
        """Return the key's grant and its environment compiled at the current revision.

        :return: None for a missing, malformed, unknown or revoked key.
        """
        if key is None or not is_plausible_key(key):
            return None
        now = self._clock()
        cached = self._keys.get(key)
        if cached is None or cached[0] <= now:
            info = lookup_key(key)
            if len(self._keys) > 10_000:
                self._keys.clear()  # unknown keys must not grow the cache without bound
            self._keys[key] = (now + self.ttl, info)
        else:
            info = cached[1]
        if info is None:
            return None
        return info, self.bundle(info)

    def bundle(self, info: KeyInfo) -> EnvironmentBundle:
        """Return the environment compiled at ``info.revision`` or later."""
        bundle = self._bundles.get(info.environment_id)
        if bundle is not None and bundle.revision >= info.revision:
            return bundle
        with self._lock:
            bundle = self._bundles.get(info.environment_id)
            if bundle is None or bundle.revision < info.revision:
                bundle = build_bundle(info.environment_id)
                self._bundles[info.environment_id] = bundle
        return bundle

    def document(self, bundle: EnvironmentBundle, build: Callable[[], bytes]) -> bytes:
        """Return the environment document at the bundle's revision, building it once.

        Identity overrides are part of the document and bump the revision when they
        change; traits are not in it, so the revision is a sound cache key.
        """
        cached = self._documents.get(bundle.environment_id)
        if cached is not None and cached[0] == bundle.revision:
            return cached[1]
        body = build()
        self._documents[bundle.environment_id] = (bundle.revision, body)
        return body

    def forget_key(self, key: str) -> None:
        """Drop one key's cached grant (a revoked key must stop working at once here)."""
        self._keys.pop(key, None)

    def clear(self) -> None:
        """Forget everything (tests, or after a bulk import in the same process)."""
        self._keys.clear()
        self._bundles.clear()
        self._documents.clear()


# The cache is per app (per worker process): infrastructure, like db.session, so reading
# current_app here is the one exception to "services take explicit arguments".
CACHE_EXTENSION = "flagpost_snapshots"


def app_cache() -> SnapshotCache:
    """Return this worker's snapshot cache (one per app), creating it on first use."""
    cache: SnapshotCache | None = current_app.extensions.get(CACHE_EXTENSION)
    if cache is None:
        cache = SnapshotCache(ttl=current_app.config.get("SDK_CACHE_TTL", DEFAULT_TTL))
        current_app.extensions[CACHE_EXTENSION] = cache
    return cache


def bundle_for_environment(environment_id: int) -> EnvironmentBundle:
    """Return the environment compiled at its current revision, for dashboard pages.

    Reads the revision now (the dashboard must show a change right after making it), then
    reuses the worker's compiled snapshot when it is current: the page shows exactly what
    the SDK API serves.

    :raises LookupError: when the environment does not exist.
    """
    revision = db.session.scalar(
        select(Environment.revision).where(Environment.id == environment_id)
    )
    if revision is None:
        raise LookupError(f"no environment {environment_id}")
    return app_cache().bundle(KeyInfo(environment_id, revision, is_server=True))
