"""Traits from the dashboard: add, edit, delete, with an explicit type or inference.

Traits are read per request by evaluation, so a change needs no revision bump; each
change is audited (object_type ``trait``) and reports which flags it changed.

Concurrent edits are caught with a content token rather than a version column: SDKs
rewrite traits constantly (often with the same value), so a token that only changes
with the stored type and value refuses real changes without refusing SDK no-ops.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from sqlalchemy import select

from ..extensions import db
from ..models import TRAIT_KEY_MAX, TRAIT_STRING_MAX, Identity, Trait, TypedValue, User
from ..models.base import value_type_of
from . import audit, humanize, qa
from .errors import NotFound, Stale, ValidationError
from .identities import changed_names, effective_flags
from .sdk_input import INT_MAX, INT_MIN

INFER = "infer"
TRAIT_KINDS = (INFER, "string", "integer", "float", "boolean")
_INTEGER = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class TraitChange:
    """A trait change and the flags whose effective state it changed."""

    key: str
    trait: Trait | None
    changed: list[str]


def infer_value(raw: str) -> TypedValue:
    """Guess a trait's type: integer, then float, then boolean (true/false), else string."""
    text = raw.strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    if text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    return raw


def parse_value(raw: str, kind: str) -> TypedValue:
    """Turn form text into a typed trait value.

    :param raw: the text typed
    :param kind: ``infer``, ``string``, ``integer``, ``float`` or ``boolean``
    :return: the typed value
    :raises ValidationError: when the text is not a value of that type (field ``value``)
    """
    text = raw.strip()
    if kind == INFER:
        value = infer_value(raw)
    elif kind == "string":
        value = raw
    elif kind == "integer":
        if not _INTEGER.fullmatch(text):
            raise ValidationError(f"{humanize.value_text(raw)} is not an integer.", field="value")
        value = int(text)
    elif kind == "float":
        value = _parse_float(raw)
    elif kind == "boolean":
        if text.lower() not in _BOOLEANS:
            raise ValidationError("A boolean trait is true or false.", field="value")
        value = _BOOLEANS[text.lower()]
    else:
        raise ValidationError(f"Unknown type {humanize.value_text(kind)}.", field="value_type")
    if isinstance(value, str) and len(value) > TRAIT_STRING_MAX:
        raise ValidationError(
            f"A string trait has at most {TRAIT_STRING_MAX:,} characters.", field="value"
        )
    _check_integer(value)
    return value


def _check_integer(value: TypedValue) -> None:
    # The SDK API refuses (and its JSON encoder cannot send) integers beyond 64 bits.
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        raise ValidationError(
            "An integer trait must lie within the 64-bit range "
            f"({INT_MIN:,} to {INT_MAX:,}).",
            field="value",
        )


def _parse_float(raw: str) -> float:
    text = raw.strip()
    number = float(text) if _FLOAT.fullmatch(text) else math.nan
    if not math.isfinite(number):
        raise ValidationError(f"{humanize.value_text(raw)} is not a finite number.", field="value")
    return number


def check_key(key: str) -> str:
    """Return a valid trait key.

    :raises ValidationError: empty, longer than 200 characters, or not printable
    """
    if not key or not key.strip():
        raise ValidationError("A trait needs a key.", field="key")
    if len(key) > TRAIT_KEY_MAX:
        raise ValidationError(f"A trait key has at most {TRAIT_KEY_MAX} characters.", field="key")
    if not key.isprintable():
        raise ValidationError("A trait key cannot contain control characters.", field="key")
    return key


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
    qa.ensure_can_edit(actor, identity)
    check_key(key)
    value = parse_value(raw_value, kind)
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
    qa.ensure_can_edit(actor, identity)
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
