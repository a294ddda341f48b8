"""The SDK paths: environment flags, identify (upsert + evaluate), and trait writes.

The identify path is the hot one: one indexed read of the identity with its traits, writes
only when something changed, the identity's overrides only when it has any, and
evaluation from the cached compiled snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ...evaluation import (
    EvaluationResult,
    FlagResult,
    IdentityInput,
    IdentityOverrideInput,
    evaluate,
)
from ...extensions import db, read_engine
from ...models import Feature, Identity, IdentityOverride, Trait, decode_value, trait_row
from ...models.base import PREFIX_LENGTH, sha256_hex
from .. import values
from .fastread import PreparedRead, as_utc
from .parsing import IdentifyInput, TraitInput, TraitValue
from .snapshots import EnvironmentBundle, FeatureMeta

# Last-seen is a coarse signal; updating it at most this often keeps reads write-free.
LAST_SEEN_RESOLUTION = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class StoredIdentity:
    id: int | None
    last_seen_at: datetime | None
    traits: dict[str, TraitValue]


@dataclass(frozen=True, slots=True)
class IdentifyResult:
    identifier: str
    results: dict[str, FlagResult]
    traits: dict[str, TraitValue]
    # The whole evaluation (its matched segments decide experiment enrolment).
    evaluation: EvaluationResult | None = None
    # The stored identity (None for a transient one), for the usage "seen" rows.
    identity_id: int | None = None


def visible_features(bundle: EnvironmentBundle, is_server: bool) -> tuple[FeatureMeta, ...]:
    """Return the features a key may see (client keys never see server-key-only ones)."""
    return bundle.features if is_server else bundle.client_features


def serialise_flags(
    bundle: EnvironmentBundle, flags: dict[str, FlagResult], is_server: bool
) -> list[dict[str, Any]]:
    """Serialise evaluated flags, hiding disabled ones when the environment says so."""
    hide_disabled = bundle.hide_disabled_flags
    found = flags.get
    out = []
    for meta in visible_features(bundle, is_server):
        result = found(meta.name)
        if result is None or (hide_disabled and not result.enabled):
            continue
        # Flagsmith's flag shape; built inline, as this runs for every flag of every request.
        item = {
            **meta.flag_base,
            "feature_state_value": result.value,
            "enabled": result.enabled,
            "reason": result.reason,
        }  # fmt: skip
        if result.variant is not None:
            # The option key the identity got ("control": the feature's own value), as
            # Flagsmith's API sends it and the SDK reads it into ``Flag.variant``.
            item["variant"] = result.variant
        out.append(item)
    return out


def environment_results(bundle: EnvironmentBundle) -> dict[str, FlagResult]:
    """Evaluate the environment's default flags (no identity)."""
    return dict(evaluate(bundle.compiled).flags)


def environment_flags(bundle: EnvironmentBundle, is_server: bool) -> list[dict[str, Any]]:
    """Return the environment's default flags as the SDK API serves them."""
    return serialise_flags(bundle, environment_results(bundle), is_server)


# Built and compiled once: constructing this expression costs about as much as running it,
# and it is the one query of every identify request.
_LOAD_IDENTITY = PreparedRead(
    select(Identity.id, Identity.last_seen_at, Trait.key, Trait.value_type, Trait.value_text)
    .outerjoin(Trait, Trait.identity_id == Identity.id)
    .where(
        Identity.environment_id == bindparam("environment_id"),
        Identity.identifier_hash == bindparam("identifier_hash"),
    )
)


def _read(prepared: PreparedRead, params: dict[str, Any]) -> Sequence[Any]:
    """Run a read on the fast read pool, or on the session's connection if it has work.

    Inside an open session transaction the session's connection must be used, both to see
    its pending writes and because another connection could roll back a shared one (the
    in-memory SQLite of tests). ``registry.has()`` avoids creating a session just to ask.
    """
    if db.session.registry.has() and db.session().in_transaction():
        return db.session.connection().execute(prepared.statement, params).all()
    return prepared.rows(read_engine(), params)


def read_stored_identity(environment_id: int, identifier: str) -> StoredIdentity:
    """Read an identity and its traits in one indexed query (LEFT JOIN)."""
    rows = _read(
        _LOAD_IDENTITY,
        {"environment_id": environment_id, "identifier_hash": sha256_hex(identifier)},
    )
    if not rows:
        return StoredIdentity(None, None, {})
    return StoredIdentity(rows[0][0], as_utc(rows[0][1]), _traits_from_rows(rows))


def _traits_from_rows(rows: Sequence[Any]) -> dict[str, TraitValue]:
    traits: dict[str, TraitValue] = {}
    for _id, _seen, key, kind, text in rows:
        if key is not None:
            value = decode_value(kind, text)
            if value is not None:
                traits[key] = value
    return traits


