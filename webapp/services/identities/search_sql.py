"""SQL for an identity search: a parsed query (``search_query``) as WHERE clauses, keysets.

Every value reaches the database as a bound parameter, so nothing the user types is ever
spliced into SQL. ``search`` chooses between these shapes, pages and counts.
"""

from __future__ import annotations

import base64
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, not_, or_, select, tuple_
from sqlalchemy.orm import aliased

from ...evaluation.operators import (
    CONTAINS,
    EQUAL,
    GREATER_THAN,
    GREATER_THAN_INCLUSIVE,
    IN,
    IS_NOT_SET,
    IS_SET,
    LESS_THAN,
    LESS_THAN_INCLUSIVE,
    NOT_EQUAL,
)
from ...ids import is_id
from ...models import Identity, IdentityOverride, Trait
from ...models.base import PREFIX_LENGTH, sha256_hex
from .search_query import NUMBER, Condition, IdentifierTerm, Literal, ParsedQuery


def _equals(trait: Any, literal: Literal) -> ColumnElement[bool]:
    if literal.kind == "number":
        return trait.value_num == literal.number  # type: ignore[no-any-return]
    if literal.kind == "boolean":
        # An SDK may send booleans as strings; both forms match ("true" is no number's text).
        return trait.value_prefix == literal.text  # type: ignore[no-any-return]
    # Only the clauses that can change the result: redundant ones make PostgreSQL
    # underestimate the rows (it multiplies their selectivities) and pick bad plans.
    clauses = [trait.value_prefix == literal.text[:PREFIX_LENGTH]]
    if len(literal.text) >= PREFIX_LENGTH:
        clauses.append(trait.value_text == literal.text)
    if NUMBER.fullmatch(literal.text) or literal.text in ("true", "false"):
        clauses.append(trait.value_type == "string")  # quoted "30" is not the number 30
    return and_(*clauses)


def _first_equals(trait: Any, values: tuple[Literal, ...]) -> ColumnElement[bool]:
    return _equals(trait, values[0])


def _any_equals(trait: Any, values: tuple[Literal, ...]) -> ColumnElement[bool]:
    return or_(*(_equals(trait, value) for value in values))


def _contains(trait: Any, values: tuple[Literal, ...]) -> ColumnElement[bool]:
    return trait.value_text.icontains(values[0].text, autoescape=True)  # type: ignore[no-any-return]


def _number(compare: Any) -> Any:
    def build(trait: Any, values: tuple[Literal, ...]) -> ColumnElement[bool]:
        return compare(trait.value_num, values[0].number)  # type: ignore[no-any-return]

    return build


@dataclass(frozen=True)
class Search:
    """How the search runs one operator: a predicate on the trait row (None: the key alone),
    whether a match needs such a row (``has``) or a row of the key but none such, and
    whether such rows are an index range a page can be driven from (``indexed``)."""

    row: Callable[[Any, tuple[Literal, ...]], ColumnElement[bool]] | None
    has: bool = True
    indexed: bool = True


# Every operator the search language spells (``Operator.search``), and a test holds this
# table to the registry. Like evaluation, a missing trait matches nothing but IS_NOT_SET.
SEARCH_SQL: dict[str, Search] = {
    EQUAL: Search(_first_equals),
    NOT_EQUAL: Search(_first_equals, has=False),
    GREATER_THAN: Search(_number(operator.gt)),
    GREATER_THAN_INCLUSIVE: Search(_number(operator.ge)),
    LESS_THAN: Search(_number(operator.lt)),
    LESS_THAN_INCLUSIVE: Search(_number(operator.le)),
    CONTAINS: Search(_contains, indexed=False),
    IN: Search(_any_equals),
    IS_SET: Search(None),
    IS_NOT_SET: Search(None, has=False),
}


def trait_predicate(trait: Any, condition: Condition) -> ColumnElement[bool] | None:
    row = SEARCH_SQL[condition.op].row
    return None if row is None else row(trait, condition.values)


def _trait_exists(
    environment_id: int, condition: Condition, predicate: bool = True
) -> ColumnElement[bool]:
    """EXISTS a trait of the identity with the condition's key (and value predicate).

    One EXISTS per condition lets PostgreSQL either probe (identity_id, key) for each row
    walked in sort order, or drive from the (environment_id, key, value_*) indexes when the
    condition is selective; the planner picks per query.
    """
    trait = aliased(Trait)
    clauses = [
        trait.identity_id == Identity.id,
        trait.environment_id == environment_id,
        trait.key == condition.key,
    ]
    value_clause = trait_predicate(trait, condition) if predicate else None
    if value_clause is not None:
        clauses.append(value_clause)
    return exists().where(*clauses)


