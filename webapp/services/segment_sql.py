"""Segment membership in SQL over the traits table, identity for identity equal to evaluation.

Each condition becomes two SQL predicates over an identity: ``surely`` (the condition
certainly holds) and ``maybe`` (it may hold). Where SQL expresses SPEC §2 exactly the two
are one expression; where it cannot (PERCENTAGE_SPLIT, most REGEX, semver, identity
JSONPaths, numbers beyond 2**53) ``maybe`` widens and ``surely`` narrows. Quantifiers
combine them (NONE swaps them), so members = ``surely`` plus the ``maybe and not surely``
candidates the evaluation module checks in Python.
"""

from __future__ import annotations

import json
import math
import operator as op
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import aliased

from ..evaluation import Condition, Rule
from ..evaluation import Segment as EvalSegment
from ..evaluation.operators import (
    IN,
    IS_NOT_SET,
    IS_SET,
    MODULO,
    NOT_CONTAINS,
    PERCENTAGE_SPLIT,
    REGEX,
    build_predicate,
    parse_in_values,
    parse_modulo,
)
from ..evaluation.segments import (
    CompiledSegment,
    Subject,
    describe_property,
    normalise,
    parse_jsonpath,
)
from ..evaluation.semver import has_semver_suffix
from ..extensions import db
from ..models import Environment, Identity, Trait, decode_value
from .errors import NotFound

Expr = ColumnElement[bool]
BIG = float(2**53)  # beyond this a double no longer holds every integer exactly
HUGE_TEXT = 300  # a numeric-looking string this short always has value_num (no overflow)
BATCH = 2000
_TYPED: dict[str, Callable[[Any, Any], bool]] = {
    "EQUAL": op.eq,
    "NOT_EQUAL": op.ne,
    "GREATER_THAN": op.gt,
    "GREATER_THAN_INCLUSIVE": op.ge,
    "LESS_THAN": op.lt,
    "LESS_THAN_INCLUSIVE": op.le,
    "CONTAINS": op.contains,
}
_LITERAL = re.compile(r"(?:[A-Za-z0-9 _@/:,#%&=~<>!'\"-]|\\[.+*?()\[\]{}|\\^$/-])*")


@dataclass(frozen=True, slots=True)
class Translation:
    """The SQL form of a segment: certainly members, possibly members."""

    surely: Expr
    maybe: Expr

    @property
    def exact(self) -> bool:
        """Tell whether SQL alone decides membership (no Python check needed)."""
        return self.surely is self.maybe


@dataclass(frozen=True, slots=True)
class Scope:
    """What a translation needs to know about the environment and database."""

    environment_id: int
    environment_key: str
    environment_name: str
    dialect: str
    segment_key: str = ""


# ---- rules document -> evaluation types ---------------------------------------------
def rules_from_document(rules: Iterable[Mapping[str, Any]]) -> tuple[Rule, ...]:
    """Convert ``Segment.rules`` (Flagsmith document shape) into evaluation rules.

    :param rules: the stored rule dicts
    :return: evaluation ``Rule`` tuples
    """
    return tuple(
        Rule(
            type=str(rule.get("type", "")),
            conditions=tuple(_condition(c) for c in rule.get("conditions") or ()),
            rules=rules_from_document(rule.get("rules") or ()),
        )
        for rule in rules
    )


def _condition(raw: Mapping[str, Any]) -> Condition:
    value = raw.get("value")
    if isinstance(value, list):
        value = _json_list(value)
    return Condition(
        property=str(raw.get("property_") or ""),
        operator=str(raw.get("operator", "")),
        value=None if value is None else str(value),
    )


def _json_list(value: list[Any]) -> str:
    return json.dumps(value)


# ---- boolean helpers that fold constants -------------------------------------------
def _and(items: Iterable[Expr]) -> Expr:
    parts = [i for i in items if i is not _TRUE]
    if any(i is _FALSE for i in parts):
        return _FALSE
    return _TRUE if not parts else parts[0] if len(parts) == 1 else and_(*parts)


def _or(items: Iterable[Expr]) -> Expr:
    parts = [i for i in items if i is not _FALSE]
    if any(i is _TRUE for i in parts):
        return _TRUE
    return _FALSE if not parts else parts[0] if len(parts) == 1 else or_(*parts)


def _not(item: Expr) -> Expr:
    if item is _TRUE:
        return _FALSE
    if item is _FALSE:
        return _TRUE
    return not_(item)


all_of = _and
negate = _not
_TRUE: Expr = true()
_FALSE: Expr = false()


