"""The operator registry's facets that live in services: SQL translation and the search SQL.

Every registry operator must have an SQL row rule for segment membership, or be marked
NOT_TRANSLATABLE explicitly; every operator the search language spells must parse to itself
and have search SQL. No database is touched (runs once, not per database): that the SQL
agrees with evaluation is ``test_segment_sql.py``'s and ``test_identity_search.py``'s job.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markupsafe import escape

import webapp
from webapp.evaluation.operators import OPERATORS, Operator
from webapp.services.identities import search
from webapp.services.identities.search_sql import SEARCH_SQL
from webapp.services.segments.sql_rows import NOT_TRANSLATABLE, ROW_SQL

ENTRIES = list(OPERATORS.values())
SEARCHABLE = [o for o in ENTRIES if o.search]


def test_row_sql__keys__are_exactly_the_registry() -> None:
    # A new operator without an SQL entry (or an explicit NOT_TRANSLATABLE) fails here,
    # and so does an SQL entry for an operator the registry does not know.
    assert set(ROW_SQL) == set(OPERATORS)


@pytest.mark.parametrize("operator", ENTRIES, ids=lambda o: o.name)
def test_row_sql__every_operator__has_a_rule_or_is_marked_not_translatable(
    operator: Operator,
) -> None:
    rule = ROW_SQL.get(operator.name)
    assert rule is NOT_TRANSLATABLE or callable(rule), operator.name


def test_search_sql__keys__are_the_operators_the_search_spells() -> None:
    assert set(SEARCH_SQL) == {o.name for o in SEARCHABLE}


def _query(operator: Operator) -> str:
    if not operator.takes_value:
        return f"plan {operator.search}"
    if operator.name == "IN":
        return f"plan {operator.search} (1, 2)"
    return f"plan {operator.search} 1"


@pytest.mark.parametrize("operator", SEARCHABLE, ids=lambda o: o.name)
def test_search__every_spelling__parses_to_its_operator(operator: Operator) -> None:
    # Given the registry's spelling, in lower and upper case
    for query in (_query(operator), _query(operator).upper().replace("PLAN", "plan")):
        # When parsed
        parsed = search.parse_query(query)
        # Then the condition names the registry's operator
        assert [c.op for c in parsed.conditions] == [operator.name], query


@pytest.mark.parametrize("operator", SEARCHABLE, ids=lambda o: o.name)
def test_search__every_spelling__compiles_to_sql(operator: Operator) -> None:
    parsed = search.parse_query(_query(operator))
    clauses = search.filter_clauses(1, parsed) + search.page_clauses(1, parsed, plan=search._Plan())
    assert all(str(clause) for clause in clauses)


def test_search_help__every_spelling__is_shown_on_the_users_page() -> None:
    # The help text is prose with examples; a new spelling must be added to it.
    page = Path(webapp.__file__).parent / "templates" / "users" / "index.html"
    examples = [f" {code} " for code in re.findall(r"<code>(.*?)</code>", page.read_text())]
    for operator in SEARCHABLE:
        spelled = f" {escape(operator.search)} "
        assert any(spelled in example or example == spelled for example in examples), spelled
