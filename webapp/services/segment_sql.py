"""Segment membership in SQL over the traits table, identity for identity equal to evaluation.

Each condition becomes two SQL predicates over an identity: ``surely`` (the condition
certainly holds) and ``maybe`` (it may hold). Where SQL expresses SPEC §2 exactly the two
are one expression; where it cannot (PERCENTAGE_SPLIT, most REGEX, semver, identity
JSONPaths, numbers beyond 2**53) ``maybe`` widens and ``surely`` narrows. Quantifiers
combine them (NONE swaps them), so members = ``surely`` plus the ``maybe and not surely``
candidates the evaluation module checks in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, select, text

from ..evaluation import Segment as EvalSegment
from ..evaluation.segments import CompiledSegment, Subject
from ..extensions import db
from ..models import Environment, Identity, Trait, decode_value
from .errors import NotFound
from .segment_sql_rows import (
    _FALSE,
    _TRUE,
    BIG,
    HUGE_TEXT,
    Expr,
    RowPair,
    Scope,
    _and,
    _not,
    all_of,
    negate,
)
from .segment_sql_translate import (
    Translation,
    rules_from_document,
    translate,
    translate_condition,
    translate_rule,
)

__all__ = [
    "BATCH",
    "BIG",
    "HUGE_TEXT",
    "Expr",
    "Membership",
    "RowPair",
    "RulesDocument",
    "Scope",
    "Translation",
    "all_of",
    "count_members",
    "count_prepared",
    "member_ids",
    "member_ids_prepared",
    "negate",
    "prepare",
    "python_members",
    "rules_from_document",
    "translate",
    "translate_condition",
    "translate_rule",
]

BATCH = 2000


# ---- running translations -----------------------------------------------------------
RulesDocument = Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Membership:
    """A segment ready to count: its SQL translation and its compiled Python check."""

    scope: Scope
    translation: Translation
    segment: CompiledSegment


def prepare(environment_id: int, rules: RulesDocument, segment_key: str) -> Membership:
    """Translate and compile a segment's rules for one environment.

    :param environment_id: the environment whose identities are tested
    :param rules: ``Segment.rules`` in the Flagsmith document shape
    :param segment_key: ``Segment.hash_id`` (PERCENTAGE_SPLIT hashes it)
    :return: the prepared membership
    :raises NotFound: when the environment does not exist
    """
    environment = db.session.get(Environment, environment_id)
    if environment is None:
        raise NotFound("environment not found")
    scope = Scope(
        environment.id, environment.client_key, environment.name, db.engine.name, segment_key
    )
    parsed = rules_from_document(rules)
    compiled = CompiledSegment(EvalSegment(key=segment_key, name="", rules=parsed), 0)
    return Membership(scope, translate(scope, parsed), compiled)


def _tune(scope: Scope) -> None:
    # NOT IN (subquery) stays a hashed subplan only if the hash fits in work_mem.
    if scope.dialect == "postgresql":
        db.session.execute(text("SET LOCAL work_mem = '128MB'"))


def _count(scope: Scope, where: Expr) -> int:
    if where is _FALSE:
        return 0
    query = select(func.count()).select_from(Identity)
    query = query.where(Identity.environment_id == scope.environment_id, where)
    return int(db.session.scalar(query) or 0)


def python_members(membership: Membership, ids: Sequence[int]) -> set[int]:
    """Return the ids among ``ids`` that the evaluation module puts in the segment.

    :param membership: the prepared segment
    :param ids: identity ids of its environment
    :return: the matching ids
    """
    if not ids:
        return set()
    scope = membership.scope
    identifiers = dict(
        db.session.execute(
            select(Identity.id, Identity.identifier).where(Identity.id.in_(ids))
        ).all()
    )
    traits: dict[int, dict[str, Any]] = {i: {} for i in identifiers}
    rows = db.session.execute(
        select(Trait.identity_id, Trait.key, Trait.value_type, Trait.value_text).where(
            Trait.identity_id.in_(ids)
        )
    )
    for identity_id, key, kind, value_text in rows:
        traits[identity_id][key] = decode_value(kind, value_text)
    matches = membership.segment.matches
    return {
        identity_id
        for identity_id, identifier in identifiers.items()
        if matches(
            Subject(
                identifier,
                f"{scope.environment_key}_{identifier}",
                traits[identity_id],
                scope.environment_key,
                scope.environment_name,
            )
        )
    }


def _search(query: Select[Any], search: str | None) -> Select[Any]:
    if search:
        return query.where(Identity.identifier.icontains(search, autoescape=True))
    return query


def _unsure_ids(membership: Membership, cap: int | None = None) -> Iterable[list[int]]:
    """Yield batches of ids that SQL could not decide (maybe but not surely)."""
    tr = membership.translation
    where = _and([tr.maybe, _not(tr.surely)])
    if where is _FALSE:
        return
    after, seen = 0, 0
    while cap is None or seen < cap:
        query = select(Identity.id).where(
            Identity.environment_id == membership.scope.environment_id,
            Identity.id > after,
            where,
        )
        ids = list(db.session.scalars(query.order_by(Identity.id).limit(BATCH)))
        if not ids:
            return
        yield ids
        seen += len(ids)
        after = ids[-1]
        if len(ids) < BATCH:
            return


def count_prepared(membership: Membership) -> int:
    """Count a prepared segment's members (SQL, plus Python for undecided identities)."""
    _tune(membership.scope)
    total = _count(membership.scope, membership.translation.surely)
    if not membership.translation.exact:
        for ids in _unsure_ids(membership):
            total += len(python_members(membership, ids))
    return total