def _const(flag: bool) -> Expr:
    return _TRUE if flag else _FALSE


# ---- one trait row -----------------------------------------------------------------
class _Row:
    """Predicates over one traits row: its normalised kind (SPEC §2) and precision."""

    def __init__(self, scope: Scope) -> None:
        t = self.t = aliased(Trait, name="t")
        self.scope = scope
        numeric_string = and_(t.value_type == "string", t.value_num.is_not(None))
        self.is_bool: Expr = t.value_type == "boolean"
        self.is_int_any: Expr = or_(
            t.value_type == "integer", and_(numeric_string, t.value_text.not_like("%.%"))
        )
        self.precise: Expr = and_(t.value_num > -BIG, t.value_num < BIG)
        self.is_int: Expr = and_(self.is_int_any, self.precise)
        unsure = or_(t.value_num.is_(None), not_(self.precise))
        self.int_unsure: Expr = and_(self.is_int_any, unsure)
        self.is_float: Expr = or_(
            t.value_type == "float", and_(numeric_string, t.value_text.like("%.%"))
        )
        plain_string = and_(t.value_type == "string", t.value_num.is_(None))
        self.is_str: Expr = and_(plain_string, func.length(t.value_text) <= HUGE_TEXT)
        self.str_unsure: Expr = and_(plain_string, func.length(t.value_text) > HUGE_TEXT)
        self.is_typed_text: Expr = t.value_type.in_(("integer", "float"))

    def text_cmp(self, name: str, value: str) -> Expr:
        column = self.t.value_text
        if name == "EQUAL":
            return and_(self.t.value_prefix == value[:100], column == value)
        if name == "NOT_EQUAL":
            return column != value
        if name == "CONTAINS":
            return self.position(value) > 0
        # Python compares code points: SQLite's BINARY and PostgreSQL's "C" compare
        # UTF-8 bytes, which order the same.
        ordered = column.collate("C") if self.scope.dialect == "postgresql" else column
        return _compare(name, ordered, literal(value))

    def position(self, value: str) -> ColumnElement[int]:
        name = "strpos" if self.scope.dialect == "postgresql" else "instr"
        return cast(ColumnElement[int], getattr(func, name)(self.t.value_text, value))

    def bool_in(self, accepted: Callable[[bool], bool]) -> Expr:
        texts = [text_ for flag, text_ in ((False, "false"), (True, "true")) if accepted(flag)]
        return and_(self.is_bool, self.t.value_text.in_(texts)) if texts else _FALSE


def _compare(name: str, left: Any, right: Any) -> Expr:
    return cast(Expr, _TYPED[name](left, right))


def _number_cmp(name: str, column: Any, number: float) -> Expr:
    if math.isnan(number):
        return _const(name == "NOT_EQUAL")
    if math.isinf(number):
        return _const(_TYPED[name](0.0, number))
    return _compare(name, column, literal(number))


RowPair = tuple[Expr, Expr]  # (exact rows, unsure rows)


def _typed_rows(row: _Row, name: str, value: str | None) -> RowPair:
    test = _TYPED[name]
    text_ = str(value)
    exact: list[Expr] = []
    unsure: list[Expr] = [row.str_unsure]
    if has_semver_suffix(value):
        unsure.append(row.is_str)
    else:
        exact.append(and_(row.is_str, row.text_cmp(name, text_)))
    if name != "CONTAINS":
        as_bool = value not in ("False", "false")
        exact.append(row.bool_in(lambda flag: test(flag, as_bool)))
        as_int = _cast(int, value)
        if isinstance(as_int, int) and abs(as_int) < BIG:
            exact.append(and_(row.is_int, _number_cmp(name, row.t.value_num, float(as_int))))
            unsure.append(row.int_unsure)
        elif as_int is not None:
            unsure.append(row.is_int_any)
        as_float = _cast(float, value)
        if as_float is not None:
            exact.append(and_(row.is_float, _number_cmp(name, row.t.value_num, as_float)))
    if name == "EQUAL" and not has_semver_suffix(value):
        return _index_hint(row, text_, value, _or(exact)), _or(unsure)
    return _or(exact), _or(unsure)


def _index_hint(row: _Row, text_: str, value: str | None, exact: Expr) -> Expr:
    """AND a redundant (environment, key, prefix | number) probe so the indexes drive EQUAL."""
    if exact is _FALSE:
        return exact
    prefixes = [text_[:100]] + ["true" if value not in ("False", "false") else "false"]
    hints: list[Expr] = [row.t.value_prefix.in_(prefixes)]
    # float(value) equals float(int(value)) wherever the integer branch is exact.
    number = _cast(float, value)
    if number is not None and math.isfinite(number):
        hints.append(row.t.value_num == number)
    return and_(_or(hints), exact)