def condition_sql(environment_id: int, condition: Condition) -> ColumnElement[bool]:
    search = SEARCH_SQL[condition.op]
    if search.has:
        return _trait_exists(environment_id, condition)
    if search.row is None:
        return not_(_trait_exists(environment_id, condition, predicate=False))
    # Like evaluation: a missing trait matches no operator but "is not set".
    return and_(
        _trait_exists(environment_id, condition, predicate=False),
        not_(_trait_exists(environment_id, condition)),
    )


def identifier_sql(term: IdentifierTerm) -> ColumnElement[bool]:
    if term.mode == "exact":
        return and_(
            Identity.identifier_hash == sha256_hex(term.text), Identity.identifier == term.text
        )
    if term.mode == "contains":
        return Identity.identifier.icontains(term.text, autoescape=True)
    head = term.text[:PREFIX_LENGTH]
    # A range on the indexed prefix column (LIKE is case-insensitive on SQLite and skips the
    # index), then an exact, case-sensitive check of the full prefix.
    return and_(
        Identity.identifier_prefix >= head,
        Identity.identifier_prefix < head + "\U0010ffff",
        func.substr(Identity.identifier, 1, len(term.text)) == term.text,
    )


def filter_clauses(
    environment_id: int, query: ParsedQuery, has_overrides: bool = False
) -> list[ColumnElement[bool]]:
    """Return the WHERE clauses (on ``Identity``) selecting the identities a query matches.

    :param environment_id: the environment searched.
    :param query: a parsed query (see ``parse_query``).
    :param has_overrides: keep only identities with at least one identity override.
    :return: clauses to pass to ``select(...).where(*clauses)``.
    """
    clauses: list[ColumnElement[bool]] = [Identity.environment_id == environment_id]
    if query.identifier is not None:
        clauses.append(identifier_sql(query.identifier))
    clauses.extend(condition_sql(environment_id, c) for c in query.conditions)
    if has_overrides:
        clauses.append(exists().where(IdentityOverride.identity_id == Identity.id))
    return clauses


def _probe(
    environment_id: int, condition: Condition, predicate: bool = True, owner: Any = None
) -> Any:
    """A correlated "first matching trait" subquery the planner cannot turn into a join."""
    trait = aliased(Trait)
    value_clause = trait_predicate(trait, condition) if predicate else None
    return (
        select(trait.id)
        .where(
            trait.identity_id == (Identity.id if owner is None else owner),
            trait.environment_id == environment_id,
            trait.key == condition.key,
            *([] if value_clause is None else [value_clause]),
        )
        .limit(1)
        .scalar_subquery()
    )


def walk_sql(environment_id: int, condition: Condition, owner: Any = None) -> ColumnElement[bool]:
    search = SEARCH_SQL[condition.op]
    if search.has:
        return _probe(environment_id, condition, True, owner).is_not(None)  # type: ignore[no-any-return]
    if search.row is None:
        return _probe(environment_id, condition, False, owner).is_(None)  # type: ignore[no-any-return]
    return and_(
        _probe(environment_id, condition, False, owner).is_not(None),
        _probe(environment_id, condition, True, owner).is_(None),
    )


def _sort_column(sort: str) -> Any:
    name = sort.lstrip("-")
    columns = {
        "identifier": Identity.identifier_prefix,
        "created": Identity.created_at,
        "last_seen": Identity.last_seen_at,
    }
    return columns[name]


def encode_cursor(sort: str, value: str | datetime, identity_id: int) -> str:
    """Encode a row's sort key as an opaque page cursor."""
    shown = value.isoformat() if isinstance(value, datetime) else value
    raw = json.dumps([sort, shown, identity_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str | None) -> tuple[str | datetime, int] | None:
    """Decode a cursor for ``sort``; anything malformed or foreign reads as "first page"."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, value, identity_id = json.loads(raw)
        # An id outside the database's range cannot be bound: a forged cursor.
        if kind != sort or not isinstance(value, str) or not is_id(identity_id):
            return None
        if sort.lstrip("-") == "identifier":
            return value, identity_id
        return datetime.fromisoformat(value), identity_id
    except (ValueError, TypeError):
        return None


def keyset(
    statement: Any, sort: str, cursor: tuple[str | datetime, int] | None, forward: bool
) -> Any:
    column = _sort_column(sort)
    ascending = not sort.startswith("-")
    if not forward:
        ascending = not ascending
    if cursor is not None:
        bound = tuple_(column, Identity.id)
        values = tuple_(*[_typed(column, cursor[0]), cursor[1]])
        statement = statement.where(bound > values if ascending else bound < values)
    order = (column.asc(), Identity.id.asc()) if ascending else (column.desc(), Identity.id.desc())
    return statement.order_by(*order)


def _typed(column: Any, value: str | datetime) -> Any:
    return literal(value, column.type)
