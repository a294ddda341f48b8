"""SQL segment membership equals the evaluation module, identity for identity."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import insert, text

from tests.factories import make_environment, make_identities, make_identity, make_project
from webapp.clock import utcnow
from webapp.evaluation import (
    EnvironmentSnapshot,
    IdentityInput,
    SegmentInput,
    compile_snapshot,
    evaluate,
)
from webapp.evaluation.operators import OPERATORS as REGISTRY
from webapp.extensions import db
from webapp.models import Identity, Trait, encode_value
from webapp.models.base import sha256_hex
from webapp.models.identity import numeric_form
from webapp.services.segments import sql_membership, sql_rows

# Database behaviour (segment SQL translation): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

KEYS = ["plan", "country", "age", "score", "version", "beta", "name"]
VALUES: list[Any] = [
    "pro", "free", "DE", "FR", "abc", "Abc", "", "a,b", "pro plan", "ünï", "p",
    "007", "42", "-3", "1.50", "3.0", "0", "-0", "7", "12345678901234567890",
    0, 1, 2, 3, 7, 42, -5, 2**60, 2**53 + 1,
    1.5, 3.0, -2.25, 42.0, 0.1, 1e20,
    True, False,
    "1.2.3", "1.10.0", "2.0.0-beta", "1.2.3+build", "1.2", "True", "false",
]  # fmt: skip
OPERATOR_VALUES: dict[str, list[str | None]] = {
    "typed": [
        "pro", "42", "007", "1.5", "3", "true", "false", "True", "1.2.3:semver",
        "2.0.0:semver", "abc", "", "-3", "nan", "inf", "4_2", " 42", "42.0", "p", "1.2.3",
        "12345678901234567890", "-inf", "1e20",
    ],
    "IN": ["pro,free", "DE,FR", "42,7", '["pro", 42, true]', "7,007", "1.5", "True", "0,-0", ""],
    "MODULO": ["2|0", "3|1", "2|1", "0|0", "2.5|0.5", "-3|-1", "x", "2|0.5", "7|0"],
    "REGEX": ["pro", "p.*", "[a-z]+", "1", "Tr", "(", "4", "^a", "1\\.5", "-", "", "12", "fa"],
    "PERCENTAGE_SPLIT": ["50", "0", "100", "33.3", "-1", "x"],
    "NOT_CONTAINS": ["pro", "", "b", "1"],
    "presence": [None],
}  # fmt: skip
# Every operator of the registry; a new one needs its value pools below (a KeyError says so).
OPERATORS = list(REGISTRY)
TYPED = [name for name, operator in REGISTRY.items() if operator.comparison is not None]
VALUELESS = [name for name, operator in REGISTRY.items() if not operator.takes_value]
PROPERTIES = KEYS + ["$.identity.identifier", "$.environment.name", "$.identity.key", "$.x["]


def _values_for(operator: str) -> list[str | None]:
    if operator in TYPED:
        return OPERATOR_VALUES["typed"]
    if operator in VALUELESS:
        return OPERATOR_VALUES["presence"]
    return OPERATOR_VALUES[operator]


def _condition(rng: random.Random) -> dict[str, Any]:
    operator = rng.choice(OPERATORS)
    prop = rng.choice(PROPERTIES)
    if REGISTRY[operator].split and rng.random() < 0.5:
        prop = ""
    return {"operator": operator, "property_": prop, "value": rng.choice(_values_for(operator))}


def _rule(rng: random.Random, depth: int) -> dict[str, Any]:
    return {
        "type": rng.choice(["ALL", "ANY", "NONE"]),
        "conditions": [_condition(rng) for _ in range(rng.randint(0, 3))],
        "rules": [_rule(rng, depth + 1) for _ in range(rng.randint(0, 2 if depth < 2 else 0))],
    }


def _random_rules(rng: random.Random) -> list[dict[str, Any]]:
    return [_rule(rng, 0) for _ in range(rng.randint(1, 2))]


def _fill(environment_id: int, count: int, rng: random.Random) -> dict[int, dict[str, Any]]:
    now = utcnow()
    identifiers = [f"user-{n}" if n % 50 else str(n) for n in range(count)]
    db.session.execute(
        insert(Identity),
        [
            {
                "environment_id": environment_id,
                "identifier": ident,
                "identifier_hash": sha256_hex(ident),
                "identifier_prefix": ident[:100],
                "created_at": now,
                "last_seen_at": now,
            }
            for ident in identifiers
        ],
    )
    ids = dict(
        db.session.query(Identity.identifier, Identity.id).filter_by(environment_id=environment_id)
    )
    traits: dict[int, dict[str, Any]] = {}
    rows = []
    for ident in identifiers:
        chosen = {k: rng.choice(VALUES) for k in KEYS if rng.random() < 0.6}
        if rng.random() < 0.02:
            chosen["$.environment.name"] = rng.choice(VALUES)
        traits[ids[ident]] = chosen
        for key, value in chosen.items():
            kind, text_ = encode_value(value)
            rows.append(
                {
                    "identity_id": ids[ident],
                    "environment_id": environment_id,
                    "key": key,
                    "value_type": kind,
                    "value_text": text_,
                    "value_prefix": text_[:100],
                    "value_num": numeric_form(value),
                    "created_at": now,
                    "updated_at": now,
                }
            )
    # render_nulls: one executemany, not an INSERT per run of rows shaped alike (the ORM
    # leaves None columns out and groups rows by shape: 10,000 statements for 21,000 rows).
    db.session.execute(insert(Trait).execution_options(render_nulls=True), rows)
    db.session.commit()
    _analyze()
    return traits


def _expected(env: Any, rules: list[dict[str, Any]], people: dict[int, tuple[str, dict]]) -> set:
    segment = SegmentInput(key="77", name="s", rules=sql_membership.rules_from_document(rules))
    compiled = compile_snapshot(EnvironmentSnapshot(env.client_key, env.name, segments=(segment,)))
    return {
        identity_id
        for identity_id, (identifier, traits) in people.items()
        if evaluate(compiled, IdentityInput(identifier, traits)).segments
    }


def _expected_many(
    env: Any, ruleset: list[list[dict[str, Any]]], people: dict[int, tuple[str, dict]]
) -> list[set]:
    """``_expected`` for many rule sets at once: one snapshot holding a segment per rule
    set (all keyed "77", as counted; told apart by name), one evaluation per identity."""
    segments = tuple(
        SegmentInput(key="77", name=str(n), rules=sql_membership.rules_from_document(rules))
        for n, rules in enumerate(ruleset)
    )
    compiled = compile_snapshot(EnvironmentSnapshot(env.client_key, env.name, segments=segments))
    members: list[set] = [set() for _ in ruleset]
    for identity_id, (identifier, traits) in people.items():
        for match in evaluate(compiled, IdentityInput(identifier, traits)).segments:
            members[int(match.name)].add(identity_id)
    return members


def _population(size: int, rng: random.Random) -> tuple[Any, dict[int, tuple[str, dict]]]:
    """Fill a new environment with ``size`` identities of random typed traits; return it
    and each identity's (identifier, traits) by id, as the evaluation module reads them."""
    env = make_environment(make_project(), name="Production")
    traits = _fill(env.id, size, rng)
    identifiers = dict(db.session.query(Identity.id, Identity.identifier))
    return env, {i: (identifiers[i], t) for i, t in traits.items()}


