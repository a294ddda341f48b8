"""Build the Flagsmith environment document the official SDKs evaluate locally.

The document has exactly the shape ``flagsmith.mappers.map_environment_document_to_context``
reads. Every id that feeds hashing comes from a stored seed, so the SDK computes the same
buckets as Flagpost: a feature state's ``str(django_id or featurestate_uuid)`` equals its
``hash_key``, a multivariate value's ``id or UUID(mv_fs_value_uuid).int`` follows its
``seed``, and a segment's ``str(id)`` equals its ``hash_id``.
"""

from __future__ import annotations

import copy
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from ...clock import utcnow
from ...extensions import db
from ...models import (
    Environment,
    FeatureState,
    Identity,
    IdentityOverride,
    MultivariateAllocation,
    Project,
    Segment,
    SegmentOverride,
)
from ..errors import NotFound

# Namespace for the uuids derived from numeric seeds; fixed so exports are deterministic.
SEED_NAMESPACE = uuid.UUID("6d1f4c9e-2b4a-5f0e-9c51-7a3f0b1d8e42")

Document = dict[str, Any]


def numeric_seed(seed: str) -> int | None:
    """Return the seed as a positive integer when it is one written canonically, else None.

    ``"007"`` and ``"0"`` stay strings: ``str(int("007"))`` is ``"7"`` and a zero id is
    falsy for the SDK, so either would change the hashing key.
    """
    if seed.isascii() and seed.isdigit() and str(int(seed)) == seed and int(seed) > 0:
        return int(seed)
    return None


def seed_ids(seed: str) -> tuple[int | None, str]:
    """Return ``(django_id, featurestate_uuid)`` whose SDK hashing key is exactly ``seed``."""
    number = numeric_seed(seed)
    if number is not None:
        return number, str(uuid.uuid5(SEED_NAMESPACE, seed))
    return None, seed


def variant_ids(seed: str) -> tuple[int | None, str]:
    """Return ``(id, mv_fs_value_uuid)`` whose SDK priority follows ``seed``."""
    number = numeric_seed(seed)
    if number is not None:
        return number, str(uuid.uuid5(SEED_NAMESPACE, seed))
    try:
        uuid.UUID(seed)
    except ValueError:
        # Not a seed an import or Flagpost produces; derive a stable uuid instead.
        return None, str(uuid.uuid5(SEED_NAMESPACE, seed))
    return None, seed


def segment_id(segment: Segment) -> int | str:
    """Return the segment id the SDK sees (and hashes for PERCENTAGE_SPLIT)."""
    hash_id = segment.hash_id
    if hash_id.lstrip("-").isdigit() and str(int(hash_id)) == hash_id:
        return int(hash_id)
    return hash_id


def export_environment(client_key: str) -> Document:
    """Return the environment document for the environment with this client-side key.

    :param client_key: the environment's client-side key (a document's ``api_key``).
    :return: the JSON-serialisable document.
    :raises NotFound: when no environment has this key.
    """
    environment = db.session.scalar(select(Environment).where(Environment.client_key == client_key))
    if environment is None:
        raise NotFound("No environment has this key")
    return build_environment_document(environment)


def build_environment_document(
    environment: Environment, *, include_identity_overrides: bool = True
) -> Document:
    """Build the Flagsmith environment document for one environment.

    :param environment: the environment to describe.
    :param include_identity_overrides: whether to list identity overrides (the SDK applies
        them in local evaluation; leave them out for smaller documents).
    :return: a JSON-serialisable dict accepted by the official SDK's local evaluation.
    """
    project = db.session.scalars(
        select(Project)
        .where(Project.id == environment.project_id)
        .options(joinedload(Project.organisation), selectinload(Project.segments))
    ).one()
    states = _feature_states(environment)
    overrides = _segment_overrides(environment)
    server_key_only = sorted({s.feature.sdk_id for s in states if s.feature.server_key_only})
    doc: Document = {
        "id": environment.id,
        # What SDKs hash identities with: the client key, or a clone's inherited key (README).
        "api_key": environment.identity_hashing_key,
        "name": environment.name,
        "project": _project(project, overrides, server_key_only),
        "feature_states": [_state(state) for state in states],
        "identity_overrides": (
            _identity_overrides(environment) if include_identity_overrides else []
        ),
        "updated_at": environment.revised_at.isoformat(),
        "allow_client_traits": environment.allow_client_traits,
        "hide_disabled_flags": environment.hide_disabled_flags,
        "hide_sensitive_data": False,
        "use_identity_composite_key_for_hashing": True,
        "use_identity_overrides_in_local_eval": True,
    }
    return doc


def _feature_states(environment: Environment) -> list[FeatureState]:
    query = (
        select(FeatureState)
        .where(FeatureState.environment_id == environment.id)
        .options(
            joinedload(FeatureState.feature),
            selectinload(FeatureState.allocations).joinedload(MultivariateAllocation.option),
        )
    )
    return sorted(db.session.scalars(query).unique(), key=lambda s: s.feature.name)


