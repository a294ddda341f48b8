"""The Identity page's flags table: per feature, default and effective state and its source.

A row says where the effective state comes from (default, segment, split or identity
override), where the identity falls on a multivariate split, and its override with expiry.
The explanation it is built from comes from ``identities`` (the SDK's own evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ...evaluation import Explanation, FeatureExplanation, FlagSource
from ...extensions import db
from ...models import Feature, FeatureState, Identity, IdentityOverride, TypedValue


@dataclass(frozen=True, slots=True)
class SplitBar:
    """The identity's bucket (0-100) on a multivariate split, with every option's range."""

    bucket: float
    ranges: tuple[tuple[float, float, TypedValue, bool], ...]


@dataclass(frozen=True, slots=True)
class OverrideView:
    """An identity override as the page shows it (expired ones too, marked)."""

    id: int
    enabled: bool
    value: TypedValue
    value_type: str
    option_id: int | None
    expires_at: datetime | None
    expired: bool
    expiry_label: str
    version: int  # what the page's forms send back for the optimistic check


@dataclass(frozen=True, slots=True)
class FlagRow:
    """One row of the flags table."""

    feature_id: int
    name: str
    is_multivariate: bool
    default_enabled: bool
    default_value: TypedValue
    enabled: bool
    value: TypedValue
    source: str  # "default", "segment", "override" or "split"
    source_label: str
    reason: str
    split: SplitBar | None
    override: OverrideView | None
    options: tuple[tuple[int, TypedValue], ...]

    @property
    def version(self) -> int:
        """The override version the page shows (0: no override yet)."""
        return self.override.version if self.override is not None else 0

    @property
    def differs_from_default(self) -> bool:
        """Whether the identity's state or value is not the environment default's.

        Values compare by type and value: ``1``, ``1.0`` and ``True`` are equal in Python
        but differ for an SDK.
        """
        if self.enabled != self.default_enabled:
            return True
        value, default = self.value, self.default_value
        return type(value) is not type(default) or value != default


def _override_views(identity_id: int, now: datetime) -> dict[int, OverrideView]:
    rows = db.session.scalars(
        select(IdentityOverride).where(IdentityOverride.identity_id == identity_id)
    )
    return {
        row.feature_id: OverrideView(
            row.id,
            row.enabled,
            row.value,
            row.value_type,
            row.option_id,
            row.expires_at,
            not row.is_active(now),
            expiry_label(row.expires_at, now),
            row.version,
        )
        for row in rows
    }


def expiry_label(expires_at: datetime | None, now: datetime) -> str:
    """Describe an override's expiry: "", "expired" or "expires in 3 h"."""
    if expires_at is None:
        return ""
    seconds = (expires_at - now).total_seconds()
    if seconds <= 0:
        return "expired"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"expires in {int(seconds // size)} {unit}"
    return "expires in under a minute"


def _features(environment_id: int, project_id: int) -> list[tuple[Feature, FeatureState]]:
    rows = db.session.execute(
        select(Feature, FeatureState)
        .join(FeatureState, FeatureState.feature_id == Feature.id)
        .where(Feature.project_id == project_id, FeatureState.environment_id == environment_id)
        .order_by(Feature.name)
    ).all()
    return [(feature, state) for feature, state in rows]


def _source(item: FeatureExplanation) -> tuple[str, str]:
    result = item.result
    segment = next(
        (c.segment_name for c in item.candidates if c.segment_key == result.segment_key), None
    )
    if item.source is FlagSource.IDENTITY_OVERRIDE:
        return "override", "identity override"
    if item.source is FlagSource.SPLIT:
        where = f" of segment “{segment}”" if segment else ""
        return "split", f"split{where} ({result.reason_detail})"
    if segment is not None:
        return "segment", f"segment “{segment}”"
    return "default", "default"


def _split_bar(item: FeatureExplanation) -> SplitBar | None:
    if item.split is None or item.source is FlagSource.IDENTITY_OVERRIDE:
        return None
    bucket = item.split.bucket
    ranges = tuple(
        (r.start, r.limit, r.value, r.start <= bucket < r.limit) for r in item.split.ranges
    )
    return SplitBar(bucket, ranges)


def _row(
    feature: Feature,
    state: FeatureState,
    item: FeatureExplanation,
    override: OverrideView | None,
) -> FlagRow:
    source, label = _source(item)
    return FlagRow(
        feature_id=feature.id,
        name=feature.name,
        is_multivariate=feature.type == "MULTIVARIATE",
        default_enabled=state.enabled,
        default_value=state.value,
        enabled=item.result.enabled,
        value=item.result.value,
        source=source,
        source_label=label,
        reason=item.result.reason,
        split=_split_bar(item),
        override=override,
        options=tuple((option.id, option.value) for option in feature.options),
    )


def build_rows(
    identity: Identity, explanation: Explanation, now: datetime, only: set[str] | None
) -> list[FlagRow]:
    """Build the flags table from an explanation of the identity's flags.

    :param identity: the identity
    :param explanation: the explanation of its evaluation
    :param now: the time override expiry is judged against
    :param only: restrict to these feature names (None: every feature)
    :return: the rows, sorted by feature name
    """
    by_name = {item.name: item for item in explanation.features}
    overrides = _override_views(identity.id, now)
    rows = []
    for feature, state in _features(identity.environment_id, identity.environment.project_id):
        if (only is not None and feature.name not in only) or feature.name not in by_name:
            continue
        rows.append(_row(feature, state, by_name[feature.name], overrides.get(feature.id)))
    return rows