def _analyze() -> None:
    """Give PostgreSQL's planner statistics for the rows just bulk-inserted, as autovacuum
    gives a live database (without them it plans for empty tables: 3x slower here)."""
    if db.engine.name == "postgresql":
        db.session.execute(text("ANALYZE identities, traits"))
        db.session.commit()


@pytest.mark.heavy(seconds=30)
@pytest.mark.parametrize("seed", [1])
def test_count_members__random_rules_on_5000_identities__equal_evaluation(app, seed):
    # Given 5,000 identities with random typed traits (numeric-looking strings, booleans,
    # semver strings, missing traits) and random rules over every operator
    rng = random.Random(seed)
    env, people = _population(5000, rng)
    ruleset = [_random_rules(rng) for _ in range(80)]
    # (the evaluation module's verdict for all 80 segments, one evaluation per identity)
    expected_all = _expected_many(env, ruleset, people)
    for rules, expected in zip(ruleset, expected_all, strict=True):
        # When counting and listing members through SQL
        counted = sql_membership.count_members(env.id, rules, "77")
        listed = set(sql_membership.member_ids(env.id, rules, "77", limit=10_000))
        # Then both equal the evaluation module's verdict for every identity
        assert listed == expected, rules
        assert counted == len(expected), rules


def test_count_members__every_operator_once__equal_evaluation(app):
    # Given a small population and one condition per operator and value
    rng = random.Random(5)
    env, people = _population(300, rng)
    ruleset = [
        [{"type": "ALL", "conditions": [condition], "rules": []}]
        for operator in OPERATORS
        for value in _values_for(operator)
        for prop in ("plan", "")
        for condition in [{"operator": operator, "property_": prop, "value": value}]
    ]
    for rules, expected in zip(ruleset, _expected_many(env, ruleset, people), strict=True):
        # When / Then
        assert sql_membership.count_members(env.id, rules, "77") == len(expected), rules


