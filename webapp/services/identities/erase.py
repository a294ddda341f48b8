"""Erase identities: the right to be forgotten (one, a search result, the CLI) and retention.

Every way in goes through ``_erase_batch``: it deletes the identities' rows from each table
of ``ERASED_TABLES`` (one explicit list; a test walks the schema, so a new table holding
identity ids or identifiers fails until it is listed here) and redacts them from the audit
log (``redaction``: the identifier and trait values become stable ``erased:…`` tokens), in
the caller's transaction. The erasure itself is audited with the token only.

Who may erase: editors and admins, like deleting an identity (SPEC §1: they change any
identity). A QA user may not, even on an identity linked to them: erasure also rewrites
other people's audit entries. Retention (``prune_identities``) is a system action (CLI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from ...extensions import db
from ...models import (
    AuditEvent,
    Environment,
    Identity,
    IdentityLink,
    IdentityOverride,
    ServerKey,
    Trait,
    User,
)
from ...models.base import sha256_hex
from .. import audit, humanize, revisions
from ..errors import NotFound, ValidationError
from ..locking import IDENTITY_GONE
from . import redaction

# (table, column): the rows of an identity that erasure deletes, children first. The column
# holds the identity's id ("identity_id", or "id" for the identity itself) or its identifier
# ("identifier", matched within the environment).
ERASED_TABLES: tuple[tuple[str, str], ...] = (
    # An experiment's per-variant counters keep their totals (no identity in them).
    ("experiment_exposures", "identity_id"),
    ("experiment_conversions", "identity_id"),
    # What the identity was served (usage). The counts and the served states per day
    # (flag_values_daily) stay: no identity in them.
    ("flag_seen", "identity_id"),
    ("traits", "identity_id"),
    ("identity_overrides", "identity_id"),
    ("identity_links", "identity_id"),
    ("identities", "id"),
)
# Tables that keep rows about an identity after erasure, its data redacted (redaction.py).
REDACTED_TABLES: tuple[str, ...] = ("audit_events",)
BATCH = 1000
# A bulk erasure's audit event lists at most this many tokens (it always has the count).
MAX_LISTED = 1000
MAX_NOT_SEEN_DAYS = 36_500


def erasure_secret() -> bytes:
    """Return the key of the ``erased:`` tokens: the app's secret key.

    current_app here is the second exception (after snapshots.py) to "services take explicit
    arguments": every way in (pages, CLI, retention) would otherwise thread the same secret.
    """
    return str(current_app.config["SECRET_KEY"]).encode("utf-8")


@dataclass
class _Batch:
    tokens: list[str] = field(default_factory=list)
    overrides: int = 0
    # The environment's bulk events, found once per run (retention reuses them batch after
    # batch instead of scanning the environment's log each time).
    bulk_events: list[int] | None = None


def _rows_of(environment_id: int, ids: Sequence[int]) -> list[tuple[int, str]]:
    # FOR UPDATE: a concurrent dashboard edit of these identities waits, then finds them gone.
    query = (
        select(Identity.id, Identity.identifier)
        .where(Identity.environment_id == environment_id, Identity.id.in_(ids))
        .order_by(Identity.id)
        .with_for_update()
    )
    return [(row.id, row.identifier) for row in db.session.execute(query)]


def _erase_batch(environment_id: int, ids: Sequence[int], secret: bytes, into: _Batch) -> None:
    """Redact, then delete, up to ``BATCH`` identities of one environment (no commit)."""
    rows = _rows_of(environment_id, ids)
    if not rows:
        return
    erased = [
        redaction.Erased(i, ident, redaction.identity_token(secret, environment_id, ident))
        for i, ident in rows
    ]
    by_id = {who.identity_id: who for who in erased}
    found = list(by_id)
    for identity_id, text in db.session.execute(
        select(Trait.identity_id, Trait.value_text).where(
            Trait.identity_id.in_(found), Trait.value_type == "string"
        )
    ):
        if text:
            by_id[identity_id].values.add(text)
    redaction.redact_identity_events(secret, environment_id, erased)
    if into.bulk_events is None:
        into.bulk_events = redaction.bulk_event_ids(environment_id)
    redaction.redact_bulk_events(into.bulk_events, erased)
    into.overrides += _count(IdentityOverride.identity_id.in_(found))
    identifiers = [who.identifier for who in erased]
    for name, column in ERASED_TABLES:
        table = db.metadata.tables[name]
        if column == "identifier":
            removal = delete(table).where(
                table.c.environment_id == environment_id, table.c.identifier.in_(identifiers)
            )
        else:
            removal = delete(table).where(table.c[column].in_(found))
        db.session.execute(removal)
    into.tokens.extend(who.token for who in erased)


def _count(*where: object) -> int:
    return db.session.scalar(select(func.count()).where(*where)) or 0  # type: ignore[arg-type]


def _finish(environment_id: int, batch: _Batch) -> None:
    if batch.overrides:
        revisions.bump_environment(environment_id)  # the compiled environment lists them
    db.session.commit()
    db.session.expire_all()


# ----------------------------------------------------------------------------- one


def erase_identity(
    actor: User | None, project_id: int, environment_id: int, identity_id: int
) -> str:
    """Erase one identity: delete its rows, redact the audit log, audit the erasure; commit.

    :param actor: the dashboard user, or None for the CLI.
    :return: the token that now stands for the identity in the audit log.
    :raises NotFound: when it does not exist in this environment (or was erased meanwhile).
    """
    if not _rows_of(environment_id, [identity_id]):  # locked from here on: counts hold
        db.session.rollback()
        raise NotFound(IDENTITY_GONE)
    counts = {
        "traits": _count(Trait.identity_id == identity_id),
        "overrides": _count(IdentityOverride.identity_id == identity_id),
        "links": _count(IdentityLink.identity_id == identity_id),
    }
    batch = _Batch()
    _erase_batch(environment_id, [identity_id], erasure_secret(), batch)
    [token] = batch.tokens
    audit.record(
        actor,
        "erase",
        "identity",
        object_id=identity_id,
        object_label=token,
        project_id=project_id,
        environment_id=environment_id,
        identity_id=identity_id,
        before={"identifier": token, **counts},
    )
    _finish(environment_id, batch)
    return token


def find_environment(key: str) -> Environment:
    """Find an environment by its client-side key or one of its server-side keys.

    :raises NotFound: when no environment has this key.
    """
    environment = db.session.scalar(select(Environment).where(Environment.client_key == key))
    if environment is None:
        environment = db.session.scalar(
            select(Environment)
            .join(ServerKey)
            .where(ServerKey.key == key, ServerKey.revoked_at.is_(None))
        )
    if environment is None:
        raise NotFound("No environment has this key.")
    return environment


def find_by_key(key: str, identifier: str) -> tuple[Environment, int]:
    """Find an identity by its environment's key (client-side or server-side) and identifier.

    :return: the environment and the identity's id.
    :raises NotFound: no environment has this key, or no identity this identifier there.
    """
    environment = find_environment(key)
    identity_id = db.session.scalar(
        select(Identity.id).where(
            Identity.environment_id == environment.id,
            Identity.identifier_hash == sha256_hex(identifier),
        )
    )
    if identity_id is None:
        raise NotFound("No identity has this identifier in this environment.")
    return environment, identity_id


# ----------------------------------------------------------------------------- many


def erase_identities(
    actor: User | None, project_id: int, environment_id: int, ids: Sequence[int]
) -> int:
    """Erase identities of one environment as one audited change (a bulk action); commit.

    :param ids: the identities' ids (read once by the caller from the confirmed search).
    :return: the number of identities erased.
    """
    batch = _Batch()
    secret = erasure_secret()
    for start in range(0, len(ids), BATCH):
        _erase_batch(environment_id, ids[start : start + BATCH], secret, batch)
    count = len(batch.tokens)
    if count:
        # The search is not recorded: it may quote the very data that was erased.
        audit.record(
            actor,
            "bulk_erase",
            "identity",
            object_label=f"{humanize.plural(count, 'identity')} from a search",
            project_id=project_id,
            environment_id=environment_id,
            before=_listed(batch.tokens, count),
            count=count,
        )
    _finish(environment_id, batch)
    return count


def _listed(tokens: Sequence[str], count: int) -> dict[str, object]:
    listed: dict[str, object] = {"erased": list(tokens[:MAX_LISTED])}
    if count > MAX_LISTED:
        listed["not_listed"] = count - MAX_LISTED
    return listed


# ----------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class PruneResult:
    """Identities not seen since ``cutoff``, per environment (erased unless a dry run)."""

    cutoff: datetime
    per_environment: dict[int, int]
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.per_environment.values())


def prune_identities(
    not_seen_days: int,
    now: datetime,
    *,
    dry_run: bool = True,
    environment_id: int | None = None,
    batch_size: int = BATCH,
) -> PruneResult:
    """Erase identities not seen for ``not_seen_days`` days, or count them (dry run).

    Each batch of ``batch_size`` is erased and committed on its own, so a million
    identities never load at once; one audit event per environment (a system action)
    grows with every batch, so what was erased is always audited, even if interrupted.

    :param environment_id: one environment only (None: every environment).
    :raises ValidationError: a number of days outside 1..36,500.
    """
    if not 1 <= not_seen_days <= MAX_NOT_SEEN_DAYS:
        raise ValidationError(f"Give a number of days from 1 to {MAX_NOT_SEEN_DAYS:,}.", "days")
    cutoff = now - timedelta(days=not_seen_days)
    query = select(Environment.id, Environment.project_id).order_by(Environment.id)
    if environment_id is not None:
        query = query.where(Environment.id == environment_id)
    found: dict[int, int] = {}
    for env_id, project_id in db.session.execute(query).all():
        stale = (Identity.environment_id == env_id, Identity.last_seen_at < cutoff)
        if dry_run:
            count = _count(*stale)
        else:
            count = _prune_environment(env_id, project_id, stale, not_seen_days, batch_size)
        if count:
            found[env_id] = count
    return PruneResult(cutoff, found, dry_run)


def _prune_environment(
    env_id: int, project_id: int, stale: tuple[object, ...], days: int, batch_size: int
) -> int:
    secret = erasure_secret()
    event: AuditEvent | None = None
    count = 0
    listed: list[str] = []  # at most MAX_LISTED tokens are kept, not one per identity
    bulk_events: list[int] | None = None
    while True:
        ids = list(
            db.session.scalars(
                select(Identity.id).where(*stale).order_by(Identity.id).limit(batch_size)  # type: ignore[arg-type]
            )
        )
        if not ids:
            return count
        batch = _Batch(bulk_events=bulk_events)
        _erase_batch(env_id, ids, secret, batch)
        bulk_events = batch.bulk_events
        count += len(batch.tokens)
        listed.extend(batch.tokens[: MAX_LISTED + 1 - len(listed)])
        if event is None:
            event = audit.record(
                None,
                "prune",
                "identity",
                object_label=f"identities not seen for {humanize.plural(days, 'day')}",
                project_id=project_id,
                environment_id=env_id,
            )
        event.count = count
        event.before = _listed(listed, count)
        _finish(env_id, batch)
