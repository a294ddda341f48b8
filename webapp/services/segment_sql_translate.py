"""Translate segment rules into SQL ``surely``/``maybe`` predicates (see ``segment_sql``).

Pure expression building: conditions become semi-joins over the traits table, and rule
quantifiers combine their translations. Nothing here executes a query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ..evaluation import Condition, Rule
from ..evaluation.operators import IS_NOT_SET, PERCENTAGE_SPLIT, build_predicate
from ..evaluation.segments import describe_property, normalise, parse_jsonpath
from ..models import Identity, Trait
from .segment_sql_rows import (
    _FALSE,
    _TRUE,
    Expr,
    Scope,
    _and,
    _const,
    _not,
    _or,
    _Row,
    _row_predicates,
    _split_rows,
)


@dataclass(frozen=True, slots=True)
class Translation:
    """The SQL form of a segment: certainly members, possibly members."""

    surely: Expr
    maybe: Expr

    @property
    def exact(self) -> bool:
        """Tell whether SQL alone decides membership (no Python check needed)."""
        return self.surely is self.maybe


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
