"""Identity overrides from the dashboard: set, toggle, edit, choose an option, remove, undo.

Every change is audited with the override's exact state before and after (that state is
what undo restores) and bumps the environment revision in the same transaction, so the
SDK API serves it at once. Parsing the form's value and expiry lives in ``override_input``
(re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    AuditEvent,
    Environment,
    Feature,
    Identity,
    IdentityOverride,
    MultivariateOption,
    TypedValue,
    User,
    decode_value,
    encode_value,
)
from .. import audit, humanize, revisions
from ..errors import Conflict, NotFound, Stale, ValidationError
from ..locking import lock_identity
from . import editing_rights
from .identity_page import changed_names, effective_flags
from .override_input import expiry_from_choice as expiry_from_choice

OBJECT_TYPE = "identity_override"

# The exact override state kept in audit events (None: no override).
State = dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class OverrideChange:
    """The result of one override change: its audit event and the flags it changed."""

    event_id: int
    feature: Feature
    changed: list[str]
    message: str


def snapshot(row: IdentityOverride | None) -> State:
    """Return an override's exact state for the audit log (None when there is none)."""
    if row is None:
        return None
    return {
        "enabled": row.enabled,
        "value": row.value,
        "value_type": row.value_type,
        "value_text": row.value_text,
        "option_id": row.option_id,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }


