"""Features: list with override counts, create/edit/delete, per-environment default state,
multivariate options and allocations, segment override priorities and identity overrides.

Feature changes are project-wide (``bump_project``); state, allocation, priority and identity
override changes belong to one environment (``bump_environment``). Every change is audited in
the same transaction and committed here.

Past STYLE's ~400 lines: splitting it (multivariate options/allocations and override
priorities into modules of their own) needs new files outside this area's list; left for
the lead to approve.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from ..extensions import db
from ..models import (
    FEATURE_NAME_PATTERN,
    FEATURE_TYPES,
    Environment,
    Feature,
    FeatureState,
    Identity,
    IdentityOverride,
    MultivariateAllocation,
    MultivariateOption,
    Project,
    Segment,
    SegmentOverride,
    TypedValue,
    User,
)
from . import audit, revisions
from .errors import Conflict, NotFound, ValidationError

VALUE_KINDS = ("string", "integer", "boolean", "none")
VALUE_MAX = 20_000
# JavaScript SDKs read values as doubles; larger integers would silently lose digits there.
INTEGER_LIMIT = 2**53 - 1
_NAME = re.compile(FEATURE_NAME_PATTERN)
_INTEGER = re.compile(r"-?[0-9]+")
IDENTITY_OVERRIDES_PER_PAGE = 25


@dataclass(frozen=True)
class FeatureInput:
    """What the create/edit form sends; ``value_kind``/``value_text`` only count on create."""

    name: str
    description: str = ""
    type: str = "STANDARD"
    server_key_only: bool = False
    value_kind: str = "none"
    value_text: str = ""


@dataclass(frozen=True)
class FeatureRow:
    feature: Feature
    state: FeatureState | None
    segment_overrides: int
    identity_overrides: int

    @property
    def value_kind(self) -> str:
        """Name the editor's type for the state's value (floats from imports show as string)."""
        return kind_of(None if self.state is None else self.state.value)


@dataclass(frozen=True)
class DeletionSummary:
    states: int
    segment_overrides: int
    identity_overrides: int


@dataclass(frozen=True)
class OverrideList:
    """A feature's segment overrides in one environment, winner first, with move orders."""

    rows: list[SegmentOverride]
    token: str

    def moved(self, index: int, step: int) -> str:
        """Return the id order after moving row ``index`` by ``step`` (for up/down buttons)."""
        ids = [row.id for row in self.rows]
        target = index + step
        ids[index], ids[target] = ids[target], ids[index]
        return ",".join(str(i) for i in ids)


@dataclass(frozen=True)
class IdentityOverridePage:
    items: list[tuple[IdentityOverride, Identity]]
    page: int
    per_page: int
    total: int

    @property
    def has_next(self) -> bool:
        return self.page * self.per_page < self.total


# ----------------------------------------------------------------------------- values


