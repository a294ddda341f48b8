"""Features: list with override counts, create/edit/delete and the per-environment default
state (enabled flag and value).

Feature changes are project-wide (``bump_project``); state changes belong to one environment
(``bump_environment``). Every change is audited in the same transaction and committed here.
Multivariate options and allocations live in ``feature_options``, segment override
priorities and identity overrides in ``feature_overrides``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import func, select

from ...extensions import db
from ...models import (
    FEATURE_NAME_PATTERN,
    FEATURE_TYPES,
    Environment,
    Feature,
    FeatureState,
    IdentityOverride,
    MultivariateAllocation,
    Project,
    SegmentOverride,
    User,
)
from .. import audit, revisions, values
from ..errors import NotFound, Stale, ValidationError

DESCRIPTION_MAX = 20_000
_NAME = re.compile(FEATURE_NAME_PATTERN)


@dataclass(frozen=True)
class FeatureFields:
    """What the create/edit form sends; ``value_kind``/``value_text`` only count on create."""

    name: str
    description: str = ""
    type: str = "STANDARD"
    server_key_only: bool = False
    value_kind: str = values.NULL
    value_text: str = ""


@dataclass(frozen=True)
class FeatureRow:
    feature: Feature
    state: FeatureState | None
    segment_overrides: int
    identity_overrides: int

    @property
    def version(self) -> int:
        """The state version the page shows (1 without a row: one is created as version 1)."""
        return self.state.version if self.state is not None else 1

    @property
    def value_kind(self) -> str:
        """Name the editor's type for the state's value (floats from imports show as string)."""
        return values.editor_kind(None if self.state is None else self.state.value)


@dataclass(frozen=True)
class DeletionSummary:
    states: int
    segment_overrides: int
    identity_overrides: int


def state_snapshot(state: FeatureState) -> dict[str, Any]:
    """Describe a state for the audit log."""
    return {
        "enabled": state.enabled,
        "value": state.value,
        "allocations": {
            str(a.option_id): a.percentage for a in sorted(state.allocations, key=_by_option)
        },
    }


def _by_option(allocation: MultivariateAllocation) -> int:
    return allocation.option_id


def feature_snapshot(feature: Feature) -> dict[str, Any]:
    """Describe a feature's project-level settings for the audit log."""
    return {
        "name": feature.name,
        "description": feature.description,
        "type": feature.type,
        "server_key_only": feature.server_key_only,
    }


# ----------------------------------------------------------------------------- reads


def list_features(environment: Environment, query: str = "") -> list[FeatureRow]:
    """List the project's features with their state and override counts in ``environment``.

    :param query: case-insensitive substring of the name; blank lists everything.
    """
    stmt = select(Feature).where(Feature.project_id == environment.project_id)
    if query.strip():
        pattern = "%" + _escape_like(query.strip().lower()) + "%"
        stmt = stmt.where(func.lower(Feature.name).like(pattern, escape="\\"))
    features = list(db.session.scalars(stmt.order_by(Feature.name, Feature.id)))
    states = {
        s.feature_id: s
        for s in db.session.scalars(
            select(FeatureState).where(FeatureState.environment_id == environment.id)
        )
    }
    segment_counts = _counts(SegmentOverride, environment.id)
    identity_counts = _counts(IdentityOverride, environment.id)
    return [
        FeatureRow(f, states.get(f.id), segment_counts.get(f.id, 0), identity_counts.get(f.id, 0))
        for f in features
    ]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _counts(model: Any, environment_id: int) -> dict[int, int]:
    rows = db.session.execute(
        select(model.feature_id, func.count(model.id))
        .where(model.environment_id == environment_id)
        .group_by(model.feature_id)
    ).all()
    return {int(feature_id): int(count) for feature_id, count in rows}


def get_feature(project_id: int, feature_id: int) -> Feature:
    """Return a feature of the project.

    :raises NotFound: when the feature does not exist or belongs to another project.
    """
    feature = db.session.get(Feature, feature_id)
    if feature is None or feature.project_id != project_id:
        raise NotFound("No such feature in this project.")
    return feature


def chosen_feature(project_id: int, feature_id: int | None) -> Feature:
    """Return the feature a form chose, which must belong to the project.

    :raises ValidationError: on ``feature_id`` when there is no such feature in the project
    """
    try:
        return get_feature(project_id, feature_id or 0)
    except NotFound:
        raise ValidationError("Choose a feature of this project.", "feature_id") from None


