"""Traits from the dashboard: add, edit, delete, with an explicit type or inference.

Traits are read per request by evaluation, so a change needs no revision bump; each
change is audited (object_type ``trait``) and reports which flags it changed.

Concurrent edits are caught with a content token rather than a version column: SDKs
rewrite traits constantly (often with the same value), so a token that only changes
with the stored type and value refuses real changes without refusing SDK no-ops.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from sqlalchemy import select

from ...extensions import db
from ...models import Identity, Trait, User
from ...models.base import value_type_of
from .. import audit, humanize, values
from ..errors import NotFound, Stale
from ..locking import lock_identity
from . import editing_rights
from .identity_page import changed_names, effective_flags


@dataclass(frozen=True, slots=True)
class TraitChange:
    """A trait change and the flags whose effective state it changed."""

    key: str
    trait: Trait | None
    changed: list[str]


def trait_version(trait: Trait) -> str:
    """Return the token a page carries for a trait: it changes with the type or value."""
    stored = f"{trait.value_type}\x00{trait.value_text}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(stored).hexdigest()[:16]


def _locked(identity: Identity, key: str) -> Trait | None:
    # FOR UPDATE (a no-op on SQLite): a concurrent edit of this trait waits, then re-reads.
    return db.session.scalar(
        select(Trait)
        .where(Trait.identity_id == identity.id, Trait.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _reject(
    actor: User, identity: Identity, trait: Trait, after: object, version: str | None
) -> NoReturn:
    rejected = "delete_rejected" if after is None else "update_rejected"
    attempt = None if not isinstance(after, dict) else {**after, "version": version}
    _record(actor, identity, rejected, trait.key, _typed(trait), attempt)
    db.session.commit()
    raise Stale("trait")


def get_trait(identity: Identity, key: str) -> Trait:
    """Return one trait of the identity.

    :raises NotFound: when the identity has no such trait
    """
    trait = db.session.scalar(
        select(Trait).where(Trait.identity_id == identity.id, Trait.key == key)
    )
    if trait is None:
        raise NotFound(f"No trait {humanize.value_text(key)} on this identity.")
    return trait


def _record(
    actor: User, identity: Identity, action: str, key: str, before: object, after: object
) -> None:
    audit.record(
        actor,
        action,
        "trait",
        object_id=key[:64],
        object_label=f"{key} on {identity.identifier}",
        project_id=identity.environment.project_id,
        environment_id=identity.environment_id,
        identity_id=identity.id,
        before=before,
        after=after,
    )


def _typed(trait: Trait) -> dict[str, object]:
    return {"value": trait.value, "type": trait.value_type}


def set_trait(
    actor: User,
    identity: Identity,
    key: str,
    raw_value: str,
    kind: str,
    now: datetime,
    *,
    must_exist: bool = False,
    version: str | None = None,
) -> TraitChange:
    """Create or update a trait, audit it and commit.

    :param actor: who changes it (must be allowed to edit the identity)
    :param identity: the identity
    :param key: the trait key
    :param raw_value: the value as typed
    :param kind: ``infer`` or an explicit type
    :param now: the time override expiry is judged against
    :param must_exist: refuse to create (inline edit of an existing trait)
    :param version: the ``trait_version`` the page showed; None skips the check
    :return: the trait and the flags whose effective state changed
    :raises Forbidden: when the actor may not edit the identity
    :raises ValidationError: bad key or value
    :raises NotFound: ``must_exist`` and there is no such trait
    :raises Conflict: when the trait changed since (the refused attempt is audited)
    """
    editing_rights.ensure_can_edit(actor, identity)
    lock_identity(identity)
    values.check_trait_key(key)
    value = values.parse_value(kind, raw_value, values.TRAIT)
    trait = _locked(identity, key)
    if trait is None and must_exist:
        raise NotFound(f"No trait {humanize.value_text(key)} on this identity.")
    if trait is not None and version is not None and version != trait_version(trait):
        _reject(actor, identity, trait, {"value": value, "type": value_type_of(value)}, version)
    before_flags = effective_flags(identity, now)
    before = None if trait is None else _typed(trait)
    if trait is None:
        trait = Trait(identity_id=identity.id, environment_id=identity.environment_id, key=key)
        db.session.add(trait)
    trait.value = value
    _record(actor, identity, "update" if before else "create", key, before, _typed(trait))
    db.session.commit()
    changed = changed_names(before_flags, effective_flags(identity, now))
    return TraitChange(key, trait, changed)


def delete_trait(
    actor: User, identity: Identity, key: str, now: datetime, *, version: str | None = None
) -> TraitChange:
    """Delete a trait, audit it and commit.

    :param version: the ``trait_version`` the page showed; None skips the check
    :raises Forbidden: when the actor may not edit the identity
    :raises NotFound: when there is no such trait
    :raises Conflict: when the trait changed since (the refused attempt is audited)
    """
    editing_rights.ensure_can_edit(actor, identity)
    lock_identity(identity)
    trait = _locked(identity, key)
    if trait is None:
        raise NotFound(f"No trait {humanize.value_text(key)} on this identity.")
    if version is not None and version != trait_version(trait):
        _reject(actor, identity, trait, None, version)
    before_flags = effective_flags(identity, now)
    _record(actor, identity, "delete", key, _typed(trait), None)
    db.session.delete(trait)
    db.session.commit()
    changed = changed_names(before_flags, effective_flags(identity, now))
    return TraitChange(key, None, changed)