def _cast(kind: Callable[[Any], Any], value: str | None) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _in_rows(row: _Row, value: str | None) -> RowPair:
    accepted = sorted(parse_in_values(value))
    exact: list[Expr] = []
    unsure: list[Expr] = [row.str_unsure]
    if accepted:
        prefixes = sorted({a[:100] for a in accepted})
        exact.append(
            and_(row.is_str, row.t.value_prefix.in_(prefixes), row.t.value_text.in_(accepted))
        )
    # Integer traits compare as str(int): only canonical integer texts can match.
    numbers = [int(a) for a in accepted if re.fullmatch(r"0|-?[1-9][0-9]*", a)]
    small = sorted({float(n) for n in numbers if abs(n) < BIG})
    if small:
        exact.append(and_(row.is_int, row.t.value_num.in_(small)))
    if numbers:
        unsure.append(row.int_unsure)
    return _or(exact), _or(unsure)


def _modulo_rows(row: _Row, value: str | None) -> RowPair:
    parsed = parse_modulo(value)
    if parsed is None or parsed[0] == 0:
        return _FALSE, _FALSE
    divisor, remainder = parsed
    python_test = build_predicate(MODULO, value, "")
    exact: list[Expr] = [row.bool_in(python_test)]
    if not (divisor.is_integer() and abs(divisor) < 2**31 and math.isfinite(remainder)):
        return _or(exact), _or([row.is_int_any, row.is_float])
    if not remainder.is_integer():
        # Integral operands give integral remainders: nothing but odd floats can match.
        integral = row.t.value_num == func.round(row.t.value_num)
        return _or(exact), and_(row.is_float, not_(integral))
    # Python's % takes the divisor's sign; SQL's truncates: ((v % d) + d) % d mirrors it.
    d = int(divisor)
    as_int = func.cast(row.t.value_num, db.BigInteger)
    python_mod = ((as_int % d) + d) % d
    integral = and_(row.precise, row.t.value_num == func.round(row.t.value_num))
    numeric = or_(row.is_int, and_(row.is_float, integral))
    exact.append(and_(numeric, python_mod == int(remainder)))
    unsure = or_(row.int_unsure, and_(row.is_float, not_(integral)))
    return _or(exact), unsure


def _regex_rows(row: _Row, value: str | None) -> RowPair:
    try:
        pattern = re.compile(str(value))
    except re.error:
        return _FALSE, _FALSE
    literal_prefix = _literal_prefix(str(value))
    if literal_prefix is None:
        return _FALSE, _TRUE
    exact = [
        row.bool_in(lambda flag: pattern.match(str(flag)) is not None),
        # str() of integer and float traits is their stored text (str / repr).
        and_(
            or_(row.is_str, row.is_typed_text),
            func.substr(row.t.value_text, 1, len(literal_prefix)) == literal_prefix,
        ),
    ]
    numeric_string = and_(row.t.value_type == "string", row.t.value_num.is_not(None))
    return _or(exact), or_(row.str_unsure, numeric_string)


def _literal_prefix(pattern: str) -> str | None:
    """Return L when ``re.match(pattern, s)`` is exactly ``s.startswith(L)``, else None."""
    body = pattern[:-2] if pattern.endswith(".*") and not pattern.endswith("\\.*") else pattern
    if not _LITERAL.fullmatch(body):
        return None
    return re.sub(r"\\(.)", r"\1", body)


def _split_rows(value: str | None) -> RowPair:
    threshold = _cast(float, value)
    if threshold is None or math.isnan(threshold) or threshold < 0:
        return _FALSE, _FALSE
    # Buckets are below 100: a threshold of 100 takes every set value.
    return (_TRUE, _FALSE) if threshold >= 100 else (_FALSE, _TRUE)


def _row_predicates(row: _Row, condition: Condition) -> RowPair:
    name, value = condition.operator, condition.value
    if name in _TYPED:
        return _typed_rows(row, name, value)
    builders: dict[str, Callable[[], RowPair]] = {
        NOT_CONTAINS: lambda: (
            and_(row.is_str, row.position(str(value)) == 0),
            row.str_unsure,
        ),
        IN: lambda: _in_rows(row, value),
        MODULO: lambda: _modulo_rows(row, value),
        REGEX: lambda: _regex_rows(row, value),
        PERCENTAGE_SPLIT: lambda: _split_rows(value),
        IS_SET: lambda: (_TRUE, _FALSE),
    }
    builder = builders.get(name)
    return builder() if builder is not None else (_FALSE, _FALSE)