def count_members(environment_id: int, rules: RulesDocument, segment_key: str) -> int:
    """Count the identities of an environment that belong to a segment.

    :param environment_id: the environment
    :param rules: ``Segment.rules`` (document shape)
    :param segment_key: ``Segment.hash_id``
    :return: the number of members, equal to evaluating every identity
    """
    return count_prepared(prepare(environment_id, rules, segment_key))


def member_ids_prepared(
    membership: Membership,
    *,
    after_id: int | None = None,
    limit: int = 50,
    search: str | None = None,
) -> list[int]:
    """Return member ids in id order after ``after_id`` (keyset pagination)."""
    tr, scope = membership.translation, membership.scope
    if tr.maybe is _FALSE or limit <= 0:
        return []
    _tune(scope)
    sure = tr.surely if tr.surely in (_TRUE, _FALSE) else case((tr.surely, True), else_=False)
    batch = limit if tr.exact else max(limit, 500)
    found: list[int] = []
    cursor = after_id or 0
    while True:
        query = select(Identity.id, sure).where(
            Identity.environment_id == scope.environment_id, Identity.id > cursor, tr.maybe
        )
        rows = db.session.execute(_search(query, search).order_by(Identity.id).limit(batch)).all()
        checked = python_members(membership, [r[0] for r in rows if not r[1]])
        for identity_id, surely in rows:
            if surely or identity_id in checked:
                found.append(identity_id)
                if len(found) == limit:
                    return found
        if len(rows) < batch:
            return found
        cursor = rows[-1][0]


def member_ids(
    environment_id: int,
    rules: RulesDocument,
    segment_key: str,
    *,
    after_id: int | None = None,
    limit: int = 50,
    search: str | None = None,
) -> list[int]:
    """Return the ids of a segment's members, ascending, after ``after_id``.

    :param environment_id: the environment
    :param rules: ``Segment.rules`` (document shape)
    :param segment_key: ``Segment.hash_id``
    :param after_id: the last id of the previous page (keyset pagination)
    :param limit: page size
    :param search: identifier substring filter (case-insensitive)
    :return: up to ``limit`` identity ids
    """
    membership = prepare(environment_id, rules, segment_key)
    return member_ids_prepared(membership, after_id=after_id, limit=limit, search=search)
