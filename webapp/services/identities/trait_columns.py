"""Which trait columns the Users page shows: the user's choice, the environment's, or the commonest.

A person's own choice wins. Without one, the columns an admin saved for the environment; without
those, the trait keys most identities have (ties by name), so a key one SDK sends to a few
identities (``aaa``) never takes over everyone's columns because of how it sorts.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from ...extensions import db
from ...models import Identity, Trait, TraitColumnDefault, User
from ...models.identity import TRAIT_KEY_MAX
from .. import audit
from ..errors import ValidationError

MAX_TRAIT_COLUMNS = 8
DEFAULT_COLUMN_COUNT = 3
# The commonest keys are counted over the newest identities only, so the query reads a bounded
# number of rows (an index range on identities, then the traits' (identity_id, key) index)
# at a million identities as at ten.
SAMPLE_IDENTITIES = 1000


def clean_keys(keys: Sequence[str]) -> list[str]:
    """Drop blanks and repeats from chosen trait keys, keeping their order.

    :raises ValidationError: too many keys, or a key longer than a trait key can be.
    """
    cleaned = list(dict.fromkeys(key.strip() for key in keys if key.strip()))
    if len(cleaned) > MAX_TRAIT_COLUMNS:
        raise ValidationError(f"Choose at most {MAX_TRAIT_COLUMNS} trait columns.", "columns")
    if any(len(key) > TRAIT_KEY_MAX for key in cleaned):
        raise ValidationError(f"A trait key has at most {TRAIT_KEY_MAX} characters.", "columns")
    return cleaned


def common_keys(environment_id: int, limit: int = DEFAULT_COLUMN_COUNT) -> list[str]:
    """Return the trait keys most of the newest identities have, commonest first, ties by name."""
    # Two steps on purpose: with the ids as a list, PostgreSQL probes the traits'
    # (identity_id, key) index for each; joined to a subquery it may read every trait instead.
    newest = list(
        db.session.scalars(
            select(Identity.id)
            .where(Identity.environment_id == environment_id)
            .order_by(Identity.created_at.desc(), Identity.id.desc())
            .limit(SAMPLE_IDENTITIES)
        )
    )
    if not newest:
        return []
    count = func.count()
    query = (
        select(Trait.key)
        .where(Trait.identity_id.in_(newest))
        .group_by(Trait.key)
        .order_by(count.desc(), Trait.key)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def saved_default(environment_id: int) -> list[str] | None:
    """Return the columns an admin saved for the environment, or None when there are none."""
    row = db.session.get(TraitColumnDefault, environment_id)
    if row is None or not row.keys:
        return None
    return [key for key in row.keys if isinstance(key, str)][:MAX_TRAIT_COLUMNS]


def default_columns(environment_id: int) -> list[str]:
    """Return the columns shown to someone who has not chosen any in this environment."""
    saved = saved_default(environment_id)
    return saved if saved is not None else common_keys(environment_id)


def save_default(
    actor: User, project_id: int, environment_id: int, keys: Sequence[str]
) -> list[str]:
    """Make ``keys`` everyone's default columns here (no keys: back to the commonest); audited.

    :raises ValidationError: too many keys, or one too long.
    """
    cleaned = clean_keys(keys)
    row = db.session.get(TraitColumnDefault, environment_id)
    before = list(row.keys) if row is not None and row.keys else None
    if row is None:
        row = TraitColumnDefault(environment_id=environment_id, keys=cleaned)
        db.session.add(row)
    else:
        row.keys = cleaned
    after = cleaned or None
    if before != after:
        audit.record(
            actor,
            "update",
            "trait_columns",
            object_id=environment_id,
            object_label="Default trait columns on the Users page",
            project_id=project_id,
            environment_id=environment_id,
            before=before,
            after=after,
        )
    db.session.commit()
    return cleaned