# ---- conditions, rules, segments ------------------------------------------------------
def _has_rows(scope: Scope, key: str, predicate: Expr, row: _Row | None = None) -> Expr:
    """Return "the identity has a ``key`` trait row satisfying ``predicate``" (a semi-join)."""
    if predicate is _FALSE:
        return _FALSE
    t = row.t if row is not None else aliased(Trait, name="t")
    rows = select(t.identity_id).where(t.environment_id == scope.environment_id, t.key == key)
    return Identity.id.in_(rows if predicate is _TRUE else rows.where(predicate))


def _trait_condition(scope: Scope, key: str, condition: Condition) -> Translation:
    if condition.operator == IS_NOT_SET:
        has = _not(_has_rows(scope, key, _TRUE))
        return Translation(has, has)
    row = _Row(scope)
    exact_rows, unsure_rows = _row_predicates(row, condition)
    surely = _has_rows(scope, key, exact_rows, row)
    if unsure_rows is _FALSE:
        return Translation(surely, surely)
    return Translation(surely, _has_rows(scope, key, _or([exact_rows, unsure_rows]), row))


def translate_condition(scope: Scope, condition: Condition) -> Translation:
    """Translate one condition (see the module docstring for surely/maybe).

    :param scope: environment and dialect
    :param condition: the condition
    :return: its translation
    """
    prop = condition.property
    if condition.operator == PERCENTAGE_SPLIT and not prop:
        pair = _split_rows(condition.value)
        return Translation(pair[0], pair[0]) if pair[1] is _FALSE else Translation(_FALSE, _TRUE)
    if describe_property(prop) != "jsonpath":
        return _trait_condition(scope, prop, condition)
    # IS_NOT_SET on a present literal trait is false; its absence is the path's business.
    literal_trait = (
        Translation(_FALSE, _FALSE)
        if condition.operator == IS_NOT_SET
        else _trait_condition(scope, prop, condition)
    )
    # A trait literally named like the path wins; otherwise the path is read.
    missing = _not(_has_rows(scope, prop, _TRUE))
    names = parse_jsonpath(prop) or ()
    if len(names) == 2 and names[0] == "environment":
        seen = scope.environment_name if names[1] == "name" else scope.environment_key
        test = build_predicate(condition.operator, condition.value, scope.segment_key)
        holds = test(normalise(seen))
        fallback = _and([missing, _const(holds)])
        return Translation(
            _or([literal_trait.surely, fallback]), _or([literal_trait.maybe, fallback])
        )
    return Translation(literal_trait.surely, _or([literal_trait.maybe, missing]))


def _quantified(kind: str, parts: Sequence[Translation]) -> Translation:
    if not parts:
        return Translation(_TRUE, _TRUE)
    if kind == "ANY":
        return _pair(_or(p.surely for p in parts), _or(p.maybe for p in parts), parts)
    # NONE: certainly none holds when none may hold, and the other way round.
    return _pair(_not(_or(p.maybe for p in parts)), _not(_or(p.surely for p in parts)), parts)


def _pair(surely: Expr, maybe: Expr, parts: Sequence[Translation]) -> Translation:
    exact = all(p.exact for p in parts)
    return Translation(surely, surely if exact else maybe)


def _all(parts: Sequence[Translation]) -> Translation:
    return _pair(_and(p.surely for p in parts), _and(p.maybe for p in parts), parts)


def translate_rule(scope: Scope, rule: Rule) -> Translation:
    """Translate one rule: its quantifier over conditions and over nested rules separately.

    :param scope: environment and dialect
    :param rule: the rule
    :return: its translation
    """
    conditions = [translate_condition(scope, c) for c in rule.conditions]
    subrules = [translate_rule(scope, r) for r in rule.rules]
    if rule.type == "ALL":
        return _all(conditions + subrules)
    if rule.type in ("ANY", "NONE"):
        return _all([_quantified(rule.type, conditions), _quantified(rule.type, subrules)])
    return Translation(_FALSE, _FALSE)  # unknown rule types never match (engine: KeyError)


def translate(scope: Scope, rules: Sequence[Rule]) -> Translation:
    """Translate a segment's top-level rules (all must hold; no rules never matches).

    :param scope: environment and dialect
    :param rules: the segment's rules
    :return: the segment's translation
    """
    if not rules:
        return Translation(_FALSE, _FALSE)
    return _all([translate_rule(scope, r) for r in rules])


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
