"""Translate segment rules into SQL ``surely``/``maybe`` formulas (see ``sql_membership``).

A condition becomes a formula over ``Has`` atoms: "the identity has a ``key`` trait row
in these branches" (``sql_rows``). Rule quantifiers combine formulas; atoms on one
key merge, because an identity has at most one row per key: ``30 <= age < 40`` is one
range over one row, ``plan = a OR plan = b`` one lookup. A formula renders two ways:

- ``predicate``: a WHERE clause over identities (keyset pages, Python candidates);
- ``count_select``: the number of members as set algebra over trait scans (UNION,
  INTERSECT, EXCEPT of identity ids), which never joins row by row and so keeps the
  same plan whatever the planner estimates; each atom is one index range per class.

Nothing here executes a query.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Union

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    except_,
    func,
    intersect,
    literal,
    select,
    union,
    union_all,
)

from ...evaluation import Condition, Rule
from ...evaluation.normalise import normalise
from ...evaluation.operators import REGEX, build_predicate, reads_identity_key
from ...evaluation.segments import describe_property, parse_jsonpath
from ...models import Identity
from .. import regex_guard
from .sql_rows import (
    EVERY,
    FALSE,
    TRUE,
    Branches,
    Expr,
    Scope,
    TraitRow,
    all_of,
    any_of,
    branches_and,
    branches_or,
    is_every,
    negate,
    row_predicates,
)


# ---- formulas -------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Has:
    """The identity has a ``key`` trait row in ``branches`` (class -> row predicate)."""

    key: str
    branches: Branches
    row: TraitRow


@dataclass(frozen=True, eq=False)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Not:
    item: Node


Node = Union[Has, And, Or, Not, bool]  # noqa: UP007 (a runtime alias)


def _merge(items: Sequence[Node], combine: Callable[[Branches, Branches], Branches]) -> list[Node]:
    """Merge atoms on one key (one row per identity and key) with ``combine``."""
    out: list[Node] = []
    position: dict[str, int] = {}
    for item in items:
        if isinstance(item, Has) and item.key in position:
            index = position[item.key]
            first = out[index]
            assert isinstance(first, Has) and first.row is item.row
            branches = combine(first.branches, item.branches)
            if not branches:
                return [False]  # no row can satisfy both
            out[index] = Has(item.key, branches, item.row)
        else:
            if isinstance(item, Has):
                position[item.key] = len(out)
            out.append(item)
    return out


def _flat(items: Iterable[Node], kind: type[And] | type[Or]) -> list[Node]:
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else [item])
    return flat


def all_nodes(items: Iterable[Node]) -> Node:
    """Return the conjunction of formulas (constants folded, atoms on one key merged)."""
    kept: list[Node] = [i for i in _flat(items, And) if i is not True]
    if any(i is False for i in kept):
        return False
    parts = _merge(kept, branches_and)
    if any(i is False for i in parts):
        return False
    return True if not parts else parts[0] if len(parts) == 1 else And(tuple(parts))


def any_nodes(items: Iterable[Node]) -> Node:
    """Return the disjunction of formulas (constants folded, atoms on one key merged)."""
    kept: list[Node] = [i for i in _flat(items, Or) if i is not False]
    if any(i is True for i in kept):
        return True
    parts = _merge(kept, branches_or)
    return False if not parts else parts[0] if len(parts) == 1 else Or(tuple(parts))


def not_node(item: Node) -> Node:
    """Return the negation of a formula."""
    if isinstance(item, bool):
        return not item
    return item.item if isinstance(item, Not) else Not(item)


def _has(row: TraitRow, key: str, branches: Branches) -> Node:
    return Has(key, branches, row) if branches else False


# ---- rendering: predicate over identities ----------------------------------------------
def _branch_exprs(has: Has) -> list[Expr]:
    return [
        has.row.class_predicate(name) if expr is TRUE else expr
        for name, expr in has.branches.items()
    ]


def _trait_rows(has: Has) -> Select[Any]:
    t = has.row.t
    return select(t.identity_id).where(
        t.environment_id == has.row.scope.environment_id, t.key == has.key
    )


def predicate(node: Node) -> Expr:
    """Render a formula as a WHERE clause over ``Identity`` rows.

    :param node: the formula
    :return: the clause (``true()``/``false()`` for constants)
    """
    if isinstance(node, bool):
        return TRUE if node else FALSE
    if isinstance(node, Has):
        rows = _trait_rows(node)
        if not is_every(node.branches):
            rows = rows.where(any_of(_branch_exprs(node)))
        return Identity.id.in_(rows)
    if isinstance(node, Not):
        return negate(predicate(node.item))
    parts = [predicate(i) for i in node.items]
    return all_of(parts) if isinstance(node, And) else any_of(parts)


# ---- rendering: set algebra over trait scans --------------------------------------------
def _all_ids(scope: Scope) -> Select[Any]:
    return select(Identity.id.label("identity_id")).where(
        Identity.environment_id == scope.environment_id
    )


def _wrap(compound: CompoundSelect[Any]) -> Select[Any]:
    # SQLite cannot nest compound selects in parentheses: nest them as subqueries.
    sub = compound.subquery()
    return select(sub.c.identity_id)


def _combine(build: Callable[..., CompoundSelect[Any]], selects: list[Select[Any]]) -> Select[Any]:
    return selects[0] if len(selects) == 1 else _wrap(build(*selects))


def _has_ids(has: Has) -> Select[Any]:
    rows = _trait_rows(has)
    if is_every(has.branches):
        return rows
    # Branches are disjoint (one class each): UNION ALL, one index range apiece.
    return _combine(union_all, [rows.where(expr) for expr in _branch_exprs(has)])


def _negations(node: Or) -> Node:
    """``a OR NOT b`` as ``NOT (b AND NOT a)``: set algebra needs a positive base."""
    return not_node(all_nodes(not_node(i) for i in node.items))


def id_select(scope: Scope, node: Node) -> Select[Any]:
    """Render a formula (not ``False``) as a SELECT of distinct member ids, ``identity_id``.

    :param scope: the environment
    :param node: the formula
    :return: the select
    """
    if node is True:
        return _all_ids(scope)
    if isinstance(node, Has):
        return _has_ids(node)
    if isinstance(node, Not):
        return _wrap(except_(_all_ids(scope), id_select(scope, node.item)))
    if isinstance(node, Or):
        if any(isinstance(i, Not) for i in node.items):
            return id_select(scope, _negations(node))
        return _combine(union, [id_select(scope, i) for i in node.items])
    assert isinstance(node, And)
    positives = [id_select(scope, i) for i in node.items if not isinstance(i, Not)]
    negatives = [id_select(scope, i.item) for i in node.items if isinstance(i, Not)]
    base = _combine(intersect, positives) if positives else _all_ids(scope)
    return _wrap(except_(base, *negatives)) if negatives else base


def _count_all(scope: Scope) -> ColumnElement[int]:
    query = select(func.count()).select_from(Identity)
    return query.where(Identity.environment_id == scope.environment_id).scalar_subquery()


def _count_of(scope: Scope, node: Node) -> ColumnElement[int]:
    if isinstance(node, bool):
        return _count_all(scope) if node else literal(0)
    if isinstance(node, Not):
        return _count_all(scope) - _count_of(scope, node.item)
    if isinstance(node, Or) and any(isinstance(i, Not) for i in node.items):
        return _count_of(scope, _negations(node))
    ids = id_select(scope, node).subquery()
    return select(func.count()).select_from(ids).scalar_subquery()


def count_select(scope: Scope, node: Node) -> Select[Any]:
    """Render "how many identities satisfy the formula" as a one-row, one-column SELECT.

    :param scope: the environment
    :param node: the formula
    :return: the select
    """
    return select(_count_of(scope, node))


# ---- translations -------------------------------------------------------------------
@dataclass(frozen=True)
class Translation:
    """The SQL form of a segment: certainly members (``sure``), possibly members.

    ``doubt`` holds every identity whose membership SQL leaves open (``possible`` but
    not ``sure``): those with a trait row SQL could not decide. It is usually tiny or
    empty (rows beyond a double's range...), so Python checks only candidates in it.
    """

    sure: Node
    possible: Node
    doubt: Node = False

    @property
    def exact(self) -> bool:
        """Tell whether SQL alone decides membership (no Python check needed)."""
        return self.sure is self.possible

    @cached_property
    def surely(self) -> Expr:
        """``sure`` as a WHERE clause over identities."""
        return predicate(self.sure)

    @cached_property
    def maybe(self) -> Expr:
        """``possible`` as a WHERE clause over identities."""
        return self.surely if self.exact else predicate(self.possible)

    @cached_property
    def undecided(self) -> Expr:
        """``doubt`` as a WHERE clause over identities."""
        return FALSE if self.exact else predicate(self.doubt)


def _same(node: Node) -> Translation:
    return Translation(node, node)


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


# ---- conditions, rules, segments ------------------------------------------------------
def _present_trait(row: TraitRow, key: str, condition: Condition) -> Translation:
    """The identities with a ``key`` row that satisfies the condition."""
    exact, unsure = row_predicates(row, condition)
    sure = _has(row, key, exact)
    if not unsure:
        return _same(sure)
    possible = _has(row, key, branches_or(exact, unsure))
    return Translation(sure, possible, _has(row, key, unsure))


def _trait_condition(row: TraitRow, key: str, condition: Condition) -> Translation:
    present = _present_trait(row, key, condition)
    test = build_predicate(condition.operator, condition.value, row.scope.segment_key)
    if not test(None):
        return present
    # The condition holds for a missing trait too (IS_NOT_SET): absence is exact in SQL.
    absent = not_node(Has(key, EVERY, row))
    sure = any_nodes([present.sure, absent])
    if present.exact:
        return _same(sure)
    return Translation(sure, any_nodes([present.possible, absent]), present.doubt)


def _identity_key_condition(row: TraitRow, condition: Condition) -> Translation:
    """A condition on the identity key, which no column holds: decided for every identity
    at once when its row rule takes every row or none, else by Python."""
    exact, unsure = row_predicates(row, condition)
    if not unsure and (not exact or is_every(exact)):
        return _same(bool(exact))
    return Translation(False, True, True)


def translate_condition(
    scope: Scope, condition: Condition, row: TraitRow | None = None
) -> Translation:
    """Translate one condition (see the module docstring for surely/maybe).

    :param scope: environment and dialect
    :param condition: the condition
    :param row: the traits alias to build on (one per segment, so atoms can merge)
    :return: its translation
    """
    row = row or TraitRow(scope)
    prop = condition.property
    if condition.operator == REGEX and regex_guard.is_refused(str(condition.value)):
        # Refused patterns never match in evaluation (and must not run here either).
        return _same(False)
    if reads_identity_key(condition.operator, prop):
        return _identity_key_condition(row, condition)
    if describe_property(prop) != "jsonpath":
        return _trait_condition(row, prop, condition)
    # A literal trait counts when present; its absence is the path's business.
    literal_trait = _present_trait(row, prop, condition)
    # A trait literally named like the path wins; otherwise the path is read.
    missing = not_node(Has(prop, EVERY, row))
    names = parse_jsonpath(prop) or ()
    if len(names) == 2 and names[0] == "environment":
        seen = scope.environment_name if names[1] == "name" else scope.environment_key
        test = build_predicate(condition.operator, condition.value, scope.segment_key)
        fallback = all_nodes([missing, test(normalise(seen))])
        sure = any_nodes([literal_trait.sure, fallback])
        if literal_trait.exact:
            return _same(sure)
        possible = any_nodes([literal_trait.possible, fallback])
        return Translation(sure, possible, literal_trait.doubt)
    possible = any_nodes([literal_trait.possible, missing])
    return Translation(literal_trait.sure, possible, any_nodes([literal_trait.doubt, missing]))


def _pair(sure: Node, possible: Node, parts: Sequence[Translation]) -> Translation:
    if all(p.exact for p in parts):
        return _same(sure)
    # An identity no part doubts is decided by every part, so by their combination.
    return Translation(sure, possible, any_nodes(p.doubt for p in parts))


def _quantified(kind: str, parts: Sequence[Translation]) -> Translation:
    if not parts:
        return _same(True)
    if kind == "ANY":
        return _pair(any_nodes(p.sure for p in parts), any_nodes(p.possible for p in parts), parts)
    # NONE: certainly none holds when none may hold, and the other way round.
    return _pair(
        not_node(any_nodes(p.possible for p in parts)),
        not_node(any_nodes(p.sure for p in parts)),
        parts,
    )


def _all(parts: Sequence[Translation]) -> Translation:
    return _pair(all_nodes(p.sure for p in parts), all_nodes(p.possible for p in parts), parts)


def translate_rule(scope: Scope, rule: Rule, row: TraitRow | None = None) -> Translation:
    """Translate one rule: its quantifier over conditions and over nested rules separately.

    :param scope: environment and dialect
    :param rule: the rule
    :param row: the traits alias to build on (see ``translate_condition``)
    :return: its translation
    """
    row = row or TraitRow(scope)
    conditions = [translate_condition(scope, c, row) for c in rule.conditions]
    subrules = [translate_rule(scope, r, row) for r in rule.rules]
    if rule.type == "ALL":
        return _all(conditions + subrules)
    if rule.type in ("ANY", "NONE"):
        return _all([_quantified(rule.type, conditions), _quantified(rule.type, subrules)])
    return _same(False)  # unknown rule types never match (engine: KeyError)


def translate(scope: Scope, rules: Sequence[Rule]) -> Translation:
    """Translate a segment's top-level rules (all must hold; no rules never matches).

    :param scope: environment and dialect
    :param rules: the segment's rules
    :return: the segment's translation
    """
    if not rules:
        return _same(False)
    row = TraitRow(scope)
    return _all([translate_rule(scope, r, row) for r in rules])
