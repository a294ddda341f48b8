"""Search an environment's identities: a small query language, keyset pages, fast counts.

Query language (clauses joined by ``and``)::

    alice              identifier starts with "alice"
    "alice"            identifier is exactly "alice"
    ~lic               identifier contains "lic" (case-insensitive)
    plan = pro         also != > >= < <= (numbers compare numerically, "007" = 7)
    country in (DE, FR)
    email ~ @acme.com  trait contains (case-insensitive)
    beta is set        / beta is not set

Unquoted ``true``/``false`` are booleans, unquoted numbers are numbers, anything quoted is a
string. Every value reaches the database as a bound parameter; the sort key comes from a
whitelist, so nothing the user types is ever spliced into SQL.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Identity, IdentityOverride, Trait, TypedValue
from ..models.base import PREFIX_LENGTH, decode_value, sha256_hex
from .errors import ValidationError

MAX_QUERY_LENGTH = 1000
MAX_CLAUSES = 12
COUNT_CAP = 10_000
PER_PAGE = 50
SORTS = ("identifier", "-identifier", "created", "-created", "last_seen", "-last_seen")
DEFAULT_SORT = "identifier"
_COMPARISONS = ("=", "!=", ">", ">=", "<", "<=")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|=|>|<|~|\(|\)|,)
      | (?P<word>[^\s"'=!<>~(),]+)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_HELP = "expected an identifier, `key = value`, `key in (a, b)`, `key ~ text` or `key is set`"


# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Literal:
    """A typed value from the query: ``kind`` is string, number or boolean."""

    kind: str
    text: str
    number: float | None = None


@dataclass(frozen=True)
class Condition:
    """One trait condition; ``op`` is a comparison, ``in``, ``~``, ``set`` or ``not set``."""

    key: str
    op: str
    values: tuple[Literal, ...] = ()


@dataclass(frozen=True)
class IdentifierTerm:
    """The identifier filter; ``mode`` is prefix, exact or contains."""

    text: str
    mode: str


@dataclass(frozen=True)
class ParsedQuery:
    identifier: IdentifierTerm | None = None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if match is None:  # only trailing whitespace is left
            break
        kind = match.lastgroup or "bad"
        start = match.start(kind)
        raw = match.group(kind)
        if kind == "bad":
            if raw in "\"'":
                raise ValidationError(f"Unclosed quote {raw} at character {start + 1}.", "q")
            raise ValidationError(f"Unexpected {raw!r} at character {start + 1}.", "q")
        text_ = _unquote(raw) if kind == "string" else raw
        tokens.append(_Token(kind, text_, start))
        pos = match.end()
    return tokens


def _literal(token: _Token) -> Literal:
    if token.kind == "string":
        return Literal("string", token.text)
    if token.text.lower() in ("true", "false"):
        return Literal("boolean", token.text.lower())
    if _NUMBER.fullmatch(token.text):
        return Literal("number", token.text, float(token.text))
    return Literal("string", token.text)


def _split_clauses(tokens: list[_Token]) -> list[list[_Token]]:
    clauses: list[list[_Token]] = [[]]
    for token in tokens:
        if token.kind == "word" and token.text.lower() == "and":
            clauses.append([])
        elif token.kind == "word" and token.text.lower() == "or":
            raise ValidationError("Only `and` can combine conditions; `or` is not supported.", "q")
        else:
            clauses[-1].append(token)
    if len(clauses) > 1 and any(not clause for clause in clauses):
        raise ValidationError("`and` needs a condition on both sides.", "q")
    if len(clauses) > MAX_CLAUSES:
        raise ValidationError(f"At most {MAX_CLAUSES} conditions can be combined.", "q")
    return [clause for clause in clauses if clause]


def _is_value(token: _Token) -> bool:
    return token.kind in ("word", "string")


def _describe(clause: list[_Token]) -> str:
    return " ".join(t.text if t.kind != "string" else json.dumps(t.text) for t in clause)


def _parse_in(key: str, rest: list[_Token], shown: str) -> Condition:
    if len(rest) < 3 or rest[0].text != "(" or rest[-1].text != ")":
        raise ValidationError(f"“{shown}”: write the list as `key in (a, b)`.", "q")
    inner = rest[1:-1]
    values = inner[0::2]
    commas = inner[1::2]
    if not all(_is_value(v) for v in values) or any(c.text != "," for c in commas):
        raise ValidationError(f"“{shown}”: separate the values with commas.", "q")
    if len(inner) % 2 == 0:
        raise ValidationError(f"“{shown}”: a value is missing after the last comma.", "q")
    return Condition(key, "in", tuple(_literal(v) for v in values))


def _parse_comparison(key: str, op: str, value: _Token, shown: str) -> Condition:
    literal = _literal(value)
    if op in ("~", "=", "!="):
        return Condition(key, op, (literal,))
    if literal.kind != "number":
        raise ValidationError(
            f"“{shown}”: {op} compares numbers, and “{value.text}” is not one.", "q"
        )
    return Condition(key, op, (literal,))


def _parse_condition(clause: list[_Token]) -> Condition:
    shown = _describe(clause)
    key_token, rest = clause[0], clause[1:]
    if not _is_value(key_token) or not rest:
        raise ValidationError(f"Could not read “{shown}”: {_HELP}.", "q")
    key = key_token.text
    if not key or len(key) > 200:
        raise ValidationError(f"“{shown}”: a trait key has 1 to 200 characters.", "q")
    words = [t.text.lower() if t.kind == "word" else None for t in rest]
    if words == ["is", "set"]:
        return Condition(key, "set")
    if words == ["is", "not", "set"]:
        return Condition(key, "not set")
    if words[0] == "in":
        return _parse_in(key, rest[1:], shown)
    operator = rest[0].text if rest[0].kind == "op" else ""
    if len(rest) == 2 and operator in (*_COMPARISONS, "~") and _is_value(rest[1]):
        return _parse_comparison(key, rest[0].text, rest[1], shown)
    raise ValidationError(f"Could not read “{shown}”: {_HELP}.", "q")


def _parse_identifier(clause: list[_Token]) -> IdentifierTerm | None:
    if len(clause) == 1 and _is_value(clause[0]):
        mode = "exact" if clause[0].kind == "string" else "prefix"
        return IdentifierTerm(clause[0].text, mode)
    if len(clause) == 2 and clause[0].text == "~" and _is_value(clause[1]):
        return IdentifierTerm(clause[1].text, "contains")
    return None


def parse_query(query: str) -> ParsedQuery:
    """Parse a search box query into an identifier term and trait conditions.

    :param query: the text typed in the search box.
    :return: the parsed query (empty when the text is blank).
    :raises ValidationError: with a message naming the malformed part (field ``q``).
    """
    if len(query) > MAX_QUERY_LENGTH:
        raise ValidationError(f"A search has at most {MAX_QUERY_LENGTH} characters.", "q")
    identifier: IdentifierTerm | None = None
    conditions: list[Condition] = []
    for clause in _split_clauses(_tokenize(query)):
        term = _parse_identifier(clause)
        if term is None:
            conditions.append(_parse_condition(clause))
        elif identifier is not None:
            raise ValidationError(
                f"Only one identifier term is allowed (“{identifier.text}” and “{term.text}”); "
                "quote identifiers that contain spaces.",
                "q",
            )
        elif term.text:
            identifier = term
    return ParsedQuery(identifier, tuple(conditions))


# ----------------------------------------------------------------------------- SQL


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
    if _NUMBER.fullmatch(literal.text) or literal.text in ("true", "false"):
        clauses.append(trait.value_type == "string")  # quoted "30" is not the number 30
    return and_(*clauses)


def _trait_predicate(trait: Any, condition: Condition) -> ColumnElement[bool] | None:
    op, values = condition.op, condition.values
    if op in ("=", "!="):
        return _equals(trait, values[0])
    if op == "in":
        return or_(*(_equals(trait, value) for value in values))
    if op == "~":
        return trait.value_text.icontains(values[0].text, autoescape=True)  # type: ignore[no-any-return]
    if op not in _COMPARISONS or not values:  # "set" / "not set" test the key only
        return None
    number = values[0].number
    comparisons: dict[str, Any] = {
        ">": trait.value_num > number,
        ">=": trait.value_num >= number,
        "<": trait.value_num < number,
        "<=": trait.value_num <= number,
    }
    return comparisons[op]  # type: ignore[no-any-return]


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
    value_clause = _trait_predicate(trait, condition) if predicate else None
    if value_clause is not None:
        clauses.append(value_clause)
    return exists().where(*clauses)


def _condition_sql(environment_id: int, condition: Condition) -> ColumnElement[bool]:
    if condition.op == "not set":
        return not_(_trait_exists(environment_id, condition, predicate=False))
    if condition.op == "!=":
        # Like evaluation: a missing trait matches no operator but "is not set".
        return and_(
            _trait_exists(environment_id, condition, predicate=False),
            not_(_trait_exists(environment_id, condition)),
        )
    return _trait_exists(environment_id, condition, predicate=condition.op != "set")


def _identifier_sql(term: IdentifierTerm) -> ColumnElement[bool]:
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
        clauses.append(_identifier_sql(query.identifier))
    clauses.extend(_condition_sql(environment_id, c) for c in query.conditions)
    if has_overrides:
        clauses.append(exists().where(IdentityOverride.identity_id == Identity.id))
    return clauses


# A trait condition matching at most this many traits drives the page query (its ids are
# read from the (environment_id, key, value_*) index, then sorted); above it, the page walks
# the sort index and tests every condition per row, stopping after one page.
SELECTIVE_CAP = 2000
_DRIVABLE = ("=", "in", ">", ">=", "<", "<=", "set")


def _selectivity(environment_id: int, condition: Condition) -> int:
    """Count (up to SELECTIVE_CAP + 1) the traits matching a condition, on its index."""
    trait = aliased(Trait)
    predicate = _trait_predicate(trait, condition)
    matching = (
        select(trait.key)  # a column of the index: an index-only scan once vacuumed
        .where(trait.environment_id == environment_id, trait.key == condition.key)
        .where(*([] if predicate is None else [predicate]))
        .limit(SELECTIVE_CAP + 1)
        .subquery()
    )
    return db.session.scalar(select(func.count()).select_from(matching)) or 0


def _probe(
    environment_id: int, condition: Condition, predicate: bool = True, owner: Any = None
) -> Any:
    """A correlated "first matching trait" subquery the planner cannot turn into a join."""
    trait = aliased(Trait)
    value_clause = _trait_predicate(trait, condition) if predicate else None
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


def _walk_sql(environment_id: int, condition: Condition, owner: Any = None) -> ColumnElement[bool]:
    if condition.op == "not set":
        return _probe(environment_id, condition, False, owner).is_(None)  # type: ignore[no-any-return]
    if condition.op == "!=":
        return and_(
            _probe(environment_id, condition, False, owner).is_not(None),
            _probe(environment_id, condition, True, owner).is_(None),
        )
    probe = _probe(environment_id, condition, condition.op != "set", owner)
    return probe.is_not(None)  # type: ignore[no-any-return]


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
        clauses.append(_identifier_sql(query.identifier))
    for condition in query.conditions:
        if condition is driver:
            trait = aliased(Trait)
            predicate = _trait_predicate(trait, condition)
            ids = select(trait.identity_id).where(
                trait.environment_id == environment_id, trait.key == condition.key
            )
            clauses.append(Identity.id.in_(ids.where(*([] if predicate is None else [predicate]))))
        elif driver is not None:
            clauses.append(_condition_sql(environment_id, condition))
        else:
            clauses.append(_walk_sql(environment_id, condition))
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
    predicate = _trait_predicate(driver, plan.driver)
    owner = driver.identity_id
    others = [_walk_sql(environment_id, c, owner) for c in query.conditions if c is not plan.driver]
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
    total: Total
    sort: str
    next_cursor: str | None
    prev_cursor: str | None


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
        if kind != sort or not isinstance(value, str) or not isinstance(identity_id, int):
            return None
        if sort.lstrip("-") == "identifier":
            return value, identity_id
        return datetime.fromisoformat(value), identity_id
    except (ValueError, TypeError):
        return None


def _keyset(
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
) -> SearchPage:
    """Return one keyset page of the identities matching a query, with a fast total.

    :param query: search box text (see the module docstring).
    :param sort: one of ``SORTS``; anything else falls back to ``identifier``.
    :param after: cursor of the last row of the previous page (next page).
    :param before: cursor of the first row of the following page (previous page).
    :param trait_columns: trait keys whose values are loaded for each row.
    :return: the page with cursors for its neighbours.
    :raises ValidationError: when the query is malformed.
    """
    sort = sort if sort in SORTS else DEFAULT_SORT
    parsed = parse_query(query)
    plan = _plan(environment_id, parsed)
    clauses = page_clauses(environment_id, parsed, has_overrides, plan)
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
    page = _keyset(base, sort, cursor, forward).limit(per_page + 1)
    fetched = list(db.session.execute(page).all())
    more = len(fetched) > per_page
    fetched = fetched[:per_page]
    if not forward:
        fetched.reverse()
    has_next = more if forward else True
    has_prev = cursor is not None if forward else more
    return SearchPage(
        rows=_rows(fetched, trait_columns),
        total=count_matches(environment_id, parsed, has_overrides, plan),
        sort=sort,
        next_cursor=_cursor_at(sort, fetched[-1]) if fetched and has_next else None,
        prev_cursor=_cursor_at(sort, fetched[0]) if fetched and has_prev else None,
    )


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
