"""Record audit events; every dashboard change goes through ``record``."""

from __future__ import annotations

from typing import Any

from ..extensions import db
from ..models import AuditEvent, User
from .humanize import ACTION_LABELS, OBJECT_LABELS


def record(
    actor: User | None,
    action: str,
    object_type: str,
    *,
    object_id: object = None,
    object_label: str = "",
    project_id: int | None = None,
    environment_id: int | None = None,
    identity_id: int | None = None,
    before: Any = None,
    after: Any = None,
    count: int = 1,
) -> AuditEvent:
    """Add an audit event to the current transaction (the caller commits with its change).

    :param actor: the dashboard user, or None for system actions (CLI, cleanup).
    :param action: a verb such as ``create``, ``update``, ``delete``.
    :param object_type: the kind of object, e.g. ``feature``, ``identity_override``.
    :return: the pending event.
    :raises ValueError: for an action or object type not named in ``humanize`` (every kind
        of event must have words for people before it is written).
    """
    if action not in ACTION_LABELS or object_type not in OBJECT_LABELS:
        raise ValueError(f"undeclared audit event {action!r} on {object_type!r}: name it first")
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        actor_label=actor.email if actor is not None else "system",
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        object_label=object_label[:300],
        project_id=project_id,
        environment_id=environment_id,
        identity_id=identity_id,
        before=before,
        after=after,
        count=count,
    )
    db.session.add(event)
    return event