def kind_of(value: TypedValue) -> str:
    """Name the editor type of a stored value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return "string"


def parse_value(kind: str, text: str, field: str = "value") -> TypedValue:
    """Turn the editor's ``(type, text)`` into a typed feature value.

    :raises ValidationError: unknown type, integer that is not one, boolean not true/false.
    """
    if kind == "none":
        return None
    if kind == "string":
        if len(text) > VALUE_MAX:
            raise ValidationError(f"A value has at most {VALUE_MAX:,} characters", field)
        return text
    if kind == "integer":
        stripped = text.strip()
        if not _INTEGER.fullmatch(stripped):
            raise ValidationError(f"“{text[:40]}” is not a whole number", field)
        number = int(stripped)
        if abs(number) > INTEGER_LIMIT:
            raise ValidationError(f"Integers must lie within ±{INTEGER_LIMIT}", field)
        return number
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValidationError("A boolean value is “true” or “false”", field)
        return lowered == "true"
    raise ValidationError(f"Unknown value type {kind!r}", "value_kind")


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
        raise NotFound("No such feature in this project")
    return feature


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


def _find_state(environment_id: int, feature_id: int) -> FeatureState | None:
    stmt = select(FeatureState).where(
        FeatureState.environment_id == environment_id, FeatureState.feature_id == feature_id
    )
    state: FeatureState | None = db.session.scalar(stmt)
    return state


def deletion_summary(feature: Feature) -> DeletionSummary:
    """Count what deleting a feature takes with it (for the confirmation question)."""

    def count(model: Any) -> int:
        stmt = select(func.count(model.id)).where(model.feature_id == feature.id)
        return int(db.session.scalar(stmt) or 0)

    return DeletionSummary(count(FeatureState), count(SegmentOverride), count(IdentityOverride))


def list_segment_overrides(environment_id: int, feature_id: int) -> OverrideList:
    """Return a feature's segment overrides in ``environment_id`` in evaluation order.

    Lowest priority first, missing priority last, ties by the project's segment order: the
    first row is the one that wins for an identity in every listed segment.
    """
    rows = list(
        db.session.scalars(
            select(SegmentOverride)
            .join(Segment, Segment.id == SegmentOverride.segment_id)
            .where(
                SegmentOverride.environment_id == environment_id,
                SegmentOverride.feature_id == feature_id,
            )
            .order_by(
                SegmentOverride.priority.is_(None),
                SegmentOverride.priority,
                Segment.position,
                Segment.id,
            )
        )
    )
    return OverrideList(rows, ",".join(str(r.id) for r in rows))


def list_identity_overrides(
    environment_id: int, feature_id: int, page: int = 1, per_page: int = IDENTITY_OVERRIDES_PER_PAGE
) -> IdentityOverridePage:
    """Page through the identities that override a feature, by identifier."""
    page = max(page, 1)
    where = (
        IdentityOverride.environment_id == environment_id,
        IdentityOverride.feature_id == feature_id,
    )
    total = int(db.session.scalar(select(func.count(IdentityOverride.id)).where(*where)) or 0)
    rows = db.session.execute(
        select(IdentityOverride, Identity)
        .join(Identity, Identity.id == IdentityOverride.identity_id)
        .where(*where)
        .order_by(Identity.identifier_prefix, Identity.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return IdentityOverridePage([(o, i) for o, i in rows], page, per_page, total)


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


def _check_input(data: FeatureInput) -> None:
    if data.type not in FEATURE_TYPES:
        raise ValidationError("Choose STANDARD or MULTIVARIATE", "type")
    if len(data.description) > VALUE_MAX:
        raise ValidationError(f"A description has at most {VALUE_MAX:,} characters", "description")


def create_feature(project: Project, data: FeatureInput, actor: User | None) -> Feature:
    """Create a feature with a disabled default state in every environment of the project.

    :raises ValidationError: bad or duplicate name, unknown type, value not of its type.
    """
    _check_input(data)
    _check_name(project.id, data.name)
    value = parse_value(data.value_kind, data.value_text)
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


def update_feature(feature: Feature, data: FeatureInput, actor: User | None) -> Feature:
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
    if after != before:
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


def _state_for_update(environment: Environment, feature: Feature) -> FeatureState:
    state = _find_state(environment.id, feature.id)
    if state is None:
        # An environment added after the feature has no row yet; create the default one.
        state = FeatureState(feature_id=feature.id, environment_id=environment.id, enabled=False)
        db.session.add(state)
        db.session.flush()
    return state


def _save_state(
    environment: Environment,
    feature: Feature,
    state: FeatureState,
    before: dict[str, Any],
    actor: User | None,
) -> None:
    after = state_snapshot(state)
    if after != before:
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


def set_enabled(
    environment: Environment, feature_id: int, enabled: bool, actor: User | None
) -> FeatureRow:
    """Set a feature's default enabled flag in one environment (idempotent)."""
    feature = get_feature(environment.project_id, feature_id)
    state = _state_for_update(environment, feature)
    before = state_snapshot(state)
    state.enabled = enabled
    _save_state(environment, feature, state, before, actor)
    return get_row(environment, feature_id)


