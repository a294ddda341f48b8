"""Reading the audit log: filtered, keyset-paginated, with readable before/after diffs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select

from ..extensions import db
from ..ids import parse_id
from ..models import AuditEvent, Environment, Identity
from ..models.base import sha256_hex
from . import humanize, values
from .errors import ValidationError
from .identities.redaction import ERASED_PREFIX

PAGE_SIZE = 50
# The environment filter's value for "project-level events only" (features, segments).
PROJECT_LEVEL = "project"
KNOWN_OBJECT_TYPES = (
    "feature",
    "feature_state",
    "multivariate_option",
    "segment",
    "segment_override",
    "identity",
    "identity_override",
    "trait",
    "server_key",
    "environment",
)


@dataclass(frozen=True)
class AuditFilters:
    """What the audit page filters by; every field is optional.

    ``environment`` is blank (project-level events and the current environment's), an
    environment id of the project, or ``PROJECT_LEVEL``.
    """

    environment: str = ""
    actor: str = ""
    object_type: str = ""
    identity: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class DiffRow:
    key: str
    before: str | None
    after: str | None
    changed: bool


@dataclass(frozen=True)
class AuditEntry:
    event: AuditEvent
    environment_name: str | None
    diff: list[DiffRow] = field(default_factory=list)


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None


def encode_cursor(event: AuditEvent) -> str:
    """Return the keyset cursor just after ``event`` (newest first)."""
    return f"{event.created_at.strftime('%Y%m%dT%H%M%S.%f')}_{event.id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Parse a cursor made by ``encode_cursor``.

    :raises ValidationError: when the cursor is malformed.
    """
    message = "That page link is malformed; start from the newest"
    stamp, _, raw_id = cursor.partition("_")
    event_id = parse_id(raw_id)  # an id past the database's range would fail the query
    try:
        moment = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValidationError(message, "cursor") from exc
    if event_id is None:
        raise ValidationError(message, "cursor")
    return moment, event_id


def _scope(environment: Environment, filters: AuditFilters) -> Any:
    project_events = and_(AuditEvent.project_id == environment.project_id)
    env_ids = [e.id for e in environment.project.environments]
    in_project = or_(project_events, AuditEvent.environment_id.in_(env_ids))
    if filters.environment == PROJECT_LEVEL:
        return and_(in_project, AuditEvent.environment_id.is_(None))
    if filters.environment:
        if not filters.environment.isdigit() or int(filters.environment) not in env_ids:
            raise ValidationError("Choose an environment of this project", "environment")
        return AuditEvent.environment_id == int(filters.environment)
    return and_(
        in_project,
        or_(AuditEvent.environment_id.is_(None), AuditEvent.environment_id == environment.id),
    )


def _identity_ids(environment: Environment, identifier: str) -> list[int]:
    env_ids = [e.id for e in environment.project.environments]
    return list(
        db.session.scalars(
            select(Identity.id).where(
                Identity.environment_id.in_(env_ids),
                Identity.identifier_hash == sha256_hex(identifier),
            )
        )
    )


def _conditions(environment: Environment, filters: AuditFilters) -> list[Any]:
    conditions = [_scope(environment, filters)]
    if filters.actor:
        conditions.append(AuditEvent.actor_label == filters.actor)
    if filters.object_type:
        conditions.append(AuditEvent.object_type == filters.object_type)
    if filters.identity.startswith(ERASED_PREFIX):
        # An erased identity is named by its token in the label of every event it had.
        conditions.append(AuditEvent.object_label.contains(filters.identity, autoescape=True))
    elif filters.identity:
        conditions.append(AuditEvent.identity_id.in_(_identity_ids(environment, filters.identity)))
    if filters.since is not None:
        conditions.append(AuditEvent.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(AuditEvent.created_at < filters.until)
    return conditions


def list_events(
    environment: Environment,
    filters: AuditFilters,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> AuditPage:
    """List the audit events visible from ``environment``, newest first.

    :param cursor: from a previous page's ``next_cursor``; continues after that event.
    :raises ValidationError: malformed cursor, or an environment outside the project.
    """
    conditions = _conditions(environment, filters)
    if cursor:
        moment, event_id = decode_cursor(cursor)
        conditions.append(
            or_(
                AuditEvent.created_at < moment,
                and_(AuditEvent.created_at == moment, AuditEvent.id < event_id),
            )
        )
    events = list(
        db.session.scalars(
            select(AuditEvent)
            .where(*conditions)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit + 1)
        )
    )
    names = {e.id: e.name for e in environment.project.environments}
    entries = [
        AuditEntry(e, names.get(e.environment_id or 0), diff_rows(e.before, e.after))
        for e in events[:limit]
    ]
    next_cursor = encode_cursor(events[limit - 1]) if len(events) > limit else None
    return AuditPage(entries, next_cursor)


def filter_choices(environment: Environment) -> tuple[list[str], list[str]]:
    """Return the actors and object types seen in the project's events, for the filters."""
    env_ids = [e.id for e in environment.project.environments]
    in_project = or_(
        AuditEvent.project_id == environment.project_id, AuditEvent.environment_id.in_(env_ids)
    )
    actors = db.session.scalars(
        select(AuditEvent.actor_label).where(in_project).distinct().order_by(AuditEvent.actor_label)
    )
    types = db.session.scalars(select(AuditEvent.object_type).where(in_project).distinct())
    return list(actors), sorted(set(types) | set(KNOWN_OBJECT_TYPES))


def pretty(value: Any) -> str:
    """Show a stored value for people: one value as on every page, a structure as JSON.

    The template escapes it.
    """
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return humanize.value_text(value)


def diff_rows(before: Any, after: Any) -> list[DiffRow]:
    """Compare before/after key by key (dicts) or as a whole (anything else).

    A missing side is None (the page shows a dash); ``changed`` marks the rows to highlight.
    """
    if before is None and after is None:
        return []
    if isinstance(before, dict | None) and isinstance(after, dict | None):
        old, new = before or {}, after or {}
        keys = sorted(set(old) | set(new), key=str)
        return [
            DiffRow(
                humanize.field_label(str(key)),
                pretty(old[key]) if key in old else None,
                pretty(new[key]) if key in new else None,
                key not in old or key not in new or not values.same(old[key], new[key]),
            )
            for key in keys
        ]
    old_text = None if before is None else pretty(before)
    new_text = None if after is None else pretty(after)
    return [DiffRow("value", old_text, new_text, not values.same(before, after))]