def test_count_members__every_operator_not_translatable__python_decides_equal_evaluation(
    app, monkeypatch
):
    # Given every operator marked NOT_TRANSLATABLE, as a new operator may be at first
    for name in list(sql_rows.ROW_SQL):
        monkeypatch.setitem(sql_rows.ROW_SQL, name, sql_rows.NOT_TRANSLATABLE)
    rng = random.Random(8)
    env, people = _population(60, rng)
    for operator in OPERATORS:
        for value in _values_for(operator)[:4]:
            for prop in ("plan", "", "$.environment.name"):
                condition = {"operator": operator, "property_": prop, "value": value}
                rules = [{"type": "ANY", "conditions": [condition], "rules": []}]
                # When counting and listing through SQL (which now defers to Python)
                counted = sql_membership.count_members(env.id, rules, "77")
                listed = set(sql_membership.member_ids(env.id, rules, "77", limit=1000))
                # Then both equal evaluation
                expected = _expected(env, rules, people)
                assert (counted, listed) == (len(expected), expected), rules


def test_count_members__identity_traits_paths__equal_evaluation(app):
    # Given a small population and rules reading traits through $.identity.traits paths
    # (Python candidates are read with only the traits their rules read)
    rng = random.Random(13)
    env, people = _population(200, rng)
    paths = ["$.identity.traits.plan", "$.identity.traits.age", "$.identity.traits['beta']"]
    for prop in paths:
        for operator, value in [("EQUAL", "pro"), ("GREATER_THAN", "2"), ("IS_NOT_SET", None),
                                ("REGEX", "[a-z]+"), ("EQUAL", "true")]:  # fmt: skip
            conditions = [_one(operator, value, prop), _one("IS_SET", None, "country")]
            for kind in ("ALL", "ANY", "NONE"):
                rules = [{"type": kind, "conditions": conditions, "rules": []}]
                # When counting and listing through SQL
                counted = sql_membership.count_members(env.id, rules, "77")
                listed = set(sql_membership.member_ids(env.id, rules, "77", limit=1000))
                # Then both equal evaluation
                expected = _expected(env, rules, people)
                assert (counted, listed) == (len(expected), expected), rules


def test_translate__presence_and_absence__is_exact_sql(app):
    # Given IS_SET and IS_NOT_SET conditions on traits
    env = make_environment(make_project())
    conditions = [
        {"operator": "IS_SET", "property_": "plan", "value": None},
        {"operator": "IS_NOT_SET", "property_": "x", "value": None},
    ]
    rules = [{"type": "ALL", "conditions": conditions, "rules": []}]
    # When translating
    membership = sql_membership.prepare(env.id, rules, "1")
    # Then SQL alone decides membership
    assert membership.translation.exact


def test_translate__percentage_split__needs_python(app):
    # Given a PERCENTAGE_SPLIT condition
    env = make_environment(make_project())
    rules = [{"type": "ALL", "conditions": [{"operator": "PERCENTAGE_SPLIT", "property_": "",
                                             "value": "50"}], "rules": []}]  # fmt: skip
    # When translating
    membership = sql_membership.prepare(env.id, rules, "1")
    # Then it is not exact
    assert not membership.translation.exact


