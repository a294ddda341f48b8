"""The Identity page: every flag as the SDK serves it, where it comes from, and why.

Evaluation goes through the SDK's own compiled snapshot (``bundle_for_environment``),
the SDK's trait read (``sdk_service.read_stored_identity``) and its override read
(``sdk_service.identity_overrides``), so the page shows exactly what the SDK API serves. The
flags table's rows are built from that evaluation in ``flag_rows``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ...evaluation import (
    Counterfactual,
    Explanation,
    FeatureExplanation,
    FlagResult,
    IdentityInput,
    IdentityOverrideInput,
    SegmentTrace,
    counterfactual,
    evaluate,
    explain,
)
from ...extensions import db
from ...models import AuditEvent, Feature, Identity, Segment, Trait, TypedValue, User
from ..errors import NotFound
from ..locking import IDENTITY_GONE
from ..sdk import sdk_service
from ..sdk.snapshots import EnvironmentBundle, bundle_for_environment
from ..usage import reports
from . import editing_rights
from .flag_rows import FlagRow, build_rows

HISTORY_LIMIT = 50
# (enabled, value) per feature name: what "the effective value changed" compares.
EffectiveFlags = dict[str, tuple[bool, TypedValue]]


@dataclass(frozen=True, slots=True)
class SegmentLink:
    """A segment the identity is in; ``segment_id`` is None for unknown keys."""

    key: str
    name: str
    segment_id: int | None


@dataclass(frozen=True, slots=True)
class IdentityEvaluation:
    """One evaluation of an identity through the SDK's snapshot."""

    bundle: EnvironmentBundle
    identity_input: IdentityInput
    overrides: list[IdentityOverrideInput]
    flags: dict[str, FlagResult]
    segment_keys: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class WhyPanel:
    """Why one flag has its value: the trace of its segments and what would change it."""

    row: FlagRow
    explanation: FeatureExplanation
    segments: tuple[SegmentTrace, ...]
    counterfactuals: tuple[Counterfactual, ...]
    traits: dict[str, TypedValue]


@dataclass(frozen=True, slots=True)
class IdentityPage:
    """Everything the Identity page shows."""

    identity: Identity
    rows: list[FlagRow]
    segments: list[SegmentLink]
    traits: list[Trait]
    history: list[AuditEvent]
    linked_users: list[User]
    can_edit: bool
    is_linked: bool
    link_offer: editing_rights.LinkOffer  # what "This is me" offers the user, and under which rule
    # What the SDK API last served this identity, per feature and variant (usage "seen" rows).
    seen: list[reports.SeenFlag]


def get_identity(environment_id: int, identity_id: int) -> Identity:
    """Return an identity of an environment.

    :raises NotFound: when the identity does not exist or lives in another environment
    """
    identity = db.session.get(Identity, identity_id)
    if identity is None or identity.environment_id != environment_id:
        raise NotFound(IDENTITY_GONE)
    return identity


def evaluate_identity(identity: Identity, now: datetime) -> IdentityEvaluation:
    """Evaluate every flag for an identity exactly as the SDK API would.

    :param identity: the stored identity
    :param now: the time expiry is judged against
    :return: the flags, matched segments and the inputs used
    """
    bundle = bundle_for_environment(identity.environment_id)
    stored = sdk_service.read_stored_identity(identity.environment_id, identity.identifier)
    identity_input = IdentityInput(identity.identifier, stored.traits)
    overrides = sdk_service.identity_overrides(identity.id, now)
    result = evaluate(bundle.compiled, identity_input, overrides=overrides)
    segments = tuple((s.key, s.name) for s in result.segments)
    return IdentityEvaluation(bundle, identity_input, overrides, dict(result.flags), segments)


def effective_flags(identity: Identity, now: datetime) -> EffectiveFlags:
    """Return each feature's effective (enabled, value) for the identity."""
    flags = evaluate_identity(identity, now).flags
    return {name: (flag.enabled, flag.value) for name, flag in flags.items()}


def changed_names(before: EffectiveFlags, after: EffectiveFlags) -> list[str]:
    """Name the features whose effective enabled or value differs, sorted."""
    names = set(before) | set(after)
    return sorted(name for name in names if _differs(before.get(name), after.get(name)))


