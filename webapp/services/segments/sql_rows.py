"""Per-operator SQL predicates over one traits row, for ``sql_membership``'s translation.

Evaluation normalises a trait (SPEC §2) before comparing it, so every stored row falls in
exactly one *class*: ``str`` (a string that does not look numeric), ``bool``, ``num`` (a
number whose double ``value_num`` is stored: integers, floats and numeric-looking strings)
and ``ovf`` (an integer or numeric-looking string beyond a double's range: ``value_num`` is
NULL and the value, past +-1.8e308, compares with any ordinary number by its sign alone).

For each operator a condition becomes, per class, the rows where SQL decides it holds
(``exact``) and the rows SQL cannot decide (``unsure``: Python checks those). Branches are
kept apart by class so that conditions on one key combine class by class and every branch
stays a simple, index-friendly predicate. Boolean helpers fold ``true()``/``false()``
constants so callers can test them with ``is``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Numeric,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    true,
)
from sqlalchemy import cast as sql_cast

from ...evaluation import Condition
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
    MODULO,
    NOT_CONTAINS,
    NOT_EQUAL,
    OPERATORS,
    PERCENTAGE_SPLIT,
    REGEX,
    build_predicate,
    lookup,
)
from ...evaluation.predicates import parse_in_values, parse_modulo
from ...evaluation.semver import has_semver_suffix
from ...models import Trait
from ...models.base import PREFIX_LENGTH

Expr = ColumnElement[bool]
BIG = float(2**53)  # beyond this a double no longer holds every integer exactly
HUGE_TEXT = 300  # a numeric-looking string this short always has value_num (no overflow)
_BIGINT = float(2**63)  # doubles strictly inside +-2**63 cast to BIGINT exactly
# The typed comparisons' tests (operator.eq, ...) build SQL comparisons too.
_TYPED: dict[str, Callable[[Any, Any], bool]] = {
    name: operator.comparison.test
    for name, operator in OPERATORS.items()
    if operator.comparison is not None
}
_LITERAL = re.compile(r"(?:[A-Za-z0-9 _@/:,#%&=~<>!'\"-]|\\[.+*?()\[\]{}|\\^$/-])*")
# What evaluation turns into a number (``normalise._numeric_text``), and str() of an int.
_NUMERIC = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]*")

# Row classes; a branch of TRUE stands for every row of its class.
CLASSES = ("str", "bool", "num", "ovf")
Branches = Mapping[str, Expr]
RowPair = tuple[Branches, Branches]  # (exact branches, unsure branches)


@dataclass(frozen=True, slots=True)
class Scope:
    """What a translation needs to know about the environment and database."""

    environment_id: int
    environment_key: str
    environment_name: str
    dialect: str
    segment_key: str = ""


# ---- boolean helpers that fold constants -------------------------------------------
def all_of(items: Iterable[Expr]) -> Expr:
    parts = [i for i in items if i is not TRUE]
    if any(i is FALSE for i in parts):
        return FALSE
    return TRUE if not parts else parts[0] if len(parts) == 1 else and_(*parts)


def any_of(items: Iterable[Expr]) -> Expr:
    parts = [i for i in items if i is not FALSE]
    if any(i is TRUE for i in parts):
        return TRUE
    return FALSE if not parts else parts[0] if len(parts) == 1 else or_(*parts)


def negate(item: Expr) -> Expr:
    if item is TRUE:
        return FALSE
    if item is FALSE:
        return TRUE
    return not_(item)


TRUE: Expr = true()
FALSE: Expr = false()


def _const(flag: bool) -> Expr:
    return TRUE if flag else FALSE


# ---- branches by class ---------------------------------------------------------------
EVERY: Branches = dict.fromkeys(CLASSES, TRUE)


def _branches(**parts: Expr) -> dict[str, Expr]:
    return {c: parts[c] for c in CLASSES if c in parts and parts[c] is not FALSE}


def branches_and(a: Branches, b: Branches) -> dict[str, Expr]:
    """Rows in both: class by class (a row is in one class only)."""
    return _branches(**{c: all_of([a[c], b[c]]) for c in a if c in b})


def branches_or(a: Branches, b: Branches) -> dict[str, Expr]:
    """Rows in either, class by class."""
    return _branches(**{c: any_of([a.get(c, FALSE), b.get(c, FALSE)]) for c in {**a, **b}})


def is_every(branches: Branches) -> bool:
    """Tell whether the branches take every row (no predicate needed)."""
    return all(branches.get(c) is TRUE for c in CLASSES)


# ---- one trait row -----------------------------------------------------------------
class TraitRow:
    """Predicates over one traits row (alias ``t``): its class and its exact value forms."""

    def __init__(self, scope: Scope) -> None:
        # A Core alias, not ``aliased(Trait)``: the same SQL, but the compiler sets up no
        # ORM context for each of a count's many subqueries over it (half its compile time).
        t = self.t = Trait.__table__.alias("t").c
        self.scope = scope
        value_text, value_num, kind = t.value_text, t.value_num, t.value_type
        self.num: Expr = value_num.is_not(None)
        self.int_num: Expr = and_(
            self.num, or_(kind == "integer", and_(kind == "string", value_text.not_like("%.%")))
        )
        self.float_num: Expr = and_(
            self.num, or_(kind == "float", and_(kind == "string", value_text.like("%.%")))
        )
        self.precise: Expr = and_(value_num > -BIG, value_num < BIG)
        long_numeric = and_(func.length(value_text) > HUGE_TEXT, self._looks_numeric())
        self.str_: Expr = and_(kind == "string", value_num.is_(None), not_(long_numeric))
        self.ovf: Expr = and_(
            value_num.is_(None), or_(kind == "integer", and_(kind == "string", long_numeric))
        )
        self.ovf_int: Expr = and_(self.ovf, value_text.not_like("%.%"))
        self.ovf_float: Expr = and_(self.ovf, value_text.like("%.%"))
        self.negative: Expr = value_text.like("-%")

    def _looks_numeric(self) -> Expr:
        """``-?[0-9]+(\\.[0-9]+)?`` in full, as evaluation reads numbers."""
        text_ = self.t.value_text
        if self.scope.dialect == "postgresql":
            return text_.op("~", is_comparison=True)(r"^-?[0-9]+(\.[0-9]+)?$")
        digits = case((text_.like("-%"), func.substr(text_, 2)), else_=text_)

        def glob(pattern: str) -> Expr:
            return cast(Expr, digits.op("GLOB", is_comparison=True)(pattern))

        bad = ("*[^0-9.]*", "*.*.*", ".*", "*.")
        return and_(digits != "", *[not_(glob(p)) for p in bad])

    def class_predicate(self, name: str) -> Expr:
        """Return the predicate selecting the rows of one class."""
        return {
            "str": self.str_,
            "bool": self.t.value_type == "boolean",
            "num": self.num,
            "ovf": self.ovf,
        }[name]

    def canonical_int(self) -> ColumnElement[str]:
        """``str(int(value_text))`` for integer rows: no leading zeros, no ``-0``."""
        text_ = self.t.value_text
        magnitude = func.ltrim(case((self.negative, func.substr(text_, 2)), else_=text_), "0")
        return cast(
            ColumnElement[str],
            case(
                (magnitude == "", "0"),
                (self.negative, literal("-").op("||")(magnitude)),
                else_=magnitude,
            ),
        )

    def text_cmp(self, name: str, value: str) -> Expr:
        column = self.t.value_text
        if name == NOT_EQUAL:
            return column != value
        if name == CONTAINS:
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
        if not texts:
            return FALSE
        is_bool = self.t.value_type == "boolean"
        return is_bool if len(texts) == 2 else and_(is_bool, self.t.value_prefix == texts[0])

    def texts_equal(self, texts: list[str]) -> Expr:
        """String rows whose text is one of ``texts`` (none of them numeric-looking)."""
        prefix = self.t.value_prefix
        heads = sorted({text_[:PREFIX_LENGTH] for text_ in texts})
        parts = [self.t.value_type == "string"]
        parts.append(prefix == heads[0] if len(heads) == 1 else prefix.in_(heads))
        # A stored prefix shorter than PREFIX_LENGTH is the whole text.
        if any(len(text_) >= PREFIX_LENGTH for text_ in texts):
            parts.append(self.t.value_text.in_(sorted(texts)))
        return and_(*parts)

    def by_sign(self, rows: Expr, positive: bool, negative: bool) -> Expr:
        """Restrict ``rows`` (overflowed numbers) to the signs for which the test holds."""
        if positive and negative:
            return rows
        if positive:
            return and_(rows, not_(self.negative))
        return and_(rows, self.negative) if negative else FALSE


def _compare(name: str, left: Any, right: Any) -> Expr:
    return cast(Expr, _TYPED[name](left, right))


def _number_cmp(name: str, column: Any, number: float, rows: Expr) -> Expr:
    """``rows`` whose ``column`` compares with ``number`` (constants for NaN and infinities)."""
    if math.isnan(number) or math.isinf(number):
        # Every stored double is finite: the test is the same for all of them.
        return rows if _TYPED[name](0.0, number) else FALSE
    return all_of([rows, _compare(name, column, literal(number))])


def _cast(kind: Callable[[Any], Any], value: str | None) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


# ---- typed comparisons (EQUAL ... CONTAINS) -----------------------------------------
def _typed_rows(row: TraitRow, name: str, value: str | None) -> RowPair:
    text_ = str(value)
    if has_semver_suffix(value):
        exact, unsure = {}, {"str": TRUE}  # semver strings: Python parses them
    else:
        exact, unsure = {"str": _str_rows(row, name, text_)}, {}
    comparison = lookup(name).comparison
    if comparison is None or not comparison.numbers:  # only strings compare (CONTAINS)
        return _branches(**exact), unsure
    test = comparison.test
    as_bool = value not in ("False", "false")
    exact["bool"] = row.bool_in(lambda flag: test(flag, as_bool))
    numbers_exact, numbers_unsure = _number_rows(row, name, value)
    return _branches(**exact, **numbers_exact), branches_or(unsure, numbers_unsure)


def _str_rows(row: TraitRow, name: str, text_: str) -> Expr:
    if name == EQUAL:
        # Numeric-looking strings are numbers: no string row holds such a text.
        return FALSE if _NUMERIC.fullmatch(text_) else row.texts_equal([text_])
    return and_(row.str_, row.text_cmp(name, text_))


def _number_rows(row: TraitRow, name: str, value: str | None) -> RowPair:
    """``num`` and ``ovf`` branches of a typed comparison (the value cast per trait type)."""
    test = _TYPED[name]
    as_int, as_float = _cast(int, value), _cast(float, value)
    if as_int is not None and abs(as_int) < BIG:
        # int(value) and float(value) are the same number, exact as a double, and any
        # stored double beyond 2**53 lies beyond it too: one comparison serves all rows.
        number = float(as_int)
        exact = {
            "num": _number_cmp(name, row.t.value_num, number, TRUE),
            "ovf": row.by_sign(row.ovf, test(math.inf, number), test(-math.inf, number)),
        }
        return _branches(**exact), {}
    floats: dict[str, Expr] = {}
    if as_float is not None:
        floats = _branches(
            num=_number_cmp(name, row.t.value_num, as_float, row.float_num),
            ovf=row.by_sign(
                row.ovf_float, test(math.inf, as_float), test(-math.inf, as_float)
            ),
        )
    if as_int is None:
        return floats, {}
    ints_exact, ints_unsure = _huge_int_rows(row, name, as_int)
    return branches_or(floats, ints_exact), ints_unsure


def _huge_int_rows(row: TraitRow, name: str, number: int) -> RowPair:
    """Integer rows against an integer value beyond 2**53 (floats are handled apart)."""
    try:
        rounded = float(number)
    except OverflowError:
        rounded = math.inf if number > 0 else -math.inf
    # A stored integer within 2**53 is exact and lies on the near side of the value.
    precise = and_(row.int_num, row.precise)
    small = _number_cmp(name, row.t.value_num, rounded, precise)
    big = and_(row.int_num, not_(row.precise))
    if row.scope.dialect != "postgresql":
        return _branches(num=small), _branches(num=big, ovf=row.ovf_int)
    # PostgreSQL's NUMERIC holds every such integer exactly (the CASE guards the cast).
    exact_text = case((or_(row.int_num, row.ovf_int), row.t.value_text), else_=None)
    test = _compare(name, sql_cast(exact_text, Numeric), sql_cast(literal(str(number)), Numeric))
    return _branches(num=or_(small, and_(big, test)), ovf=and_(row.ovf_int, test)), {}


# ---- other operators ------------------------------------------------------------------
def _in_rows(row: TraitRow, value: str | None) -> RowPair:
    accepted = sorted(parse_in_values(value))
    words = [a for a in accepted if not _NUMERIC.fullmatch(a)]
    # Integer traits compare as str(int): only canonical integer texts can match.
    numbers = [int(a) for a in accepted if _CANONICAL_INT.fullmatch(a)]
    small = sorted({float(n) for n in numbers if abs(n) < BIG})
    big = sorted({str(n) for n in numbers if abs(n) >= BIG})
    num: list[Expr] = []
    if small:
        num.append(and_(row.int_num, row.t.value_num.in_(small)))
    ovf = FALSE
    if big:
        num.append(and_(row.int_num, not_(row.precise), row.canonical_int().in_(big)))
        ovf = and_(row.ovf_int, row.canonical_int().in_(big))
    text_rows = row.texts_equal(words) if words else FALSE
    return _branches(str=text_rows, num=any_of(num), ovf=ovf), {}


def _modulo_rows(row: TraitRow, value: str | None) -> RowPair:
    parsed = parse_modulo(value)
    if parsed is None or parsed[0] == 0:
        return {}, {}
    divisor, remainder = parsed
    # Overflowed numbers never match: int % float overflows, inf % d is NaN.
    exact = _branches(bool=row.bool_in(build_predicate(MODULO, value, "")))
    value_num = row.t.value_num
    if not (divisor.is_integer() and abs(divisor) < 2**31 and math.isfinite(remainder)):
        return exact, {"num": TRUE}
    integral = value_num == func.round(value_num)
    if not remainder.is_integer():
        # Integral operands give integral remainders: nothing but odd floats can match.
        return exact, {"num": not_(integral)}
    # Python's % takes the divisor's sign; SQL's truncates: ((v % d) + d) % d mirrors it.
    d = int(divisor)
    fits = and_(value_num > -_BIGINT, value_num < _BIGINT, integral)
    as_int = sql_cast(case((fits, value_num), else_=None), BigInteger)
    exact = {**exact, "num": ((as_int % d) + d) % d == int(remainder)}
    return exact, {"num": or_(value_num <= -_BIGINT, value_num >= _BIGINT)}


def _regex_rows(row: TraitRow, value: str | None) -> RowPair:
    try:
        pattern = re.compile(str(value))
    except (re.error, RecursionError):
        return {}, {}
    prefix = _literal_prefix(str(value))
    if prefix is None:
        return {}, EVERY

    def starts(text_: Any) -> Expr:
        return TRUE if not prefix else func.substr(text_, 1, len(prefix)) == prefix

    def matches(shown: str) -> bool:
        return pattern.match(shown) is not None

    t = row.t
    # str() of an integer is its canonical text, of a float its repr (the stored text).
    exact = _branches(
        str=all_of([row.str_, starts(t.value_text)]),
        bool=row.bool_in(lambda flag: matches(str(flag))),
        num=any_of(
            [
                all_of([row.int_num, starts(row.canonical_int())]),
                all_of([t.value_type == "float", starts(t.value_text)]),
            ]
        ),
        ovf=any_of(
            [
                all_of([row.ovf_int, starts(row.canonical_int())]),
                row.by_sign(row.ovf_float, matches("inf"), matches("-inf")),
            ]
        ),
    )
    if prefix and prefix[0] not in "-0123456789":
        return exact, {}  # no float is spelled that way
    # "1.50" reads as 1.5, whose repr Python spells: those rows are Python's.
    return exact, {"num": and_(t.value_type == "string", row.float_num)}


def _literal_prefix(pattern: str) -> str | None:
    """Return L when ``re.match(pattern, s)`` is exactly ``s.startswith(L)``, else None."""
    body = pattern[:-2] if pattern.endswith(".*") and not pattern.endswith("\\.*") else pattern
    if not _LITERAL.fullmatch(body):
        return None
    return re.sub(r"\\(.)", r"\1", body)


def split_threshold(value: str | None) -> bool | None:
    """Return True when a split takes every value, False when none, None when it depends."""
    threshold = _cast(float, value)
    if threshold is None or math.isnan(threshold) or threshold < 0:
        return False
    # Buckets are below 100: a threshold of 100 takes every set value.
    return True if threshold >= 100 else None


def _split_rows(row: TraitRow, name: str, value: str | None) -> RowPair:
    verdict = split_threshold(value)
    return (EVERY, {}) if verdict else ({}, EVERY if verdict is None else {})


def _not_contains_rows(row: TraitRow, name: str, value: str | None) -> RowPair:
    return _branches(str=and_(row.str_, row.position(str(value)) == 0)), {}


def _every_row(row: TraitRow, name: str, value: str | None) -> RowPair:
    return EVERY, {}


def _no_row(row: TraitRow, name: str, value: str | None) -> RowPair:
    return {}, {}


class NotTranslatable:
    """Marks an operator SQL cannot decide: Python checks every trait row of its key."""

    def __repr__(self) -> str:
        return "NOT_TRANSLATABLE"


NOT_TRANSLATABLE = NotTranslatable()
# (row, operator name, condition value) -> (exact, unsure) branches over a present row.
RowRule = Callable[[TraitRow, str, str | None], RowPair]

# The SQL facet of the operator registry (``evaluation.operators``): every operator has a
# row rule or is explicitly NOT_TRANSLATABLE, and a test holds the two lists equal. A rule
# is about a *present* trait row; where a condition also holds for a missing trait
# (IS_NOT_SET), ``sql_translate`` adds the absence itself.
ROW_SQL: dict[str, RowRule | NotTranslatable] = {
    EQUAL: _typed_rows,
    NOT_EQUAL: _typed_rows,
    GREATER_THAN: _typed_rows,
    GREATER_THAN_INCLUSIVE: _typed_rows,
    LESS_THAN: _typed_rows,
    LESS_THAN_INCLUSIVE: _typed_rows,
    CONTAINS: _typed_rows,
    NOT_CONTAINS: _not_contains_rows,
    REGEX: lambda row, name, value: _regex_rows(row, value),
    IN: lambda row, name, value: _in_rows(row, value),
    IS_SET: _every_row,
    IS_NOT_SET: _no_row,
    MODULO: lambda row, name, value: _modulo_rows(row, value),
    PERCENTAGE_SPLIT: _split_rows,
}


def row_predicates(row: TraitRow, condition: Condition) -> RowPair:
    """Return the exact and unsure branches of one condition over a present trait row.

    :param row: the traits row alias
    :param condition: the condition
    :return: (exact, unsure) branches by class; unknown operators match no row
    """
    name = condition.operator
    if name not in OPERATORS:
        return {}, {}
    # An operator without an SQL entry fails a test; until then Python decides it.
    rule = ROW_SQL.get(name, NOT_TRANSLATABLE)
    if isinstance(rule, NotTranslatable):
        return {}, EVERY
    return rule(row, name, condition.value)
