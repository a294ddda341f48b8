"""Segment membership in SQL over the traits table, identity for identity equal to evaluation.

Each condition becomes two SQL formulas over an identity: ``surely`` (the condition
certainly holds) and ``maybe`` (it may hold). Where SQL expresses SPEC §2 exactly, which
covers every trait type and nearly every operator, the two are one formula and a count is
one query. Where it cannot (PERCENTAGE_SPLIT, REGEX beyond a literal prefix, semver,
identity JSONPaths, MODULO on numbers past 2**63, huge integer values on SQLite),
``maybe`` widens and ``surely`` narrows. Quantifiers combine them (NONE swaps them), so
members = ``surely`` plus the ``maybe and not surely`` candidates, all within the
translation's ``doubt``, that the evaluation module checks in Python.

Counts render as set algebra over covering trait indexes (``sql_translate``);
member pages and Python candidates as WHERE clauses over identities.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Select, and_, any_, bindparam, case, false, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from ...evaluation import SegmentInput
from ...evaluation.segments import CompiledSegment, Subject, trait_keys
from ...extensions import db
from ...models import Environment, Identity, Trait, decode_value
from .. import regex_guard
from ..errors import NotFound
from .sql_rows import BIG, FALSE, HUGE_TEXT, TRUE, Expr, RowPair, Scope, all_of, negate
from .sql_translate import (
    Translation,
    count_select,
    id_select,
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
    "count_queries",
    "member_ids",
    "member_ids_prepared",
    "negate",
    "prepare",
    "python_members",
    "rules_from_document",
    "translate",
    "translate_condition",
    "translate_rule",
    "tune",
]

BATCH = 2000


# ---- running translations -----------------------------------------------------------
RulesDocument = Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Membership:
    """A segment ready to count: its SQL translation and its compiled Python check
    (which reads only ``trait_keys``)."""

    scope: Scope
    translation: Translation
    segment: CompiledSegment
    trait_keys: frozenset[str]


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
        environment.id,
        environment.identity_hashing_key,
        environment.name,
        db.engine.name,
        segment_key,
    )
    parsed = rules_from_document(rules)
    refused = regex_guard.refused_patterns(parsed)  # they never match, never stall
    compiled = CompiledSegment(SegmentInput(key=segment_key, name="", rules=parsed), 0, refused)
    return Membership(scope, translate(scope, parsed), compiled, trait_keys(parsed))


def tune(scope: Scope) -> None:
    """Set the current transaction up for membership queries (PostgreSQL work_mem)."""
    # NOT IN (subquery) stays a hashed subplan, and set operations hash, only if the
    # hash fits in work_mem. JIT compiling these one-off expressions costs more than
    # it saves (hundreds of milliseconds at a million identities).
    if scope.dialect == "postgresql":
        # One round trip: SET LOCAL both, as set_config(..., is_local => true).
        db.session.execute(
            text("SELECT set_config('work_mem', '128MB', true), set_config('jit', 'off', true)")
        )


def count_queries(membership: Membership) -> list[Select[Any]]:
    """Return the statements ``count_prepared`` runs (for EXPLAIN), after ``tune``.

    :param membership: the prepared segment
    :return: the SQL count, then (when SQL is not exact) the undecided ids' query
    """
    tr = membership.translation
    queries = [] if tr.sure is False else [count_select(membership.scope, tr.sure)]
    if not tr.exact:
        where = all_of([tr.undecided, tr.maybe, negate(tr.surely)])
        queries.append(_unsure_query(membership, where))
    return queries


def _among(scope: Scope, ids: Sequence[int]) -> Expr:
    """``Identity.id`` is one of ``ids``: one array parameter on PostgreSQL.

    An expanded ``IN`` of thousands of parameters costs more to render, convert and plan
    than reading the rows it selects; SQLite takes the ``IN`` list cheaply.
    """
    if scope.dialect == "postgresql":
        return Identity.id == any_(bindparam("ids", list(ids), type_=ARRAY(Integer)))
    return Identity.id.in_(ids)


def python_members(membership: Membership, ids: Sequence[int]) -> set[int]:
    """Return the ids among ``ids`` that the evaluation module puts in the segment.

    :param membership: the prepared segment
    :param ids: identity ids of its environment
    :return: the matching ids
    """
    if not ids:
        return set()
    scope, keys = membership.scope, sorted(membership.trait_keys)
    # One statement: each identifier with the trait rows the segment reads (a row of
    # None for an identity without any; no join when the rules read no trait).
    traits_read = and_(Trait.identity_id == Identity.id, Trait.key.in_(keys))
    query = select(Identity.id, Identity.identifier, Trait.key, Trait.value_type, Trait.value_text)
    rows = db.session.execute(
        query.outerjoin(Trait, traits_read if keys else false()).where(_among(scope, ids))
    )
    identifiers: dict[int, str] = {}
    traits: dict[int, dict[str, Any]] = {}
    for identity_id, identifier, key, kind, value_text in rows:
        if identity_id not in identifiers:
            identifiers[identity_id] = identifier
            traits[identity_id] = {}
        if key is not None:
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


def _unsure_query(membership: Membership, where: Expr) -> Select[Any]:
    return select(Identity.id).where(
        Identity.environment_id == membership.scope.environment_id, where
    )


def _unsure_ids(membership: Membership) -> Iterable[list[int]]:
    """Yield batches of ids that SQL could not decide (maybe but not surely).

    One query, streamed ``BATCH`` rows at a time (a server-side cursor on PostgreSQL):
    keyset pages would run every trait subquery again per page, hashing each key's rows
    once per 2,000 candidates (9.5 of 13 s for 150,000 candidates of 200,000 identities).
    """
    tr = membership.translation
    where = all_of([tr.undecided, tr.maybe, negate(tr.surely)])
    if where is FALSE:
        return
    query = _unsure_query(membership, where).execution_options(yield_per=BATCH)
    for ids in db.session.scalars(query).partitions():
        yield list(ids)


def count_prepared(membership: Membership) -> int:
    """Count a prepared segment's members (SQL, plus Python for undecided identities)."""
    tune(membership.scope)
    tr = membership.translation
    total = 0
    if tr.sure is not False:
        total = int(db.session.scalar(count_select(membership.scope, tr.sure)) or 0)
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


def _exact_page(membership: Membership, after_id: int, limit: int) -> list[int]:
    # The member set from trait index scans (as counted), then its first ids: bounded
    # by the count's cost however sparse the members are along the id order.
    ids = id_select(membership.scope, membership.translation.sure).subquery()
    column = ids.c.identity_id
    query = select(column).where(column > after_id).order_by(column).limit(limit)
    return list(db.session.scalars(query))


def member_ids_prepared(
    membership: Membership,
    *,
    after_id: int | None = None,
    limit: int = 50,
    search: str | None = None,
) -> list[int]:
    """Return member ids in id order after ``after_id`` (keyset pagination)."""
    tr, scope = membership.translation, membership.scope
    if tr.maybe is FALSE or limit <= 0:
        return []
    tune(scope)
    cursor = after_id or 0
    if tr.exact and not search:
        return _exact_page(membership, cursor, limit)
    sure = tr.surely if tr.surely in (TRUE, FALSE) else case((tr.surely, True), else_=False)
    batch = limit if tr.exact else max(limit, 500)
    found: list[int] = []
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