def get_row(environment: Environment, feature_id: int) -> FeatureRow:
    """Return one feature's list row in ``environment``.

    :raises NotFound: when the feature is not in the environment's project.
    """
    feature = get_feature(environment.project_id, feature_id)
    return FeatureRow(
        feature,
        _find_state(environment.id, feature.id),
        _count_for(SegmentOverride, environment.id, feature.id),
        _count_for(IdentityOverride, environment.id, feature.id),
    )


def _count_for(model: Any, environment_id: int, feature_id: int) -> int:
    stmt = select(func.count(model.id)).where(
        model.environment_id == environment_id, model.feature_id == feature_id
    )
    return int(db.session.scalar(stmt) or 0)


def _find_state(environment_id: int, feature_id: int, lock: bool = False) -> FeatureState | None:
    stmt = select(FeatureState).where(
        FeatureState.environment_id == environment_id, FeatureState.feature_id == feature_id
    )
    if lock:
        # FOR UPDATE (a no-op on SQLite): a concurrent change of this state waits here, then
        # reads the committed version, so its version check sees the other change.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    state: FeatureState | None = db.session.scalar(stmt)
    return state


def deletion_summary(feature: Feature) -> DeletionSummary:
    """Count what deleting a feature takes with it (for the confirmation question)."""

    def count(model: Any) -> int:
        stmt = select(func.count(model.id)).where(model.feature_id == feature.id)
        return int(db.session.scalar(stmt) or 0)

    return DeletionSummary(count(FeatureState), count(SegmentOverride), count(IdentityOverride))


# ----------------------------------------------------------------------------- features


def _check_name(project_id: int, name: str, feature_id: int | None = None) -> None:
    if not _NAME.fullmatch(name):
        raise ValidationError(
            "Use 1 to 150 letters, digits, “_”, “.” or “-” (no spaces)", field="name"
        )
    # Case-insensitive like Flagsmith: "Dark_mode" next to "dark_mode" only confuses SDK users.
    stmt = select(Feature.id).where(
        Feature.project_id == project_id, func.lower(Feature.name) == name.lower()
    )
    if feature_id is not None:
        stmt = stmt.where(Feature.id != feature_id)
    if db.session.scalar(stmt) is not None:
        raise ValidationError(f"This project already has a feature named “{name}”", "name")


def _check_input(data: FeatureFields) -> None:
    if data.type not in FEATURE_TYPES:
        raise ValidationError("Choose STANDARD or MULTIVARIATE", "type")
    if len(data.description) > DESCRIPTION_MAX:
        raise ValidationError(
            f"A description has at most {DESCRIPTION_MAX:,} characters", "description"
        )


def create_feature(project: Project, data: FeatureFields, actor: User | None) -> Feature:
    """Create a feature with a disabled default state in every environment of the project.

    :raises ValidationError: bad or duplicate name, unknown type, value not of its type.
    """
    _check_input(data)
    _check_name(project.id, data.name)
    value = values.parse_value(data.value_kind, data.value_text, values.FLAG)
    feature = Feature(
        project_id=project.id,
        name=data.name,
        description=data.description,
        type=data.type,
        server_key_only=data.server_key_only,
    )
    db.session.add(feature)
    db.session.flush()
    for environment in project.environments:
        state = FeatureState(feature_id=feature.id, environment_id=environment.id, enabled=False)
        state.value = value
        db.session.add(state)
    after = feature_snapshot(feature) | {"value": value}
    _audit_feature(actor, "create", feature, None, after)
    revisions.bump_project(project.id)
    db.session.commit()
    return feature


def update_feature(feature: Feature, data: FeatureFields, actor: User | None) -> Feature:
    """Change a feature's name, description, type and server-key-only marker.

    :raises ValidationError: bad or duplicate name, unknown type, or a multivariate feature
        with options turned standard (its options would silently stop applying).
    """
    _check_input(data)
    _check_name(feature.project_id, data.name, feature.id)
    if data.type == "STANDARD" and feature.options:
        raise ValidationError("Delete the multivariate options before making it standard", "type")
    before = feature_snapshot(feature)
    feature.name = data.name
    feature.description = data.description
    feature.type = data.type
    feature.server_key_only = data.server_key_only
    after = feature_snapshot(feature)
    if not values.same(after, before):
        _audit_feature(actor, "update", feature, before, after)
        revisions.bump_project(feature.project_id)
    db.session.commit()
    return feature


