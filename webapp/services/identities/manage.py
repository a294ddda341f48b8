"""Create and delete identities from the dashboard, one at a time or for a whole search result.

Every change is audited in the same transaction. Bulk actions record ONE event with the
number of identities affected, and bump the environment's revision (identity overrides are
part of the compiled environment the SDK API serves).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, insert, select, update

from ...clock import utcnow
from ...extensions import db
from ...models import Feature, Identity, IdentityLink, IdentityOverride, Trait, TypedValue, User
from ...models.base import encode_value, sha256_hex
from ...models.identity import IDENTIFIER_MAX
from .. import audit, humanize, revisions
from ..errors import ValidationError
from ..features import catalog
from . import erase, trait_columns
from .identity_page import get_identity
from .search import count_exact, filter_clauses, parse_query

MAX_PASTED = 1000
_CHUNK = 1000


# ----------------------------------------------------------------------------- create


@dataclass
class CreateResult:
    """What happened to each pasted line."""

    created: list[Identity] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)


def _check_identifier(identifier: str) -> str | None:
    if len(identifier) > IDENTIFIER_MAX:
        return f"longer than {IDENTIFIER_MAX:,} characters"
    if any(ord(ch) < 32 for ch in identifier):
        return "contains control characters"
    return None


def _existing(environment_id: int, identifiers: Sequence[str]) -> set[str]:
    hashes = [sha256_hex(i) for i in identifiers]
    found: set[str] = set()
    for start in range(0, len(hashes), _CHUNK):
        found.update(
            db.session.scalars(
                select(Identity.identifier).where(
                    Identity.environment_id == environment_id,
                    Identity.identifier_hash.in_(hashes[start : start + _CHUNK]),
                )
            )
        )
    return found


def _sort_lines(text: str, result: CreateResult) -> list[str]:
    """Split pasted text into candidate identifiers, reporting invalid and repeated lines."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ValidationError("Enter at least one identifier.", "identifiers")
    if len(lines) > MAX_PASTED:
        raise ValidationError(f"Paste at most {MAX_PASTED:,} identifiers at once.", "identifiers")
    wanted: list[str] = []
    seen: set[str] = set()
    for line in lines:
        problem = _check_identifier(line)
        if problem is not None:
            result.invalid.append((line[:80], problem))
        elif line in seen:
            result.duplicates.append(line)
        else:
            seen.add(line)
            wanted.append(line)
    return wanted


def create_identities(actor: User, project_id: int, environment_id: int, text: str) -> CreateResult:
    """Create identities from pasted text, one identifier per line (surrounding spaces dropped).

    Valid new identifiers are created; existing, repeated and invalid ones are reported.

    :param text: the pasted identifiers.
    :return: created identities, duplicates and invalid lines with the reason.
    :raises ValidationError: when nothing was entered or too many lines were pasted.
    """
    result = CreateResult()
    wanted = _sort_lines(text, result)
    existing = _existing(environment_id, wanted)
    for identifier in wanted:
        if identifier in existing:
            result.duplicates.append(identifier)
            continue
        identity = Identity(environment_id=environment_id, identifier=identifier)
        db.session.add(identity)
        result.created.append(identity)
    db.session.flush()
    for identity in result.created:
        audit.record(
            actor,
            "create",
            "identity",
            object_id=identity.id,
            object_label=identity.identifier,
            project_id=project_id,
            environment_id=environment_id,
            identity_id=identity.id,
            after={"identifier": identity.identifier},
        )
    db.session.commit()
    return result


# ----------------------------------------------------------------------------- delete one


@dataclass(frozen=True)
class IdentitySummary:
    """What deleting an identity loses."""

    identity_id: int
    identifier: str
    trait_count: int
    override_count: int


def summarise_identity(environment_id: int, identity_id: int) -> IdentitySummary:
    """Return an identity with its trait and override counts (for the delete confirmation)."""
    identity = get_identity(environment_id, identity_id)
    traits = db.session.scalar(select(func.count()).where(Trait.identity_id == identity_id))
    overrides = db.session.scalar(
        select(func.count()).where(IdentityOverride.identity_id == identity_id)
    )
    return IdentitySummary(identity.id, identity.identifier, traits or 0, overrides or 0)


