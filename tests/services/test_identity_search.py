"""The Users page search: query language, typed matching, keyset pagination and counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from tests.factories import make_environment, make_identity, make_project
from webapp.extensions import db
from webapp.models import Identity, Trait
from webapp.services.errors import ValidationError
from webapp.services.identities import search as search
from webapp.services.identities.search import Condition, IdentifierTerm, Literal, ParsedQuery

# Database behaviour (search SQL, keyset paging, counts): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

NUM = "number"


def _num(text_: str) -> Literal:
    return Literal(NUM, text_, float(text_))


def _cond(key: str, op: str, *values: Literal) -> ParsedQuery:
    return ParsedQuery(None, (Condition(key, op, values),))


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ParsedQuery()),
        ("   ", ParsedQuery()),
        ("alice", ParsedQuery(IdentifierTerm("alice", "prefix"))),
        ('"alice smith"', ParsedQuery(IdentifierTerm("alice smith", "exact"))),
        ("~lic", ParsedQuery(IdentifierTerm("lic", "contains"))),
        ('~ "a b"', ParsedQuery(IdentifierTerm("a b", "contains"))),
        ("plan = pro", _cond("plan", "EQUAL", Literal("string", "pro"))),
        ("plan=pro", ParsedQuery(None, (Condition("plan", "EQUAL", (Literal("string", "pro"),)),))),
        ("plan != pro", _cond("plan", "NOT_EQUAL", Literal("string", "pro"))),
        ("age > 30", ParsedQuery(None, (Condition("age", "GREATER_THAN", (_num("30"),)),))),
        ("age >= 30", _cond("age", "GREATER_THAN_INCLUSIVE", _num("30"))),
        ("age < -1.5", ParsedQuery(None, (Condition("age", "LESS_THAN", (_num("-1.5"),)),))),
        ("age <= 30", ParsedQuery(None, (Condition("age", "LESS_THAN_INCLUSIVE", (_num("30"),)),))),
        ("code = 007", ParsedQuery(None, (Condition("code", "EQUAL", (_num("007"),)),))),
        ('code = "007"', _cond("code", "EQUAL", Literal("string", "007"))),
        (
            "beta = TRUE",
            ParsedQuery(None, (Condition("beta", "EQUAL", (Literal("boolean", "true"),)),)),
        ),
        (
            'beta = "true"',
            ParsedQuery(None, (Condition("beta", "EQUAL", (Literal("string", "true"),)),)),
        ),
        (
            "country in (DE, FR)",
            ParsedQuery(
                None,
                (Condition("country", "IN", (Literal("string", "DE"), Literal("string", "FR"))),),
            ),
        ),
        (
            "country IN (DE)",
            ParsedQuery(None, (Condition("country", "IN", (Literal("string", "DE"),)),)),
        ),
        (
            "email ~ @acme.com",
            ParsedQuery(None, (Condition("email", "CONTAINS", (Literal("string", "@acme.com"),)),)),
        ),
        ("beta is set", ParsedQuery(None, (Condition("beta", "IS_SET"),))),
        ("beta IS NOT SET", ParsedQuery(None, (Condition("beta", "IS_NOT_SET"),))),
        (
            '"full name" = "Ann \\"A\\" Lee"',
            _cond("full name", "EQUAL", Literal("string", 'Ann "A" Lee')),
        ),
        (
            "ali and plan = pro AND age > 30",
            ParsedQuery(
                IdentifierTerm("ali", "prefix"),
                (
                    Condition("plan", "EQUAL", (Literal("string", "pro"),)),
                    Condition("age", "GREATER_THAN", (_num("30"),)),
                ),
            ),
        ),
    ],
)
def test_parse_query__valid__gives_typed_structure(query, expected):
    # Given a query / When parsed / Then the structure and value types are as expected
    assert search.parse_query(query) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("plan = 'pro", "Unclosed quote ' at character 8"),
        ('"alice', 'Unclosed quote " at character 1'),
        ("' OR 1=1 --", "Unclosed quote"),
        ("plan = x'; DROP TABLE traits; --", "Unclosed quote"),
        ("age > lots", "> compares numbers, and “lots” is not one"),
        ("age >= true", "compares numbers"),
        ("plan =", "Could not read “plan =”"),
        ("= pro", "Could not read"),
        ("plan = pro and", "“and” needs a condition on both sides"),
        ("and plan = pro", "“and” needs a condition on both sides"),
        ("plan = pro or plan = free", "“or” is not supported"),
        ("alice bob", "Could not read"),
        ("alice and bob", "Only one identifier term"),
        ("country in DE, FR", "write the list as “key in (a, b)”"),
        ("country in (DE FR)", "separate the values with commas"),
        ("country in (DE,)", "a value is missing after the last comma"),
        ("country in ()", "write the list"),
        ("beta is maybe", "Could not read"),
        ("plan = pro; drop", "Could not read “plan = pro; drop”"),
        ("plan = pro !", "Unexpected “!” at character 12"),
        ("a = 1 and " * 12 + "b = 2", "At most 12 conditions"),
        ("x" * 1001, "at most 1000 characters"),
        ('"' + "k" * 201 + '" = 1', "1 to 200 characters"),
    ],
)
def test_parse_query__malformed__raises_validation_error_with_message(query, message):
    # Given a malformed query / When parsed / Then a ValidationError names the problem
    with pytest.raises(ValidationError) as caught:
        search.parse_query(query)
    assert message in str(caught.value)
    assert caught.value.field == "q"


# ----------------------------------------------------------------------------- matching


@pytest.fixture
def env(app):
    environment = make_environment(make_project())
    people = {
        "ann": {"plan": "pro", "age": 34, "code": "007", "beta": True, "email": "ann@ACME.com"},
        "ben": {"plan": "free", "age": 30.0, "code": 7, "beta": "true", "email": "ben@x.io"},
        "cat": {"plan": "pro", "age": "29", "code": "7a", "beta": False},
        "dan": {"plan": "Pro", "age": 31.5, "zip": "01234"},
        "eve_%": {"plan": "30"},
        "Ann2": {"plan": 30},
    }
    for identifier, traits in people.items():
        make_identity(environment, identifier, traits)
    db.session.commit()
    return environment


def _match(environment, query: str, has_overrides: bool = False) -> set[str]:
    page = search.search_identities(environment.id, query, has_overrides=has_overrides)
    return {row.identifier for row in page.rows}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("plan = pro", {"ann", "cat"}),
        ("plan = Pro", {"dan"}),
        ("plan != pro", {"ben", "dan", "eve_%", "Ann2"}),
        ("age > 30", {"ann", "dan"}),
        ("age >= 30", {"ann", "ben", "dan"}),
        ("age < 30", {"cat"}),
        ("age <= 30", {"ben", "cat"}),
        ("code = 7", {"ann", "ben"}),
        ("code = 007", {"ann", "ben"}),
        ('code = "007"', {"ann"}),
        ('code = "7a"', {"cat"}),
        ("beta = true", {"ann", "ben"}),
        ("beta = false", {"cat"}),
        ("beta is set", {"ann", "ben", "cat"}),
        ("beta is not set", {"dan", "eve_%", "Ann2"}),
        ("plan in (pro, free)", {"ann", "ben", "cat"}),
        ("plan in (30)", {"eve_%", "Ann2"}),
        ('plan in ("30")', {"eve_%"}),
        ("email ~ @acme.com", {"ann"}),
        ("email ~ %", set()),
        ("zip = 1234", {"dan"}),
        ('zip = "01234"', {"dan"}),
        ("an", {"ann"}),
        ("Ann", {"Ann2"}),
        ("a", {"ann"}),
        ('"ann"', {"ann"}),
        ("~AN", {"ann", "dan", "Ann2"}),
        ("~_", {"eve_%"}),
        ("~%", {"eve_%"}),
        ("plan = pro and age > 30", {"ann"}),
        ("~n and plan = pro and beta is set", {"ann"}),
        ("nobody is set", set()),
    ],
)
def test_search_identities__query__matches_typed_like_evaluation(env, query, expected):
    # Given identities with typed traits / When searching / Then exactly these match
    assert _match(env, query) == expected


@pytest.mark.parametrize("selective_cap", [0, 2, 10_000])
@pytest.mark.parametrize(
    "query",
    [
        "plan = pro and age > 30",
        "plan = pro and beta is not set",
        "a and plan = pro and code != 7",
        "beta is set and plan in (pro, free) and age <= 34",
        "email ~ acme and age >= 30",
        "plan = nobody and age > 1",
    ],
)
def test_search_identities__driven_or_walked_plan__same_rows_and_count(
    env, monkeypatch, selective_cap, query
):
    # Given the same query planned as index-driven, walked, or mixed
    expected = _match(env, query)
    monkeypatch.setattr(search, "SELECTIVE_CAP", selective_cap)
    # When searching and counting / Then the rows and the exact count do not change
    page = search.search_identities(env.id, query)
    assert {row.identifier for row in page.rows} == expected
    assert (page.total.value, page.total.exact) == (len(expected), True)
    has = search.count_matches(env.id, search.parse_query(query), has_overrides=True)
    assert has.value == 0


def test_search_identities__hostile_values__are_bound_and_tables_survive(env):
    # Given quoted payloads that would break spliced SQL
    for query in [
        'plan = "x\'; DROP TABLE traits; --"',
        'plan = "\' OR 1=1 --"',
        "\"' OR '1'='1\"",
    ]:
        # When searched / Then nothing matches and nothing is dropped
        assert _match(env, query) == set()
    assert db.session.scalar(select(func.count()).select_from(Trait)) > 0


# ----------------------------------------------------------------------------- paging


@pytest.fixture
def tied(app):
    """Identities whose sort keys tie: equal prefixes, created and last-seen times."""
    environment = make_environment(make_project())
    base = datetime(2024, 1, 1, tzinfo=UTC)
    long_prefix = "p" * 100
    for i in range(53):
        identifier = f"{long_prefix}{i:02d}" if i % 3 == 0 else f"user-{i % 7}-{i:02d}"
        identity = Identity(environment_id=environment.id, identifier=identifier)
        identity.created_at = base + timedelta(seconds=i // 5)
        identity.last_seen_at = base + timedelta(seconds=i % 4)
        db.session.add(identity)
    make_environment(make_project("Other"))
    db.session.commit()
    return environment


@pytest.mark.parametrize("sort", search.SORTS)
@pytest.mark.parametrize("per_page", [1, 7, 53, 60])
def test_search_identities__walk_all_pages__no_duplicates_or_gaps(tied, sort, per_page):
    # Given identities with tied sort keys
    everyone = set(
        db.session.scalars(select(Identity.id).where(Identity.environment_id == tied.id))
    )
    # When walking forward through every page
    seen: list[int] = []
    pages: list[search.SearchPage] = []
    cursor = None
    while True:
        page = search.search_identities(tied.id, "", sort=sort, after=cursor, per_page=per_page)
        pages.append(page)
        seen.extend(row.id for row in page.rows)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Then every identity appears exactly once, in sort order
    assert len(seen) == len(everyone) and set(seen) == everyone
    rows = [row for page in pages for row in page.rows]
    keys = [_key(row, sort) for row in rows]
    assert keys == sorted(keys, reverse=sort.startswith("-"))
    # And walking back from the last page with "before" retraces the same pages
    back = pages[-1]
    for expected in reversed(pages[:-1]):
        assert back.prev_cursor is not None
        back = search.search_identities(
            tied.id, "", sort=sort, before=back.prev_cursor, per_page=per_page
        )
        assert [r.id for r in back.rows] == [r.id for r in expected.rows]
    assert back.prev_cursor is None


def _key(row: search.IdentityRow, sort: str):
    column = {"identifier": row.identifier[:100], "created": row.created_at}.get(
        sort.lstrip("-"), row.last_seen_at
    )
    return (column, row.id)


@pytest.mark.parametrize("cursor", ["garbage", "", "eyJ4IjoxfQ", "WyJjcmVhdGVkIiwibm8iLDFd"])
def test_search_identities__malformed_cursor__reads_as_first_page(tied, cursor):
    first = search.search_identities(tied.id, "", sort="created", per_page=5)
    page = search.search_identities(tied.id, "", sort="created", after=cursor, per_page=5)
    assert [r.id for r in page.rows] == [r.id for r in first.rows]


def test_search_identities__unknown_sort__falls_back_to_identifier(tied):
    page = search.search_identities(tied.id, "", sort="id; DROP TABLE identities")
    assert page.sort == "identifier"


# ----------------------------------------------------------------------------- counting


def test_count_matches__up_to_cap__is_exact(tied, monkeypatch):
    monkeypatch.setattr(search, "COUNT_CAP", 60)
    total = search.count_matches(tied.id, search.parse_query(""))
    assert (total.value, total.exact, total.label) == (53, True, "53")


def test_count_matches__above_cap__is_labelled_estimate(tied, monkeypatch, database):
    # Given a cap below the number of identities
    monkeypatch.setattr(search, "COUNT_CAP", 10)
    if database == "postgres":
        db.session.execute(text("ANALYZE identities"))
    # When counting
    total = search.count_matches(tied.id, search.parse_query(""))
    # Then the total is not exact and says so
    assert not total.exact
    if database == "postgres":
        assert total.label.startswith(("about ", "more than 10"))
    else:
        assert total.label == "more than 10"


def test_trait_keys__lists_distinct_keys_of_the_environment_only(env):
    other = make_environment(make_project("Other"))
    make_identity(other, "x", {"secret_key": 1})
    db.session.commit()
    assert search.trait_keys(env.id) == ["age", "beta", "code", "email", "plan", "zip"]
    assert search.trait_keys(env.id, limit=2) == ["age", "beta"]