def _current(identity_id: int, feature_id: int) -> IdentityOverride | None:
    # FOR UPDATE (a no-op on SQLite): a concurrent change of the same override waits here
    # and then reads the committed row, so its version check sees the other change.
    return db.session.scalar(
        select(IdentityOverride)
        .where(
            IdentityOverride.identity_id == identity_id,
            IdentityOverride.feature_id == feature_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def version_of(row: IdentityOverride | None) -> int:
    """Return the version a page shows for an override (0: no override yet)."""
    return 0 if row is None else row.version


def _record(
    actor: User, action: str, identity: Identity, feature: Feature, before: State, after: State
) -> AuditEvent:
    """Audit one event about this identity's override of ``feature``."""
    return audit.record(
        actor,
        action,
        OBJECT_TYPE,
        object_id=feature.id,
        object_label=f"{feature.name} for {identity.identifier}",
        project_id=feature.project_id,
        environment_id=identity.environment_id,
        identity_id=identity.id,
        before=before,
        after=after,
    )


def _reject(
    actor: User,
    identity: Identity,
    feature: Feature,
    before: State,
    after: State,
    version: int | None,
) -> NoReturn:
    """Audit a change refused because the override changed meanwhile, and raise."""
    rejected = "delete_rejected" if after is None else "update_rejected"
    attempt = None if after is None else {**after, "version": version}
    _record(actor, rejected, identity, feature, before, attempt)
    db.session.commit()
    raise Stale("override")


def _flush_or_reject(
    actor: User, identity: Identity, feature: Feature, after: State, version: int | None
) -> None:
    try:
        db.session.flush()
    except IntegrityError:
        # Two first overrides at once: the unique (identity, feature) key lets one in.
        db.session.rollback()
        _reject(actor, identity, feature, snapshot(_current(identity.id, feature.id)), after,
                version)  # fmt: skip


def _write(
    identity: Identity, feature: Feature, row: IdentityOverride | None, state: State, actor: User
) -> None:
    if state is None:
        if row is not None:
            db.session.delete(row)
        return
    if row is None:
        row = IdentityOverride(
            identity_id=identity.id,
            feature_id=feature.id,
            environment_id=identity.environment_id,
            created_by_id=actor.id,
        )
        db.session.add(row)
    else:
        row.version = (row.version or 1) + 1
    row.enabled = bool(state["enabled"])
    row.value_type, row.value_text = state["value_type"], state["value_text"]
    option_id = state.get("option_id")
    exists = option_id is not None and db.session.get(MultivariateOption, option_id) is not None
    row.option_id = option_id if exists else None
    expires = state.get("expires_at")
    row.expires_at = datetime.fromisoformat(expires) if expires else None


def _state(
    enabled: bool, value: TypedValue, expires_at: datetime | None, option_id: int | None = None
) -> dict[str, Any]:
    kind, text = encode_value(value)
    return {
        "enabled": enabled,
        "value": value,
        "value_type": kind,
        "value_text": text,
        "option_id": option_id,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }


def _commit_change(
    actor: User,
    identity: Identity,
    feature: Feature,
    action: str,
    after: State,
    now: datetime,
    version: int | None = None,
) -> OverrideChange:
    """Write ``after``, audit and bump in one transaction, then report what changed.

    A ``version`` other than the stored one (0: none stored) refuses the change.
    """
    editing_rights.ensure_can_edit(actor, identity)
    lock_identity(identity)  # before any override row: the order an erasure locks in
    before_flags = effective_flags(identity, now)
    row = _current(identity.id, feature.id)
    before = snapshot(row)
    if version is not None and version != version_of(row):
        _reject(actor, identity, feature, before, after, version)
    _write(identity, feature, row, after, actor)
    revisions.bump_environment(identity.environment_id)
    event = _record(actor, action, identity, feature, before, after)
    _flush_or_reject(actor, identity, feature, after, version)
    event_id = event.id
    db.session.commit()
    # Evaluated after the commit, so the snapshot cache never holds uncommitted data.
    changed = changed_names(before_flags, effective_flags(identity, now))
    return OverrideChange(event_id, feature, changed, _message(action, feature, changed))


def _message(action: str, feature: Feature, changed: list[str]) -> str:
    verb = {"remove": "Override removed", "undo": "Undone"}.get(action, "Override saved")
    effect = f"; changed {', '.join(changed)}" if changed else "; no flag changed"
    return f"{verb}: {feature.name}{effect}."


def _active_row(identity: Identity, feature: Feature, now: datetime) -> IdentityOverride | None:
    row = _current(identity.id, feature.id)
    return row if row is not None and row.is_active(now) else None


def _inherited(identity: Identity, feature: Feature, now: datetime) -> tuple[bool, TypedValue]:
    flags = effective_flags(identity, now)
    if feature.name not in flags:
        raise NotFound("This feature has no state in this environment.")
    return flags[feature.name]


def toggle_override(
    actor: User,
    identity: Identity,
    feature: Feature,
    now: datetime,
    expires_at: datetime | None,
    *,
    version: int | None = None,
) -> OverrideChange:
    """Flip the flag for this identity: an override's enabled, or a new override.

    A new override starts from the effective state with ``enabled`` flipped.

    :param version: the override version the page showed (0: none); None skips the check
    :raises Conflict: when the override changed since (the refused attempt is audited)
    :raises Forbidden: when the actor may not edit the identity
    """
    editing_rights.ensure_can_edit(actor, identity)
    lock_identity(identity)  # before any override row: the order an erasure locks in
    row = _active_row(identity, feature, now)
    if row is not None:
        after = _state(not row.enabled, row.value, expires_at, row.option_id)
    else:
        enabled, value = _inherited(identity, feature, now)
        after = _state(not enabled, value, expires_at)
    return _commit_change(actor, identity, feature, "toggle", after, now, version)


def set_override_value(
    actor: User,
    identity: Identity,
    feature: Feature,
    value: TypedValue,
    now: datetime,
    expires_at: datetime | None,
    *,
    version: int | None = None,
) -> OverrideChange:
    """Set the override's value, keeping its enabled state (or the inherited one).

    :param version: the override version the page showed (0: none); None skips the check
    :raises Conflict: when the override changed since (the refused attempt is audited)
    :raises Forbidden: when the actor may not edit the identity
    """
    editing_rights.ensure_can_edit(actor, identity)
    lock_identity(identity)  # before any override row: the order an erasure locks in
    row = _active_row(identity, feature, now)
    enabled = row.enabled if row is not None else _inherited(identity, feature, now)[0]
    after = _state(enabled, value, expires_at)
    return _commit_change(actor, identity, feature, "update", after, now, version)


def choose_option(
    actor: User,
    identity: Identity,
    feature: Feature,
    option_id: int,
    now: datetime,
    expires_at: datetime | None,
    *,
    version: int | None = None,
) -> OverrideChange:
    """Fix a multivariate option for this identity (its value is copied).

    :param version: the override version the page showed (0: none); None skips the check
    :raises Conflict: when the override changed since (the refused attempt is audited)
    :raises Forbidden: when the actor may not edit the identity
    :raises ValidationError: when the option is not one of the feature's
    """
    editing_rights.ensure_can_edit(actor, identity)
    lock_identity(identity)  # before any override row: the order an erasure locks in
    option = db.session.get(MultivariateOption, option_id)
    if option is None or option.feature_id != feature.id:
        raise ValidationError("Choose one of this feature's options.", field="option_id")
    row = _active_row(identity, feature, now)
    enabled = row.enabled if row is not None else _inherited(identity, feature, now)[0]
    after = _state(enabled, option.value, expires_at, option.id)
    return _commit_change(actor, identity, feature, "choose_option", after, now, version)


def remove_override(
    actor: User, identity: Identity, feature: Feature, now: datetime, *, version: int | None = None
) -> OverrideChange:
    """Remove the override: the identity inherits the segment or default state again.

    :param version: the override version the page showed (0: none); None skips the check
    :raises Conflict: when the override changed since (the refused attempt is audited)
    :raises Forbidden: when the actor may not edit the identity
    :raises NotFound: when there is no override
    """
    editing_rights.ensure_can_edit(actor, identity)
    lock_identity(identity)  # before any override row: the order an erasure locks in
    if _current(identity.id, feature.id) is None:
        raise NotFound("This identity has no override for this feature.")
    return _commit_change(actor, identity, feature, "remove", None, now, version)


def _comparable(state: State) -> Any:
    if state is None:
        return None
    keys = ("enabled", "value_type", "value_text", "option_id", "expires_at")
    return {key: state.get(key) for key in keys}


def undo_change(actor: User, identity: Identity, event_id: int, now: datetime) -> OverrideChange:
    """Restore the override state from before an audited change (itself audited).

    :raises NotFound: when the event is not an override change of this identity
    :raises Conflict: when the override changed again since that event
    :raises Forbidden: when the actor may not edit the identity
    """
    editing_rights.ensure_can_edit(actor, identity)
    lock_identity(identity)  # before any override row: the order an erasure locks in
    event = db.session.get(AuditEvent, event_id)
    if event is None or event.identity_id != identity.id or event.object_type != OBJECT_TYPE:
        raise NotFound("Nothing to undo.")
    feature = db.session.get(Feature, int(event.object_id or 0))
    if feature is None or event.count != 1:
        raise NotFound("Nothing to undo.")
    current = snapshot(_current(identity.id, feature.id))
    if _comparable(current) != _comparable(event.after):
        raise Conflict("The override changed again since; undo refused.")
    return _commit_change(actor, identity, feature, "undo", event.before, now)


def reset_my_overrides(actor: User, environment_id: int, project_id: int) -> int:
    """Remove every override on the actor's linked identities in an environment.

    One audit event records the count (``before`` says how many went, ``after`` is None
    like any deletion); the environment revision is bumped if any override went.

    :return: how many overrides were removed
    """
    ids = editing_rights.my_identity_ids(actor, environment_id)
    if not ids:
        return 0
    where = (
        IdentityOverride.identity_id.in_(ids),
        IdentityOverride.environment_id == environment_id,
    )
    count = db.session.scalar(select(func.count(IdentityOverride.id)).where(*where)) or 0
    if count == 0:
        return 0
    db.session.execute(delete(IdentityOverride).where(*where))
    revisions.bump_environment(environment_id)
    audit.record(
        actor,
        "reset",
        OBJECT_TYPE,
        object_label=f"all overrides on {len(ids)} linked identities of {actor.email}",
        project_id=project_id,
        environment_id=environment_id,
        before={"overrides": int(count), "identities": len(ids)},
        count=count,
    )
    db.session.commit()
    return int(count)


def cleanup_expired(now: datetime) -> int:
    """Delete every expired identity override, bump the environments, record one event.

    The event is a system deletion: no actor, ``before`` holds the counts per environment.

    :return: how many overrides were deleted
    """
    expired = IdentityOverride.expires_at <= now
    rows = db.session.execute(
        select(IdentityOverride.environment_id, func.count(IdentityOverride.id))
        .where(expired)
        .group_by(IdentityOverride.environment_id)
    ).all()
    total = sum(int(n) for _, n in rows)
    if total == 0:
        return 0
    db.session.execute(delete(IdentityOverride).where(expired))
    for environment_id, _ in rows:
        revisions.bump_environment(environment_id)
    single = rows[0][0] if len(rows) == 1 else None
    environment = db.session.get(Environment, single) if single is not None else None
    audit.record(
        None,
        "cleanup",
        OBJECT_TYPE,
        object_label=f"expired identity overrides ({total})",
        environment_id=single,
        project_id=environment.project_id if environment is not None else None,
        before={"environments": {str(env): int(n) for env, n in rows}},
        count=total,
    )
    db.session.commit()
    return total


def describe_state(state: State) -> str:
    """Summarise an audited override state for the history list."""
    if state is None:
        return "no override"
    value = decode_value(state.get("value_type", "null"), state.get("value_text"))
    onoff = humanize.on_off(bool(state.get("enabled")))
    expiry = f", expires {state['expires_at'][:16]}" if state.get("expires_at") else ""
    return f"{onoff}, {humanize.value_text(value)}{expiry}"