def _insert(table: Any) -> Any:
    """Return the dialect's INSERT, which supports ON CONFLICT on SQLite and PostgreSQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def create_identity(environment_id: int, identifier: str, now: datetime) -> int:
    """Insert the identity unless it exists (safe under concurrency); return its id."""
    statement = _insert(Identity).values(
        environment_id=environment_id,
        identifier=identifier,
        identifier_hash=sha256_hex(identifier),
        identifier_prefix=identifier[:PREFIX_LENGTH],
        created_at=now,
        last_seen_at=now,
    )
    db.session.execute(
        statement.on_conflict_do_nothing(index_elements=["environment_id", "identifier_hash"])
    )
    identity_id = db.session.scalar(
        select(Identity.id).where(
            Identity.environment_id == environment_id,
            Identity.identifier_hash == sha256_hex(identifier),
        )
    )
    assert identity_id is not None
    return int(identity_id)


def trait_changes(
    stored: dict[str, TraitValue], incoming: Iterable[TraitInput]
) -> tuple[dict[str, TraitValue], list[str]]:
    """Split persisted trait input into upserts and deletions that really change something.

    A value counts as changed when its type changes too (``"42"`` vs ``42``).
    """
    upserts: dict[str, TraitValue] = {}
    deletions: list[str] = []
    for trait in incoming:
        current = stored.get(trait.key)
        if trait.value is None:
            if trait.key in stored:
                deletions.append(trait.key)
        elif not values.same(current, trait.value):
            upserts[trait.key] = trait.value
    return upserts, deletions


def write_traits(
    environment_id: int,
    identity_id: int,
    upserts: dict[str, TraitValue],
    deletions: list[str],
    now: datetime,
) -> None:
    """Apply trait upserts and deletions (ON CONFLICT, so concurrent writers never fail)."""
    if deletions:
        db.session.execute(
            delete(Trait).where(Trait.identity_id == identity_id, Trait.key.in_(deletions))
        )
    if not upserts:
        return
    # Sorted keys: concurrent writers lock rows in one order, so they cannot deadlock.
    rows = [
        trait_row(environment_id, identity_id, key, upserts[key], now) for key in sorted(upserts)
    ]
    statement = _insert(Trait).values(rows)
    excluded = statement.excluded
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=["identity_id", "key"],
            set_={
                "value_type": excluded.value_type,
                "value_text": excluded.value_text,
                "value_prefix": excluded.value_prefix,
                "value_num": excluded.value_num,
                "updated_at": excluded.updated_at,
            },
        )
    )


def identity_overrides(identity_id: int, now: datetime) -> list[IdentityOverrideInput]:
    """Return the identity's overrides that have not expired, for evaluation."""
    rows = db.session.execute(
        select(IdentityOverride, Feature.name, Feature.id, Feature.external_id)
        .join(Feature, Feature.id == IdentityOverride.feature_id)
        .where(
            IdentityOverride.identity_id == identity_id,
            or_(IdentityOverride.expires_at.is_(None), IdentityOverride.expires_at > now),
        )
    ).all()
    return [
        IdentityOverrideInput(
            feature_name=name,
            enabled=row.enabled,
            value=row.value,
            feature_id=external_id if external_id is not None else feature_id,
        )
        for row, name, feature_id, external_id in rows
    ]


def identify(
    bundle: EnvironmentBundle,
    request: IdentifyInput,
    *,
    is_server: bool,
    now: datetime,
) -> IdentifyResult:
    """Identify a user: create it if new, store its traits, and evaluate every flag.

    :param bundle: the environment compiled at its current revision.
    :param request: identifier, traits (None values delete) and the transient markers.
    :param is_server: whether a server-side key made the request.
    :param now: the request time (for last-seen and override expiry).
    :return: the identifier, the evaluated flags and the traits evaluation used.
    """
    stored = read_stored_identity(bundle.environment_id, request.identifier)
    identity_id = stored.id
    persist_traits = is_server or bundle.allow_client_traits
    changed = False
    if identity_id is None and not request.transient:
        identity_id = create_identity(bundle.environment_id, request.identifier, now)
        changed = True
    if identity_id is not None and not request.transient and persist_traits:
        persisted = (t for t in request.traits if not t.transient)
        upserts, deletions = trait_changes(stored.traits, persisted)
        if upserts or deletions:
            write_traits(bundle.environment_id, identity_id, upserts, deletions, now)
            changed = True
    if identity_id is not None and _last_seen_is_stale(stored.last_seen_at, now, changed):
        db.session.execute(
            update(Identity).where(Identity.id == identity_id).values(last_seen_at=now)
        )
        changed = True
    if changed:
        db.session.commit()
    traits = effective_traits(stored.traits, request.traits)
    overrides: list[IdentityOverrideInput] = []
    if identity_id is not None and identity_id in bundle.identities_with_overrides:
        overrides = identity_overrides(identity_id, now)
    result = evaluate(
        bundle.compiled, IdentityInput(request.identifier, traits), overrides=overrides
    )
    return IdentifyResult(
        request.identifier, dict(result.flags), traits, evaluation=result, identity_id=identity_id
    )


def _last_seen_is_stale(last_seen: datetime | None, now: datetime, changed: bool) -> bool:
    if last_seen is None:
        return False  # a new identity was just created with last_seen = now
    return changed or now - last_seen >= LAST_SEEN_RESOLUTION


def effective_traits(
    stored: dict[str, TraitValue], incoming: Iterable[TraitInput]
) -> dict[str, TraitValue]:
    """Merge request traits (transient ones included) over the stored ones."""
    traits = dict(stored)
    for trait in incoming:
        if trait.value is None:
            traits.pop(trait.key, None)
        else:
            traits[trait.key] = trait.value
    return traits


def set_traits(
    environment_id: int,
    items: list[tuple[str, TraitInput]],
    now: datetime,
) -> None:
    """Store traits for one or more identities (creating them), in one transaction."""
    by_identifier: dict[str, list[TraitInput]] = {}
    for identifier, trait in items:
        by_identifier.setdefault(identifier, []).append(trait)
    for identifier, traits in by_identifier.items():
        stored = read_stored_identity(environment_id, identifier)
        identity_id = stored.id or create_identity(environment_id, identifier, now)
        upserts, deletions = trait_changes(stored.traits, (t for t in traits if not t.transient))
        write_traits(environment_id, identity_id, upserts, deletions, now)
    db.session.commit()