def set_value(
    environment: Environment, feature_id: int, kind: str, text: str, actor: User | None
) -> FeatureRow:
    """Set a feature's default value in one environment from the editor's type and text.

    :raises ValidationError: when the text is not a value of the chosen type.
    """
    feature = get_feature(environment.project_id, feature_id)
    value = parse_value(kind, text)
    state = _state_for_update(environment, feature)
    before = state_snapshot(state)
    state.value = value
    _save_state(environment, feature, state, before, actor)
    return get_row(environment, feature_id)


# ----------------------------------------------------------------------------- multivariate


def check_percentages(percentages: Sequence[float], field: str = "allocations") -> None:
    """Refuse NaN, infinities, negatives, values over 100 and sums over 100.

    :raises ValidationError: naming the first rule broken.
    """
    for percentage in percentages:
        if not math.isfinite(percentage):
            raise ValidationError("Percentages must be numbers", field)
        if percentage < 0 or percentage > 100:
            raise ValidationError("Each percentage lies between 0 and 100", field)
    total = math.fsum(percentages)
    # Decimal inputs such as 33.3 + 33.3 + 33.4 may sum to 100.00000000000001 in binary.
    if total > 100 + 1e-9:
        message = f"The allocations add up to {total:g}%; at most 100% is allowed"
        raise ValidationError(message, field)


def state_allocations(state: FeatureState | None, feature: Feature) -> list[tuple[Any, float]]:
    """Pair each option of the feature with its percentage in ``state`` (0 when unset)."""
    current = {a.option_id: a.percentage for a in state.allocations} if state else {}
    return [(option, current.get(option.id, 0.0)) for option in feature.options]


def add_option(
    feature: Feature, kind: str, text: str, default_allocation: float, actor: User | None
) -> MultivariateOption:
    """Add a multivariate option; every environment's state gets its default allocation.

    :raises ValidationError: not a multivariate feature, bad value, or an environment (or
        the defaults) whose allocations would pass 100%.
    """
    if feature.type != "MULTIVARIATE":
        raise ValidationError("Only multivariate features have options", "value")
    value = parse_value(kind, text)
    check_percentages([o.default_allocation for o in feature.options] + [default_allocation])
    states = list(
        db.session.scalars(select(FeatureState).where(FeatureState.feature_id == feature.id))
    )
    for state in states:
        check_percentages([a.percentage for a in state.allocations] + [default_allocation])
    option = MultivariateOption(feature_id=feature.id, default_allocation=default_allocation)
    option.value = value
    db.session.add(option)
    db.session.flush()
    for state in states:
        state.allocations.append(
            MultivariateAllocation(option_id=option.id, percentage=default_allocation)
        )
    _audit_option(actor, "create", feature, option, None, _option_snapshot(option))
    revisions.bump_project(feature.project_id)
    db.session.commit()
    return option


def delete_option(feature: Feature, option_id: int, actor: User | None) -> None:
    """Delete a multivariate option and its allocations in every environment.

    :raises NotFound: when the option is not the feature's.
    """
    option = db.session.get(MultivariateOption, option_id)
    if option is None or option.feature_id != feature.id:
        raise NotFound("No such option for this feature")
    _audit_option(actor, "delete", feature, option, _option_snapshot(option), None)
    revisions.bump_project(feature.project_id)
    db.session.delete(option)
    db.session.commit()
    db.session.expire(feature)


def _option_snapshot(option: MultivariateOption) -> dict[str, Any]:
    return {"value": option.value, "default_allocation": option.default_allocation}