def test_member_ids__keyset_pages_and_search__follow_id_order(app):
    # Given five pro identities
    env = make_environment(make_project())
    ids = [make_identity(env, f"pro-{n}", {"plan": "pro"}).id for n in range(5)]
    make_identity(env, "free-1", {"plan": "free"})
    db.session.commit()
    rules = [{"type": "ALL", "conditions": [{"operator": "EQUAL", "property_": "plan",
                                             "value": "pro"}], "rules": []}]  # fmt: skip
    # When paging two at a time and searching
    first = sql_membership.member_ids(env.id, rules, "1", limit=2)
    second = sql_membership.member_ids(env.id, rules, "1", after_id=first[-1], limit=2)
    found = sql_membership.member_ids(env.id, rules, "1", search="PRO-3")
    # Then pages follow id order and search filters identifiers case-insensitively
    assert first + second == ids[:4]
    assert found == [ids[3]]


def test_count_members__no_rules__is_zero(app):
    # Given an identity and a segment without rules
    env = make_environment(make_project())
    make_identity(env, "a", {"plan": "pro"})
    db.session.commit()
    # When / Then
    assert sql_membership.count_members(env.id, [], "1") == 0


# ---- edge values: every row class SQL now decides itself -------------------------------
LONG = "x" * 150  # longer than the indexed 100-character prefix
EDGE_VALUES: list[Any] = [
    "pro", LONG, LONG + "y", "pro" + "a" * 300, "", "true", "True", "1.2.3", "007", "-0",
    "1.50", "12345678901234567890", "00012345678901234567890", "0" * 305 + "7", "1" * 301,
    "9" * 320, "-" + "9" * 320, "1" * 310 + ".5", "-" + "1" * 310 + ".5",
    0, 7, -5, 2**53 + 1, 2**60, -(2**63), 2**63 - 1, 10**20, 10**400, -(10**400),
    1.5, -2.25, 3.0, 1e20, 1e300, 0.1, True, False,
]  # fmt: skip
EDGE_CONDITIONS: dict[str, list[str | None]] = {
    "typed": [
        "pro", LONG, LONG + "y", "x" * 100, "", "7", "007", "-3", "1.5", "1e20", "inf", "-inf",
        "nan", "true", "12345678901234567890", str(2**60), str(10**400), "9" * 320,
        "-" + "9" * 320, "1" * 310 + ".5", "1.2.3:semver",
    ],
    "IN": ["pro,7", f"12345678901234567890,{2**60}", f"{10**400},-0,0", f"{LONG},pro",
           "007,1.50,True", f"{'9' * 320},{-(10**400)}"],
    "REGEX": ["9", "-9", "inf", "-inf", "x", "1", "0", "12345", "pro", "1\\.5", "Tr", "1e"],
    "MODULO": ["7|0", "2|1", "3|0", "-3|-1", "2|0.5", "0.5|0"],
    "NOT_CONTAINS": ["x", "9", "pro"],
    "PERCENTAGE_SPLIT": ["50", "100"],
    "presence": [None],
}  # fmt: skip


def _edge_values_for(operator: str) -> list[str | None]:
    if operator in TYPED:
        return EDGE_CONDITIONS["typed"]
    if operator in VALUELESS:
        return EDGE_CONDITIONS["presence"]
    return EDGE_CONDITIONS[operator]


def _edge_people(env: Any) -> dict[int, tuple[str, dict[str, Any]]]:
    pairs = [
        (f"edge-{n}", {} if value is None else {"v": value, "w": EDGE_VALUES[-n]})
        for n, value in enumerate(EDGE_VALUES + [None])
    ]
    people = {
        identity.id: pair for identity, pair in zip(make_identities(env, pairs), pairs, strict=True)
    }
    db.session.commit()
    return people


def _one(operator: str, value: str | None, prop: str = "v") -> dict[str, Any]:
    return {"operator": operator, "property_": prop, "value": value}


