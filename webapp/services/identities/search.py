"""Search an environment's identities: a small query language, keyset pages, fast counts.

The query language (see its docstring) is parsed by ``search_query`` and turned into
WHERE clauses by ``search_sql``; this module chooses the plan, fetches keyset pages
and counts. Their public names are re-exported here. Every value reaches the database as a
bound parameter; the sort key comes from a whitelist, so nothing the user types is ever
spliced into SQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select, text
from sqlalchemy.orm import aliased

from ...extensions import db
from ...models import Identity, IdentityOverride, Trait, TypedValue
from ...models.base import decode_value
from .search_query import (
    MAX_CLAUSES,
    MAX_QUERY_LENGTH,
    Condition,
    IdentifierTerm,
    Literal,
    ParsedQuery,
    parse_query,
)
from .search_sql import (
    SEARCH_SQL,
    condition_sql,
    decode_cursor,
    encode_cursor,
    filter_clauses,
    identifier_sql,
    keyset,
    trait_predicate,
    walk_sql,
)

__all__ = [
    "COUNT_CAP",
    "DEFAULT_SORT",
    "MAX_CLAUSES",
    "MAX_QUERY_LENGTH",
    "PER_PAGE",
    "SELECTIVE_CAP",
    "SORTS",
    "Condition",
    "IdentifierTerm",
    "IdentityRow",
    "Literal",
    "ParsedQuery",
    "SearchPage",
    "Total",
    "count_exact",
    "count_identities",
    "count_matches",
    "decode_cursor",
    "encode_cursor",
    "filter_clauses",
    "page_clauses",
    "parse_query",
    "search_identities",
    "trait_keys",
]

COUNT_CAP = 10_000
PER_PAGE = 50
SORTS = ("identifier", "-identifier", "created", "-created", "last_seen", "-last_seen")
DEFAULT_SORT = "identifier"


# A trait condition matching at most this many traits drives the page query (its ids are
# read from the (environment_id, key, value_*) index, then sorted); above it, the page walks
# the sort index and tests every condition per row, stopping after one page.
SELECTIVE_CAP = 2000
_DRIVABLE = frozenset(name for name, way in SEARCH_SQL.items() if way.has and way.indexed)


def _selectivity(environment_id: int, condition: Condition) -> int:
    """Count (up to SELECTIVE_CAP + 1) the traits matching a condition, on its index."""
    trait = aliased(Trait)
    predicate = trait_predicate(trait, condition)
    matching = (
        select(trait.key)  # a column of the index: an index-only scan once vacuumed
        .where(trait.environment_id == environment_id, trait.key == condition.key)
        .where(*([] if predicate is None else [predicate]))
        .limit(SELECTIVE_CAP + 1)
        .subquery()
    )
    return db.session.scalar(select(func.count()).select_from(matching)) or 0


@dataclass(frozen=True)
class _Plan:
    """The condition to drive from (fewest matching traits) and whether it is selective."""

    driver: Condition | None = None
    selective: bool = False


def _plan(environment_id: int, query: ParsedQuery) -> _Plan:
    best: tuple[int, Condition] | None = None
    for condition in query.conditions:
        if condition.op in _DRIVABLE:
            found = _selectivity(environment_id, condition)
            if best is None or found < best[0]:
                best = (found, condition)
    if best is None:
        return _Plan()
    return _Plan(best[1], best[0] <= SELECTIVE_CAP)


def page_clauses(
    environment_id: int,
    query: ParsedQuery,
    has_overrides: bool = False,
    plan: _Plan | None = None,
) -> list[ColumnElement[bool]]:
    """Like ``filter_clauses``, shaped for fetching one sorted page fast.

    PostgreSQL's row estimates for correlated (key, value) pairs can be off by 100x, so the
    plan is chosen here from a capped count: a selective condition becomes an ``IN`` on the
    trait index; otherwise conditions become per-row probes while walking the sort index.
    """
    plan = plan if plan is not None else _plan(environment_id, query)
    driver = plan.driver if plan.selective else None
    clauses: list[ColumnElement[bool]] = [Identity.environment_id == environment_id]
    if query.identifier is not None:
        clauses.append(identifier_sql(query.identifier))
    for condition in query.conditions:
        if condition is driver:
            trait = aliased(Trait)
            predicate = trait_predicate(trait, condition)
            ids = select(trait.identity_id).where(
                trait.environment_id == environment_id, trait.key == condition.key
            )
            clauses.append(Identity.id.in_(ids.where(*([] if predicate is None else [predicate]))))
        elif driver is not None:
            clauses.append(condition_sql(environment_id, condition))
        else:
            clauses.append(walk_sql(environment_id, condition))
    if has_overrides:
        clauses.append(exists().where(IdentityOverride.identity_id == Identity.id))
    return clauses


# ----------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class Total:
    """How many identities match: exact up to the cap, else an estimate or a floor."""

    value: int
    exact: bool

    @property
    def label(self) -> str:
        if self.exact:
            return f"{self.value:,}"
        if self.value > COUNT_CAP:
            return f"about {self.value:,}"
        return f"more than {COUNT_CAP:,}"


def _planner_estimate(statement: Select[Any]) -> int:
    connection = db.session.connection()
    compiled = statement.compile(dialect=connection.dialect)
    explained = connection.exec_driver_sql(
        "EXPLAIN (FORMAT JSON) " + compiled.string, compiled.params
    ).scalar_one()
    plan = explained if isinstance(explained, list) else json.loads(explained)
    return int(plan[0]["Plan"]["Plan Rows"])


def _capped_count(environment_id: int, query: ParsedQuery, has_overrides: bool, plan: _Plan) -> int:
    """Count up to COUNT_CAP + 1 matches, walking the driver's trait index when there is one.

    Per-row probes for the other conditions keep this bounded by the cap, whatever the
    size of the environment (a hash join would read every trait of the driver).
    """
    if plan.driver is None:
        clauses = page_clauses(environment_id, query, has_overrides, plan)
        capped = select(Identity.id).where(*clauses).limit(COUNT_CAP + 1).subquery()
        return db.session.scalar(select(func.count()).select_from(capped)) or 0
    driver = aliased(Trait)
    predicate = trait_predicate(driver, plan.driver)
    owner = driver.identity_id
    others = [walk_sql(environment_id, c, owner) for c in query.conditions if c is not plan.driver]
    if query.identifier is not None or has_overrides:
        own = filter_clauses(environment_id, ParsedQuery(query.identifier), has_overrides)
        others.append(select(Identity.id).where(Identity.id == owner, *own).exists())
    statement = (
        select(driver.id)
        .where(driver.environment_id == environment_id, driver.key == plan.driver.key)
        .where(*([] if predicate is None else [predicate]), *others)
        .limit(COUNT_CAP + 1)
        .subquery()
    )
    return db.session.scalar(select(func.count()).select_from(statement)) or 0


def count_matches(
    environment_id: int, query: ParsedQuery, has_overrides: bool = False, plan: _Plan | None = None
) -> Total:
    """Count matching identities exactly up to 10,000; above that estimate (PostgreSQL).

    :return: the total; on SQLite an uncapped total is reported as "more than 10,000".
    """
    plan = plan if plan is not None else _plan(environment_id, query)
    if db.session.get_bind().dialect.name == "postgresql":
        # The capped count looks costly to the planner, whose JIT then spends ~7 ms
        # compiling a query that runs in ~30; LOCAL ends with this (read-only) transaction.
        db.session.execute(text("SET LOCAL jit = off"))
    found = _capped_count(environment_id, query, has_overrides, plan)
    if found <= COUNT_CAP:
        return Total(found, True)
    if db.session.get_bind().dialect.name == "postgresql":
        clauses = filter_clauses(environment_id, query, has_overrides)
        estimate = _planner_estimate(select(Identity.id).where(*clauses))
        return Total(estimate if estimate > COUNT_CAP else COUNT_CAP, False)
    return Total(COUNT_CAP, False)


def count_identities(environment_id: int, query: str, *, has_overrides: bool = False) -> Total:
    """Count the identities matching a search box query (exact up to the cap).

    :raises ValidationError: when the query is malformed.
    """
    parsed = parse_query(query)
    return count_matches(environment_id, parsed, has_overrides, _plan(environment_id, parsed))


def count_exact(clauses: Sequence[ColumnElement[bool]]) -> int:
    """Count every matching identity (for bulk-action dry runs)."""
    return db.session.scalar(select(func.count(Identity.id)).where(*clauses)) or 0


# ----------------------------------------------------------------------------- paging


@dataclass(frozen=True)
class IdentityRow:
    id: int
    identifier: str
    created_at: datetime
    last_seen_at: datetime
    override_count: int
    trait_count: int = 0
    traits: dict[str, TypedValue] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchPage:
    rows: list[IdentityRow]
    total: Total | None  # None when the caller counts separately (``count_identities``)
    sort: str
    next_cursor: str | None
    prev_cursor: str | None


def _counts(model: Any, ids: list[int]) -> dict[int, int]:
    counted = db.session.execute(
        select(model.identity_id, func.count())
        .where(model.identity_id.in_(ids))
        .group_by(model.identity_id)
    )
    return {identity_id: n for identity_id, n in counted}


def _trait_values(ids: list[int], trait_columns: Sequence[str]) -> dict[int, dict[str, TypedValue]]:
    traits: dict[int, dict[str, TypedValue]] = {i: {} for i in ids}
    if ids and trait_columns:
        found = db.session.execute(
            select(Trait.identity_id, Trait.key, Trait.value_type, Trait.value_text).where(
                Trait.identity_id.in_(ids), Trait.key.in_(list(trait_columns))
            )
        )
        for identity_id, key, kind, value_text in found:
            traits[identity_id][key] = decode_value(kind, value_text)
    return traits


def search_identities(
    environment_id: int,
    query: str,
    *,
    has_overrides: bool = False,
    sort: str = DEFAULT_SORT,
    after: str | None = None,
    before: str | None = None,
    trait_columns: Sequence[str] = (),
    per_page: int = PER_PAGE,
    with_total: bool = True,
) -> SearchPage:
    """Return one keyset page of the identities matching a query, with a fast total.

    :param query: search box text (see the ``search_query`` docstring).
    :param sort: one of ``SORTS``; anything else falls back to ``identifier``.
    :param after: cursor of the last row of the previous page (next page).
    :param before: cursor of the first row of the following page (previous page).
    :param trait_columns: trait keys whose values are loaded for each row.
    :param with_total: count the matches too; the Users page leaves this to its own request.
    :return: the page with cursors for its neighbours.
    :raises ValidationError: when the query is malformed.
    """
    sort = sort if sort in SORTS else DEFAULT_SORT
    parsed = parse_query(query)
    plan = _plan(environment_id, parsed)
    clauses = page_clauses(environment_id, parsed, has_overrides, plan)
    fetched, has_prev, has_next = _fetch_page(clauses, sort, after, before, per_page)
    return SearchPage(
        rows=_rows(fetched, trait_columns),
        total=count_matches(environment_id, parsed, has_overrides, plan) if with_total else None,
        sort=sort,
        next_cursor=_cursor_at(sort, fetched[-1]) if fetched and has_next else None,
        prev_cursor=_cursor_at(sort, fetched[0]) if fetched and has_prev else None,
    )


def _fetch_page(
    clauses: Sequence[ColumnElement[bool]],
    sort: str,
    after: str | None,
    before: str | None,
    per_page: int,
) -> tuple[list[Any], bool, bool]:
    """Run the keyset query; return the rows in display order and (has previous, has next)."""
    forward = True
    cursor = decode_cursor(sort, after)
    if cursor is None and not after:
        cursor = decode_cursor(sort, before)
        forward = cursor is None
    base = select(
        Identity.id,
        Identity.identifier,
        Identity.identifier_prefix,
        Identity.created_at,
        Identity.last_seen_at,
    ).where(*clauses)
    fetched = list(db.session.execute(keyset(base, sort, cursor, forward).limit(per_page + 1)))
    more = len(fetched) > per_page
    fetched = fetched[:per_page]
    if not forward:
        fetched.reverse()
    has_next = more if forward else True
    has_prev = cursor is not None if forward else more
    return fetched, has_prev, has_next


def _rows(fetched: Sequence[Any], trait_columns: Sequence[str]) -> list[IdentityRow]:
    ids = [r.id for r in fetched]
    if not ids:
        return []
    overrides, trait_counts = _counts(IdentityOverride, ids), _counts(Trait, ids)
    traits = _trait_values(ids, trait_columns)
    return [
        IdentityRow(
            r.id,
            r.identifier,
            r.created_at,
            r.last_seen_at,
            overrides.get(r.id, 0),
            trait_counts.get(r.id, 0),
            traits[r.id],
        )
        for r in fetched
    ]


def _cursor_at(sort: str, row: Any) -> str:
    value = {"identifier": row.identifier_prefix, "created": row.created_at}.get(
        sort.lstrip("-"), row.last_seen_at
    )
    return encode_cursor(sort, value, row.id)


# ----------------------------------------------------------------------------- trait keys


_KEYS_SQL = text(
    """
    WITH RECURSIVE seen(key, n) AS (
        SELECT MIN(key), 1 FROM traits WHERE environment_id = :environment_id
        UNION ALL
        SELECT (SELECT MIN(t.key) FROM traits t
                WHERE t.environment_id = :environment_id AND t.key > seen.key), seen.n + 1
        FROM seen WHERE seen.key IS NOT NULL AND seen.n < :limit
    )
    SELECT key FROM seen WHERE key IS NOT NULL
    """
)


def trait_keys(environment_id: int, limit: int = 100) -> list[str]:
    """Return the distinct trait keys used in an environment, in order, up to ``limit``.

    A recursive "skip scan" over the (environment_id, key, ...) index: one index probe per
    distinct key, instead of reading every trait row.
    """
    found = db.session.execute(_KEYS_SQL, {"environment_id": environment_id, "limit": limit})
    return [key for (key,) in found]
