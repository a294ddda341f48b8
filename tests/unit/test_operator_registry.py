"""The operator registry: every operator is one entry with every facet, spelled as Flagsmith does.

Operators are iterated from the registry, so an operator added later is checked here without
editing this module. The SQL and search facets, which live in services, are checked in
``tests/services/test_operator_facets.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_args

import pytest
from flag_engine.segments.types import ConditionOperator

from webapp.evaluation import SUPPORTED_OPERATORS, Condition
from webapp.evaluation.operators import (
    OPERATORS,
    UNKNOWN,
    Operator,
    Widget,
    build_predicate,
    lookup,
    reads_identity_key,
)
from webapp.evaluation.predicates import Comparison
from webapp.evaluation.validation import condition_error

ENTRIES = list(OPERATORS.values())
FACETS = [field.name for field in dataclasses.fields(Operator)]


def test_registry__names__are_the_official_engines_operators() -> None:
    # The official engine's operator type is the list to equal: no more, no fewer.
    assert set(OPERATORS) == set(get_args(ConditionOperator)) == SUPPORTED_OPERATORS


def test_registry__spot_check__flagsmith_spellings() -> None:
    # Stored rules and imported documents use these exact spellings.
    for name in ("EQUAL", "GREATER_THAN_INCLUSIVE", "NOT_CONTAINS", "IS_NOT_SET", "IN"):
        assert OPERATORS[name].name == name
    assert "PERCENTAGE_SPLIT" in OPERATORS and "MODULO" in OPERATORS


def _facet_is_declared(operator: Operator, facet: str) -> bool:
    value: Any = getattr(operator, facet)
    checks = {
        "name": lambda v: isinstance(v, str) and v.isupper(),
        "label": lambda v: isinstance(v, str) and v.strip() != "",
        "build": callable,
        "check_value": callable,
        "trial_values": callable,
        "widget": lambda v: v is None or (isinstance(v, Widget) and v.label and v.placeholder),
        "comparison": lambda v: v is None or (isinstance(v, Comparison) and callable(v.test)),
        "semver": lambda v: type(v) is bool,
        "split": lambda v: type(v) is bool,
        "search": lambda v: v is None or (isinstance(v, str) and v == v.strip() and v != ""),
    }
    # A facet added to Operator without a check here fails too: decide what declared means.
    return bool(checks[facet](value))


@pytest.mark.parametrize("facet", FACETS)
@pytest.mark.parametrize("operator", ENTRIES, ids=lambda o: o.name)
def test_registry__every_operator__declares_every_facet(operator: Operator, facet: str) -> None:
    assert _facet_is_declared(operator, facet), (operator.name, facet)


@pytest.mark.parametrize("operator", ENTRIES, ids=lambda o: o.name)
def test_registry__every_operator__facets_run_on_sample_values(operator: Operator) -> None:
    # Given a few condition values, including none and a bad one
    for value in (None, "", "1", "x|y", "1.2.3:semver", "(", "50"):
        # When each facet runs, Then it answers in its type (nothing raises)
        predicate = operator.build(value, "7")
        assert all(isinstance(predicate(t), bool) for t in (None, "a", 1, 1.5, True))
        message = operator.check_value(value)
        assert message is None or (isinstance(message, str) and message)
        assert isinstance(operator.trial_values(value, predicate), list)
        error = condition_error(Condition("" if operator.split else "t", operator.name, value))
        assert error is None or isinstance(error, str)


def test_registry__labels_and_search_spellings__are_unique() -> None:
    labels = [o.label for o in ENTRIES]
    spellings = [o.search for o in ENTRIES if o.search]
    assert len(labels) == len(set(labels))
    assert len(spellings) == len(set(spellings))


def test_registry__semver_variants__only_on_typed_comparisons() -> None:
    assert all(o.comparison is not None for o in ENTRIES if o.semver)
    assert any(o.semver for o in ENTRIES)


def test_registry__operators_without_a_widget__take_no_value_and_accept_any() -> None:
    valueless = [o for o in ENTRIES if not o.takes_value]
    assert valueless, "IS_SET and IS_NOT_SET take no value"
    for operator in valueless:
        assert operator.check_value(None) is None


@pytest.mark.parametrize("operator", ENTRIES, ids=lambda o: o.name)
def test_build_predicate__every_operator__dispatches_to_its_entry(operator: Operator) -> None:
    # build_predicate and the entry's own builder agree on every sample trait
    ours, direct = build_predicate(operator.name, "10", "7"), operator.build("10", "7")
    for trait in (None, "10", 10, 9.5, True, "abc"):
        assert ours(trait) is direct(trait)


def test_lookup__unknown_operator__never_matches_and_is_not_a_split() -> None:
    assert lookup("NOPE") is UNKNOWN
    assert not any(build_predicate("NOPE", v, "7")(v) for v in ("a", "1", None))
    assert reads_identity_key("NOPE", "") is False
    assert [o.name for o in ENTRIES if reads_identity_key(o.name, "")] == ["PERCENTAGE_SPLIT"]