def _segment_overrides(environment: Environment) -> dict[int, list[SegmentOverride]]:
    query = (
        select(SegmentOverride)
        .where(SegmentOverride.environment_id == environment.id)
        .options(
            joinedload(SegmentOverride.feature),
            selectinload(SegmentOverride.allocations).joinedload(MultivariateAllocation.option),
        )
    )
    found: dict[int, list[SegmentOverride]] = defaultdict(list)
    for override in db.session.scalars(query).unique():
        found[override.segment_id].append(override)
    return found


def _project(
    project: Project, overrides: dict[int, list[SegmentOverride]], server_key_only: list[int]
) -> Document:
    organisation = project.organisation
    return {
        "id": project.id,
        "name": project.name,
        "organisation": {
            "id": organisation.id,
            "name": organisation.name,
            "feature_analytics": False,
            "stop_serving_flags": False,
            "persist_trait_data": True,
        },
        "hide_disabled_flags": False,
        "enable_realtime_updates": False,
        "server_key_only_feature_ids": server_key_only,
        "segments": [
            _segment(segment, overrides.get(segment.id, [])) for segment in project.segments
        ],
    }


def _segment(segment: Segment, overrides: list[SegmentOverride]) -> Document:
    ordered = sorted(overrides, key=lambda o: o.feature.name)
    return {
        "id": segment_id(segment),
        "name": segment.name,
        # A copy: callers (the SDK snapshot cache) must not share the ORM's JSON.
        "rules": copy.deepcopy(segment.rules or []),
        "feature_states": [_state(override) for override in ordered],
    }


def _state(row: FeatureState | SegmentOverride) -> Document:
    django_id, state_uuid = seed_ids(row.hash_key)
    feature = row.feature
    feature_segment = None
    if isinstance(row, SegmentOverride) and row.priority is not None:
        feature_segment = {"priority": row.priority}
    return {
        "feature": {"id": feature.sdk_id, "name": feature.name, "type": feature.type},
        "enabled": row.enabled,
        "feature_state_value": row.value,
        "django_id": django_id,
        "featurestate_uuid": state_uuid,
        "feature_segment": feature_segment,
        "multivariate_feature_state_values": [
            _variant(allocation)
            for allocation in sorted(row.allocations, key=lambda a: (a.option_id, a.id))
        ],
    }


def _variant(allocation: MultivariateAllocation) -> Document:
    value_id, value_uuid = variant_ids(allocation.seed)
    option = allocation.option
    return {
        "id": value_id,
        "mv_fs_value_uuid": value_uuid,
        "percentage_allocation": allocation.percentage,
        "multivariate_feature_option": {
            "id": option.external_id if option.external_id is not None else option.id,
            "value": option.value,
            "key": option.key,
        },
    }


def _identity_overrides(environment: Environment) -> list[Document]:
    query = (
        select(IdentityOverride)
        .where(IdentityOverride.environment_id == environment.id)
        .options(joinedload(IdentityOverride.feature), joinedload(IdentityOverride.identity))
    )
    now = utcnow()
    grouped: dict[int, list[IdentityOverride]] = defaultdict(list)
    identities: dict[int, Identity] = {}
    for override in db.session.scalars(query).unique():
        # Expired overrides no longer apply, so the SDK must not see them.
        if override.is_active(now):
            grouped[override.identity_id].append(override)
            identities[override.identity_id] = override.identity
    ordered = sorted(identities.values(), key=lambda identity: identity.identifier)
    return [_identity(environment, identity, grouped[identity.id]) for identity in ordered]


def _identity(
    environment: Environment, identity: Identity, overrides: list[IdentityOverride]
) -> Document:
    composite_key = f"{environment.identity_hashing_key}_{identity.identifier}"
    return {
        "identifier": identity.identifier,
        "identity_uuid": str(uuid.uuid5(SEED_NAMESPACE, composite_key)),
        "environment_api_key": environment.identity_hashing_key,
        "created_date": identity.created_at.isoformat(),
        "identity_features": [
            _identity_feature(override)
            for override in sorted(overrides, key=lambda o: o.feature.name)
        ],
        "identity_traits": [],
    }


def _identity_feature(override: IdentityOverride) -> Document:
    django_id, state_uuid = seed_ids(override.hash_key)
    feature = override.feature
    return {
        "feature": {"id": feature.sdk_id, "name": feature.name, "type": feature.type},
        "enabled": override.enabled,
        "feature_state_value": override.value,
        "django_id": django_id,
        "featurestate_uuid": state_uuid,
        "feature_segment": None,
        # Identity overrides are never split (SPEC §2).
        "multivariate_feature_state_values": [],
    }