def _audit_option(
    actor: User | None,
    action: str,
    feature: Feature,
    option: MultivariateOption,
    before: Any,
    after: Any,
) -> None:
    audit.record(
        actor,
        action,
        "multivariate_option",
        object_id=option.id,
        object_label=f"{feature.name}: {option.value!r}"[:300],
        project_id=feature.project_id,
        before=before,
        after=after,
    )


def set_allocations(
    environment: Environment,
    feature: Feature,
    percentages: Mapping[int, float],
    actor: User | None,
) -> FeatureState:
    """Set the options' percentages on the feature's default state in one environment.

    :param percentages: option id -> percentage; options left out keep their percentage.
    :raises ValidationError: unknown option, NaN, negative, over 100 or a sum over 100.
    """
    options = {o.id for o in feature.options}
    unknown = set(percentages) - options
    if unknown:
        raise ValidationError("An option no longer exists; reload the page", "allocations")
    state = _state_for_update(environment, feature)
    current = {a.option_id: a for a in state.allocations}
    merged = {oid: a.percentage for oid, a in current.items()} | dict(percentages)
    check_percentages(list(merged.values()))
    before = state_snapshot(state)
    for option_id, percentage in percentages.items():
        if option_id in current:
            current[option_id].percentage = percentage
        else:
            state.allocations.append(
                MultivariateAllocation(option_id=option_id, percentage=percentage)
            )
    db.session.flush()
    _save_state(environment, feature, state, before, actor)
    return state


# ----------------------------------------------------------------------------- overrides


def reorder_segment_overrides(
    environment: Environment,
    feature: Feature,
    order: Sequence[int],
    expected: Sequence[int],
    actor: User | None,
) -> OverrideList:
    """Rewrite the priorities of a feature's segment overrides to 0..n-1 in ``order``.

    :param expected: the order the user saw; it must still be the current one.
    :raises Conflict: when the list changed since the user opened it.
    :raises ValidationError: when ``order`` is not a permutation of the current overrides.
    """
    current = list_segment_overrides(environment.id, feature.id)
    ids = [row.id for row in current.rows]
    if list(expected) != ids:
        raise Conflict(
            "The segment overrides changed since you opened this page; "
            "nothing was moved. Here is the current order."
        )
    if sorted(order) != sorted(ids) or len(order) != len(ids):
        raise ValidationError("The new order must list each segment override once", "order")
    by_id = {row.id: row for row in current.rows}
    # Keyed by segment name, so the audit diff highlights exactly the priorities that moved.
    before = {row.segment.name: row.priority for row in current.rows}
    for priority, override_id in enumerate(order):
        by_id[override_id].priority = priority
    after = {by_id[i].segment.name: by_id[i].priority for i in order}
    if before != after:
        audit.record(
            actor,
            "reorder",
            "segment_override",
            object_id=feature.id,
            object_label=feature.name,
            project_id=environment.project_id,
            environment_id=environment.id,
            before=before,
            after=after,
            count=len(order),
        )
        revisions.bump_environment(environment.id)
    db.session.commit()
    return list_segment_overrides(environment.id, feature.id)


def remove_identity_override(
    environment: Environment, feature: Feature, override_id: int, actor: User | None
) -> None:
    """Delete one identity's override of a feature in this environment.

    :raises NotFound: when the override is not this feature's in this environment.
    """
    override = db.session.get(IdentityOverride, override_id)
    if (
        override is None
        or override.feature_id != feature.id
        or override.environment_id != environment.id
    ):
        raise NotFound("This identity override no longer exists")
    identity = override.identity
    audit.record(
        actor,
        "delete",
        "identity_override",
        object_id=override.id,
        object_label=f"{identity.identifier[:200]} · {feature.name}",
        project_id=environment.project_id,
        environment_id=environment.id,
        identity_id=identity.id,
        before={"enabled": override.enabled, "value": override.value},
        after=None,
    )
    revisions.bump_environment(environment.id)
    db.session.delete(override)
    db.session.commit()