def delete_identity(
    actor: User, project_id: int, environment_id: int, identity_id: int
) -> IdentitySummary:
    """Delete one identity with its traits and overrides, and audit what was lost.

    :return: the summary of the deleted identity.
    :raises NotFound: when it does not exist in this environment.
    """
    summary = summarise_identity(environment_id, identity_id)
    identity = get_identity(environment_id, identity_id)
    traits = {t.key: t.value for t in identity.traits}
    overrides = {
        o.feature.name: {"enabled": o.enabled, "value": o.value} for o in identity.overrides
    }
    audit.record(
        actor,
        "delete",
        "identity",
        object_id=identity.id,
        object_label=identity.identifier,
        project_id=project_id,
        environment_id=environment_id,
        identity_id=identity.id,
        before={"identifier": identity.identifier, "traits": traits, "overrides": overrides},
    )
    _delete_ids([identity_id])
    if summary.override_count:
        revisions.bump_environment(environment_id)
    db.session.commit()
    return summary


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]


def _delete_ids(ids: Sequence[int]) -> None:
    """Delete identities and everything hanging off them, in chunks of bound ids."""
    for chunk in _chunks(ids):
        for model in (Trait, IdentityOverride, IdentityLink):
            db.session.execute(
                delete(model)
                .where(model.identity_id.in_(chunk))
                .execution_options(synchronize_session=False)
            )
        db.session.execute(
            delete(Identity)
            .where(Identity.id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    db.session.expire_all()


# ----------------------------------------------------------------------------- bulk


BULK_ACTIONS = ("delete", "override", "remove_overrides", "erase")


@dataclass(frozen=True)
class BulkRequest:
    """A bulk action on everything a search matches."""

    action: str
    query: str
    has_overrides: bool = False
    feature_id: int | None = None
    enabled: bool = False
    value: TypedValue = None
    # Rows the user ticked: the action applies to those the search matches (none: all).
    ids: tuple[int, ...] = ()

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"query": self.query, "has_overrides": self.has_overrides}
        if self.ids:
            described["selected"] = len(self.ids)
        return described


def _feature(project_id: int, feature_id: int | None) -> Feature | None:
    return None if feature_id is None else catalog.chosen_feature(project_id, feature_id)


def _clauses(environment_id: int, request: BulkRequest) -> list[ColumnElement[bool]]:
    if request.action not in BULK_ACTIONS:
        raise ValidationError("Unknown bulk action.", "action")
    if request.action == "override" and request.feature_id is None:
        raise ValidationError("Choose the feature to override.", "feature_id")
    clauses = filter_clauses(environment_id, parse_query(request.query), request.has_overrides)
    if request.ids:
        clauses.append(Identity.id.in_(request.ids))
    if request.action == "remove_overrides":
        having = [IdentityOverride.identity_id == Identity.id]
        if request.feature_id is not None:
            having.append(IdentityOverride.feature_id == request.feature_id)
        clauses.append(exists().where(*having))
    return clauses


def preview_bulk(project_id: int, environment_id: int, request: BulkRequest) -> int:
    """Count the identities a bulk action would change (the dry run), changing nothing.

    :return: the number of identities affected.
    :raises ValidationError: malformed query, unknown action or a foreign feature.
    """
    _feature(project_id, request.feature_id)
    return count_exact(_clauses(environment_id, request))


def apply_bulk(
    actor: User, project_id: int, environment_id: int, request: BulkRequest, expected: int
) -> int:
    """Apply a bulk action to every identity the search matches, as one audited change.

    :param expected: the count the user confirmed; if the result changed since the dry run,
        nothing is changed and a ValidationError says so.
    :return: the number of identities affected.
    :raises ValidationError: malformed request, or a result that no longer has ``expected`` rows.
    """
    feature = None if request.action == "erase" else _feature(project_id, request.feature_id)
    # The ids are read once, so each step changes exactly the rows that were counted (a step
    # may change what the query matches, e.g. deleting traits the query tests).
    ids = list(db.session.scalars(select(Identity.id).where(*_clauses(environment_id, request))))
    affected = len(ids)
    if affected != expected:
        raise ValidationError(
            f"The search now matches {humanize.plural(affected, 'identity')}, not {expected:,}; "
            "check the new count and confirm again.",
            "expected",
        )
    if request.action == "erase":
        # Audited there without the search, which may quote the erased data.
        return erase.erase_identities(actor, project_id, environment_id, ids)
    after = _run_bulk(actor, environment_id, request, feature, ids)
    audit.record(
        actor,
        f"bulk_{request.action}",
        "identity",
        object_label=f"search “{request.query}”" if request.query else "all identities",
        project_id=project_id,
        environment_id=environment_id,
        before=request.describe(),
        after=after,
        count=affected,
    )
    revisions.bump_environment(environment_id)
    db.session.commit()
    return affected


def _run_bulk(
    actor: User,
    environment_id: int,
    request: BulkRequest,
    feature: Feature | None,
    ids: Sequence[int],
) -> dict[str, Any] | None:
    if request.action == "delete":
        _delete_ids(ids)
        return {"deleted": True}
    if request.action == "remove_overrides":
        for chunk in _chunks(ids):
            removal = delete(IdentityOverride).where(IdentityOverride.identity_id.in_(chunk))
            if feature is not None:
                removal = removal.where(IdentityOverride.feature_id == feature.id)
            db.session.execute(removal.execution_options(synchronize_session=False))
        db.session.expire_all()
        return {"removed_overrides": feature.name if feature is not None else "all"}
    assert feature is not None
    _set_overrides(actor, environment_id, feature.id, request, ids)
    return {"feature": feature.name, "enabled": request.enabled, "value": request.value}


def _set_overrides(
    actor: User, environment_id: int, feature_id: int, request: BulkRequest, ids: Sequence[int]
) -> None:
    """Update existing overrides of the feature, then insert the missing ones, in chunks."""
    value_type, value_text = encode_value(request.value)
    row = {
        "feature_id": feature_id,
        "environment_id": environment_id,
        "enabled": request.enabled,
        "value_type": value_type,
        "value_text": value_text,
        "created_by_id": actor.id,
    }
    for chunk in _chunks(ids):
        having = set(
            db.session.scalars(
                select(IdentityOverride.identity_id).where(
                    IdentityOverride.feature_id == feature_id,
                    IdentityOverride.identity_id.in_(chunk),
                )
            )
        )
        if having:
            db.session.execute(
                update(IdentityOverride)
                .where(
                    IdentityOverride.feature_id == feature_id,
                    IdentityOverride.identity_id.in_(having),
                )
                .values(
                    enabled=request.enabled,
                    value_type=value_type,
                    value_text=value_text,
                    option_id=None,
                    expires_at=None,
                    version=IdentityOverride.version + 1,
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
        missing = [{**row, "identity_id": i} for i in chunk if i not in having]
        if missing:
            db.session.execute(insert(IdentityOverride), missing)
    db.session.expire_all()


# ----------------------------------------------------------------------------- columns


MAX_TRAIT_COLUMNS = trait_columns.MAX_TRAIT_COLUMNS


def chosen_trait_columns(user: User, environment_id: int, offered: Sequence[str]) -> list[str]:
    """Return the trait keys the user shows as columns here (default: the environment's)."""
    chosen = user.preferences.get("trait_columns", {}).get(str(environment_id))
    if isinstance(chosen, list):
        return [key for key in chosen if isinstance(key, str)][:MAX_TRAIT_COLUMNS]
    return trait_columns.default_columns(environment_id)


def save_trait_columns(user: User, environment_id: int, keys: Sequence[str]) -> list[str]:
    """Remember which trait keys the user shows as columns in this environment.

    :raises ValidationError: too many keys, or a key that cannot be a trait key.
    """
    cleaned = trait_columns.clean_keys(keys)
    preferences = dict(user.preferences or {})
    columns = dict(preferences.get("trait_columns", {}))
    columns[str(environment_id)] = cleaned
    preferences["trait_columns"] = columns
    user.preferences = preferences  # a new dict, so the JSON column is seen as changed
    db.session.commit()
    return cleaned


def project_features(project_id: int) -> list[Feature]:
    """Return the project's features by name (the bulk override choices)."""
    return list(
        db.session.scalars(
            select(Feature).where(Feature.project_id == project_id).order_by(Feature.name)
        )
    )