def test_count_members__edge_values_every_operator__equal_evaluation(app):
    # Given traits of every row class: long strings, overflowing numeric strings, huge and
    # 64-bit integers, floats, booleans, numeric-looking and semver strings
    env = make_environment(make_project(), name="Production")
    people = _edge_people(env)
    for operator in OPERATORS:
        for value in _edge_values_for(operator):
            rules = [{"type": "ALL", "conditions": [_one(operator, value)], "rules": []}]
            # When counting and listing through SQL
            counted = sql_membership.count_members(env.id, rules, "77")
            listed = set(sql_membership.member_ids(env.id, rules, "77", limit=1000))
            # Then both equal the evaluation module
            expected = _expected(env, rules, people)
            assert (counted, listed) == (len(expected), expected), rules


def test_count_members__edge_values_nested_rules__equal_evaluation(app):
    # Given the edge population and nested ANY/ALL/NONE rules mixing keys and classes
    env = make_environment(make_project(), name="Production")
    people = _edge_people(env)
    rng = random.Random(11)
    operators = [o for o in OPERATORS if not REGISTRY[o].split]

    def condition() -> dict[str, Any]:
        operator = rng.choice(operators)
        return _one(operator, rng.choice(_edge_values_for(operator)), rng.choice(["v", "w"]))

    def rule(depth: int) -> dict[str, Any]:
        return {
            "type": rng.choice(["ALL", "ANY", "NONE"]),
            "conditions": [condition() for _ in range(rng.randint(0, 3))],
            "rules": [rule(depth + 1) for _ in range(rng.randint(0, 2 if depth < 2 else 0))],
        }

    for _ in range(60):
        rules = [rule(0)]
        # When / Then
        expected = _expected(env, rules, people)
        assert sql_membership.count_members(env.id, rules, "77") == len(expected), rules
        listed = set(sql_membership.member_ids(env.id, rules, "77", limit=1000))
        assert listed == expected, rules


@pytest.mark.parametrize(
    "conditions",
    [
        [_one("EQUAL", "pro"), _one("IN", "DE,FR", "country")],
        [_one("GREATER_THAN_INCLUSIVE", "30"), _one("LESS_THAN", "40")],
        [_one("GREATER_THAN", "900"), _one("NOT_EQUAL", "team"), _one("CONTAINS", "o")],
        [_one("EQUAL", "true"), _one("IS_NOT_SET", None, "x"), _one("IN", "7,42", "n")],
        [_one("EQUAL", "-2.25"), _one("LESS_THAN", "1.5", "w"), _one("IS_SET", None, "n")],
        [_one("REGEX", "pro.*"), _one("IS_SET", None, "n"), _one("NOT_CONTAINS", LONG, "w")],
    ],
)
def test_translate__typical_conditions__are_exact_sql(app, conditions):
    # Given typical conditions in ALL, ANY and NONE rules (strings, numbers, booleans)
    env = make_environment(make_project())
    for kind in ("ALL", "ANY", "NONE"):
        rules = [{"type": kind, "conditions": conditions, "rules": []}]
        # When translating
        membership = sql_membership.prepare(env.id, rules, "1")
        # Then SQL alone decides membership: one count query, no Python pass
        assert membership.translation.exact, rules
        assert len(sql_membership.count_queries(membership)) == 1


def test_count_members__modulo_on_ordinary_numbers__python_checks_nobody(app, monkeypatch):
    # Given ordinary numbers only (MODULO leaves doubles past 2**63 to Python)
    env = make_environment(make_project())
    for n in range(12):
        make_identity(env, f"n-{n}", {"n": n, "x": 1.5})
    make_identity(env, "huge", {"n": 1e19})
    db.session.commit()
    checked: list[int] = []
    real = sql_membership.python_members

    def spy(membership, ids):
        checked.extend(ids)
        return real(membership, ids)

    monkeypatch.setattr(sql_membership, "python_members", spy)
    rules = [{"type": "ALL", "conditions": [_one("MODULO", "3|1", "n")], "rules": []}]
    # When counting
    counted = sql_membership.count_members(env.id, rules, "1")
    # Then SQL decides every identity but the one holding 1e19, which Python checks
    assert counted == 4 + (1e19 % 3 == 1)
    assert len(checked) == 1