def _differs(a: tuple[bool, TypedValue] | None, b: tuple[bool, TypedValue] | None) -> bool:
    if a is None or b is None:
        return a is not b
    # Compare types too: a value of "1" and 1 are different flags to an SDK.
    return a[0] != b[0] or type(a[1]) is not type(b[1]) or a[1] != b[1]


def _explain(identity: Identity, now: datetime) -> tuple[IdentityEvaluation, Explanation]:
    evaluation = evaluate_identity(identity, now)
    explanation = explain(
        evaluation.bundle.compiled, evaluation.identity_input, evaluation.overrides
    )
    return evaluation, explanation


def flag_rows(identity: Identity, now: datetime, only: set[str] | None = None) -> list[FlagRow]:
    """Return the flags table: every feature by name, default and effective state, source.

    :param identity: the identity
    :param now: the time override expiry is judged against
    :param only: restrict to these feature names (rows to refresh after a change)
    :return: the rows, sorted by feature name
    """
    _, explanation = _explain(identity, now)
    return build_rows(identity, explanation, now, only)


def flag_row(identity: Identity, feature: Feature, now: datetime) -> FlagRow:
    """Return one row of the flags table.

    :raises NotFound: when the feature has no state in the identity's environment
    """
    rows = flag_rows(identity, now, only={feature.name})
    if not rows:
        raise NotFound("This feature has no state in this environment.")
    return rows[0]


def segment_links(identity: Identity, now: datetime) -> list[SegmentLink]:
    """Return the segments the identity is in, in project order, with their ids."""
    return _segment_links(identity, evaluate_identity(identity, now))


def _segment_links(identity: Identity, evaluation: IdentityEvaluation) -> list[SegmentLink]:
    segments = db.session.scalars(
        select(Segment).where(Segment.project_id == identity.environment.project_id)
    )
    ids = {segment.hash_id: segment.id for segment in segments}
    return [SegmentLink(key, name, ids.get(key)) for key, name in evaluation.segment_keys]


def history(identity_id: int, limit: int = HISTORY_LIMIT) -> list[AuditEvent]:
    """Return this identity's audit events, newest first."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.identity_id == identity_id)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


def why_panel(identity: Identity, feature: Feature, now: datetime) -> WhyPanel:
    """Explain one flag: segment traces of its overrides and the counterfactuals.

    :param identity: the identity
    :param feature: the feature to explain
    :param now: the time override expiry is judged against
    :return: the trace and, per segment overriding the feature, the trait change
        that would flip the identity's membership
    :raises NotFound: when the feature has no state in the environment
    """
    evaluation, explanation = _explain(identity, now)
    try:
        item = explanation.feature(feature.name)
    except KeyError as exc:
        raise NotFound("This feature has no state in this environment.") from exc
    keys = [candidate.segment_key for candidate in item.candidates]
    traces = tuple(explanation.segment(key) for key in keys)
    compiled = evaluation.bundle.compiled
    counterfactuals = tuple(
        counterfactual(compiled, key, evaluation.identity_input) for key in keys
    )
    rows = build_rows(identity, explanation, now, {feature.name})
    traits: dict[str, TypedValue] = dict(evaluation.identity_input.traits)
    return WhyPanel(rows[0], item, traces, counterfactuals, traits)


def load_page(identity: Identity, user: User, now: datetime) -> IdentityPage:
    """Gather the Identity page for a user: flags, segments, traits, history, links.

    :param identity: the identity shown
    :param user: the dashboard user looking (decides the edit controls)
    :param now: the time override expiry is judged against
    """
    evaluation, explanation = _explain(identity, now)
    return IdentityPage(
        identity=identity,
        rows=build_rows(identity, explanation, now, None),
        segments=_segment_links(identity, evaluation),
        traits=list_traits(identity),
        history=history(identity.id),
        linked_users=editing_rights.linked_users(identity.id),
        can_edit=editing_rights.can_edit_identity(user, identity),
        is_linked=editing_rights.is_linked(user, identity.id),
        link_offer=editing_rights.link_offer(user, identity),
        seen=reports.seen_by_identity(identity.id),
    )


def list_traits(identity: Identity) -> list[Trait]:
    """Return the identity's traits by key."""
    return list(
        db.session.scalars(
            select(Trait).where(Trait.identity_id == identity.id).order_by(Trait.key)
        )
    )
