"""Per-operator SQL predicates over one traits row, for ``segment_sql``'s translation.

For each operator (SPEC §2) a condition becomes a pair of row predicates: rows where SQL
decides the condition exactly, and rows where it cannot and Python must check. Boolean
helpers fold ``true()``/``false()`` constants so callers can test them with ``is``.
"""

from __future__ import annotations

import math
import operator as op
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, false, func, literal, not_, or_, true
from sqlalchemy.orm import aliased

from ..evaluation import Condition
from ..evaluation.operators import (
    IN,
    IS_SET,
    MODULO,
    NOT_CONTAINS,
    PERCENTAGE_SPLIT,
    REGEX,
    build_predicate,
    parse_in_values,
    parse_modulo,
)
from ..evaluation.semver import has_semver_suffix
from ..extensions import db
from ..models import Trait

Expr = ColumnElement[bool]
BIG = float(2**53)  # beyond this a double no longer holds every integer exactly
HUGE_TEXT = 300  # a numeric-looking string this short always has value_num (no overflow)
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
class Scope:
    """What a translation needs to know about the environment and database."""

    environment_id: int
    environment_key: str
    environment_name: str
    dialect: str
    segment_key: str = ""


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