def delete_feature(feature: Feature, actor: User | None) -> DeletionSummary:
    """Delete a feature with its states, options, segment and identity overrides."""
    summary = deletion_summary(feature)
    before = feature_snapshot(feature) | {
        "states": summary.states,
        "segment_overrides": summary.segment_overrides,
        "identity_overrides": summary.identity_overrides,
    }
    _audit_feature(actor, "delete", feature, before, None)
    revisions.bump_project(feature.project_id)
    db.session.delete(feature)
    db.session.commit()
    return summary


def _audit_feature(
    actor: User | None, action: str, feature: Feature, before: Any, after: Any
) -> None:
    audit.record(
        actor,
        action,
        "feature",
        object_id=feature.id,
        object_label=feature.name,
        project_id=feature.project_id,
        before=before,
        after=after,
    )


# ----------------------------------------------------------------------------- states


def state_for_update(environment: Environment, feature: Feature) -> FeatureState:
    """Return the feature's default state in ``environment`` (locked), creating it if missing."""
    state = _find_state(environment.id, feature.id, lock=True)
    if state is None:
        # An environment added after the feature has no row yet; create the default one.
        state = FeatureState(feature_id=feature.id, environment_id=environment.id, enabled=False)
        db.session.add(state)
        db.session.flush()
    return state


def save_state(
    environment: Environment,
    feature: Feature,
    state: FeatureState,
    before: dict[str, Any],
    actor: User | None,
    version: int | None = None,
) -> None:
    """Commit ``state``; version, audit and bump the environment if it differs from ``before``.

    A change that changes nothing is accepted whatever ``version`` says (setting, not
    flipping, so a double click stays harmless).

    :param version: the state version the page showed; None skips the check
    :raises Conflict: when the state changed since (the change is rolled back, the refused
        attempt audited as ``update_rejected``)
    """
    after = state_snapshot(state)
    if not values.same(after, before):
        if version is not None and version != state.version:
            _refuse_stale(environment, feature, state, before, after | {"version": version}, actor)
        state.version += 1
        audit.record(
            actor,
            "update",
            "feature_state",
            object_id=state.id,
            object_label=feature.name,
            project_id=environment.project_id,
            environment_id=environment.id,
            before=before,
            after=after,
        )
        revisions.bump_environment(environment.id)
    db.session.commit()


def _refuse_stale(
    environment: Environment,
    feature: Feature,
    state: FeatureState,
    before: dict[str, Any],
    attempt: dict[str, Any],
    actor: User | None,
) -> NoReturn:
    state_id, label = state.id, feature.name
    project_id, environment_id = environment.project_id, environment.id
    # Undo the pending change (allocations may be flushed already), keep only the audit.
    db.session.rollback()
    audit.record(actor, "update_rejected", "feature_state", object_id=state_id,
                 object_label=label, project_id=project_id, environment_id=environment_id,
                 before=before, after=attempt)  # fmt: skip
    db.session.commit()
    raise Stale("flag")


def set_enabled(
    environment: Environment,
    feature_id: int,
    enabled: bool,
    actor: User | None,
    *,
    version: int | None = None,
) -> FeatureRow:
    """Set a feature's default enabled flag in one environment (idempotent).

    :param version: the state version the page showed; None skips the check
    :raises Conflict: when the state changed since the page showed it
    """
    feature = get_feature(environment.project_id, feature_id)
    state = state_for_update(environment, feature)
    before = state_snapshot(state)
    state.enabled = enabled
    save_state(environment, feature, state, before, actor, version)
    return get_row(environment, feature_id)


def set_value(
    environment: Environment,
    feature_id: int,
    kind: str,
    text: str,
    actor: User | None,
    *,
    version: int | None = None,
) -> FeatureRow:
    """Set a feature's default value in one environment from the editor's type and text.

    :param version: the state version the page showed; None skips the check
    :raises ValidationError: when the text is not a value of the chosen type.
    :raises Conflict: when the state changed since the page showed it
    """
    feature = get_feature(environment.project_id, feature_id)
    value = values.parse_value(kind, text, values.FLAG)
    state = state_for_update(environment, feature)
    before = state_snapshot(state)
    state.value = value
    save_state(environment, feature, state, before, actor, version)
    return get_row(environment, feature_id)
