"""Hypothesis strategies building Flagsmith environment documents and identities.

Values come from small pools so that conditions actually hit traits, numeric-looking
strings, semvers, JSON arrays, priority ties and hash seeds collide often enough to
exercise every branch of the engine.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from webapp.evaluation.operators import OPERATORS as REGISTRY

# Every registered operator (the registry test holds it equal to the official engine's list).
OPERATORS = list(REGISTRY)
TRAIT_KEYS = [
    "plan",
    "age",
    "score",
    "beta",
    "version",
    "country",
    "$.identity.identifier",
    "$.environment.name",
    "$.nonsense path",
]
PROPERTIES = [
    *TRAIT_KEYS,
    "missing",
    "",
    "$.identity.identifier",
    "$.identity.key",
    "$.environment.name",
    "$.environment.key",
    "$.identity.traits.plan",
    "$.identity.traits.age",
    "$.identity.traits['version']",
    "$.identity .identifier",
    "$.identity.key ",
    "$.identity.traits",
]
TEXT_VALUES = [
    "pro",
    "free",
    "Pro",
    "",
    "10",
    "7",
    "007",
    "-3",
    "10.5",
    "10.50",
    "3.0",
    "42.0",
    "1e3",
    "true",
    "True",
    "false",
    "False",
    "1.2.3",
    "1.2.3-beta.1",
    "1.10.0",
    "alice",
    "Production",
    "x,y",
    "uk",
]
COMMON_VALUES = ["pro", "10", "7", "1.2.3", "true", "10.5"]
SEMVER_VALUES = [
    "1.2.3:semver",
    "1.2.3-beta.1:semver",
    "1.2.3-beta.2:semver",
    "1.2.3-alpha:semver",
    "1.10.0:semver",
    "1.2.3+build.5:semver",
    "1.2:semver",
    "01.2.3:semver",
    "beta.1:semver",
    "build.5:semver",
    ":semver",
]
REGEX_VALUES = ["pro", "^p.*", ".*o$", "[0-9]+", "1\\.2", "(?i)PRO", "", "a|b", "Tru"]
MODULO_VALUES = ["2|0", "2|1", "3|1", "0.5|0", "2.5|0.5", "2", "a|b", "", "2|0|1", "-2|0"]
IN_VALUES = [
    "pro,free",
    "pro, free",
    "10,7,007",
    "-3,alice",
    '["pro", "free"]',
    "[10, true, 1.5, null]",
    '["alice", "bob"]',
    "[pro,free",
    "[]",
    "",
    "True,False",
    "10.5,3.0",
]
SPLIT_VALUES = ["0", "10", "33.3", "50", "99.9", "100", "abc", "-1", " 50 ", "1e2", "nan"]


def _value_pool(operator: str) -> list[str | None]:
    pools: dict[str, list[str]] = {
        "REGEX": REGEX_VALUES,
        "MODULO": MODULO_VALUES,
        "IN": IN_VALUES,
        "PERCENTAGE_SPLIT": SPLIT_VALUES,
    }
    # Common values are repeated so that conditions hit the traits often.
    default_pool = TEXT_VALUES + SEMVER_VALUES + COMMON_VALUES * 4
    pool: list[str | None] = list(pools.get(operator, default_pool))
    if operator in ("IS_SET", "IS_NOT_SET", "EQUAL", "NOT_EQUAL", "CONTAINS", "MODULO"):
        # The engine copes with a null value here (str(None) == "None");
        # for IN and PERCENTAGE_SPLIT it raises, so those never get one.
        pool.append(None)
    return pool


# Strategies are built once: constructing them inside composites dominated run time.
_VALUES_BY_OPERATOR = {op: st.sampled_from(_value_pool(op)) for op in [*OPERATORS, "UNKNOWN_OP"]}
_OPERATOR = st.sampled_from([*OPERATORS, *OPERATORS, "UNKNOWN_OP"])
_PROPERTY = st.sampled_from([*PROPERTIES, None])


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    """Draw one document condition (``property_`` as in Flagsmith documents)."""
    operator = draw(_OPERATOR)
    condition: dict[str, Any] = {"operator": operator, "value": draw(_VALUES_BY_OPERATOR[operator])}
    prop = draw(_PROPERTY)
    if prop is not None:
        condition["property_"] = prop
    return condition


def rules(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """Draw a rule with up to ``depth`` levels of nested rules."""
    nested = st.lists(rules(depth - 1), max_size=2 if depth > 1 else 1) if depth else st.just([])
    return st.builds(
        lambda kind, conds, subs: {"type": kind, "conditions": conds, "rules": subs},
        st.sampled_from(["ALL", "ANY", "NONE"]),
        st.lists(conditions(), max_size=2),
        nested,
    )


RULES = rules()


# A few fixed uuids: drawing fresh ones is slow and adds nothing (they only seed hashes).
UUIDS = st.sampled_from(
    [
        "0b1c3a52-7f8e-4d21-9a57-3c2e1f0d9b84",
        "6f9e2d41-0c3b-4a5e-8d7f-1b2c3d4e5f60",
        "a3d5c7e9-1b2d-4f60-8a9b-c0d1e2f3a4b5",
        "ffffffff-ffff-4fff-bfff-ffffffffffff",
    ]
)
FEATURE_NAMES = ["f0", "f1", "f2", "f3", "f4", "f5"]
FEATURE_VALUES = st.one_of(
    st.sampled_from(["on", "off", "", "10", "blue"]),
    st.integers(-5, 100),
    st.booleans(),
    st.none(),
    st.sampled_from([1.5, 3.0]),
)
_WEIGHT_CAPS = st.sampled_from([0, 1, 5, 20, 33.3, 50, 100])


@st.composite
def multivariate_values(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Draw options whose allocations sum to at most 100 (ties in priority allowed)."""
    count = draw(_MV_COUNT)
    remaining = 100.0
    values = []
    for _ in range(count):
        weight = min(draw(_WEIGHT_CAPS), remaining)
        remaining -= weight
        option: dict[str, Any] = {"value": draw(FEATURE_VALUES)}
        key = draw(_MV_KEY)
        if key is not None:
            option["key"] = key
        mv_value: dict[str, Any] = {
            "multivariate_feature_option": option,
            "percentage_allocation": weight,
            "mv_fs_value_uuid": draw(UUIDS),
        }
        mv_id = draw(_MV_ID)
        if mv_id is not None:
            mv_value["id"] = mv_id
        values.append(mv_value)
    return values


_MV_COUNT = st.sampled_from([0, 0, 1, 2, 3])
_MV_KEY = st.sampled_from([None, "a", "b", "c"])
_MV_ID = st.sampled_from([None, 1, 2, 3, 4])
_MULTIVARIATE = multivariate_values()
_DJANGO_ID = st.sampled_from([None, 0, 1, 2, 17, 1234])
# Small pool of priorities so ties are common; None means no feature_segment at all.
_PRIORITY = st.sampled_from([None, 0, 1, 1, 2, 5])


@st.composite
def _state_bodies(draw: st.DrawFn, with_priority: bool) -> dict[str, Any]:
    state: dict[str, Any] = {
        "enabled": draw(st.booleans()),
        "feature_state_value": draw(FEATURE_VALUES),
        "featurestate_uuid": draw(UUIDS),
        "multivariate_feature_state_values": draw(_MULTIVARIATE),
    }
    django_id = draw(_DJANGO_ID)
    if django_id is not None:
        state["django_id"] = django_id
    priority = draw(_PRIORITY) if with_priority else None
    if priority is not None:
        state["feature_segment"] = {"priority": priority}
    return state


_DEFAULT_STATE = _state_bodies(False)
_OVERRIDE_STATE = _state_bodies(True)


def _feature(name: str) -> dict[str, Any]:
    feature_id = FEATURE_NAMES.index(name) + 1 if name in FEATURE_NAMES else 99
    return {"id": feature_id, "name": name, "type": "STANDARD"}


_SEGMENT_RULES = st.one_of(
    st.just([]), st.lists(RULES, min_size=1, max_size=1), st.lists(RULES, max_size=2)
)
_OVERRIDE_NAMES = st.lists(st.sampled_from([*FEATURE_NAMES, "ghost"]), max_size=3)
_SEGMENT_ID = st.integers(1, 9)
_SEGMENT_NAME = st.sampled_from(["Pro users", "Beta", "Everyone", "42", "UK"])


@st.composite
def segments(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a project segment with rules and segment overrides."""
    overrides = [
        {"feature": _feature(name), **draw(_OVERRIDE_STATE)} for name in draw(_OVERRIDE_NAMES)
    ]
    return {
        "id": draw(_SEGMENT_ID),
        "name": draw(_SEGMENT_NAME),
        "rules": draw(_SEGMENT_RULES),
        "feature_states": overrides,
    }


IDENTIFIERS = ["alice", "bob", "carol", "user_1", "Zoë"]
_IDENTIFIER = st.sampled_from(IDENTIFIERS)


@st.composite
def identity_overrides(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Draw the document's identity overrides (identifiers never look numeric).

    An identifier appears once, as in every Flagsmith document (one entry per identity) and
    as Flagpost's import demands: with two entries for one identifier the official engine's
    choice between them depends on how its mapper hashes their values.
    """
    result = []
    for identifier in draw(st.lists(_IDENTIFIER, max_size=3, unique=True)):
        features = [
            {
                "feature": _feature(name),
                "enabled": draw(st.booleans()),
                "feature_state_value": draw(FEATURE_VALUES),
                "featurestate_uuid": draw(UUIDS),
            }
            for name in draw(_OVERRIDE_NAMES)
        ]
        result.append({"identifier": identifier, "identity_features": features})
    return result


_FEATURE_NAME_LISTS = st.lists(st.sampled_from(FEATURE_NAMES), min_size=1, max_size=5)
_SEGMENT_LISTS = st.lists(segments(), max_size=5)
_IDENTITY_OVERRIDES = identity_overrides()
_API_KEY = st.sampled_from(["env_key", "K3yAbc", "123"])
_ENV_NAME = st.sampled_from(["Production", "42", "1.5", "Dev"])


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a whole Flagsmith environment document."""
    names = draw(_FEATURE_NAME_LISTS)
    return {
        "api_key": draw(_API_KEY),
        "name": draw(_ENV_NAME),
        "feature_states": [{"feature": _feature(n), **draw(_DEFAULT_STATE)} for n in names],
        "project": {"id": 1, "name": "p", "segments": draw(_SEGMENT_LISTS)},
        "identity_overrides": draw(_IDENTITY_OVERRIDES),
    }


TRAIT_VALUES = st.one_of(
    st.sampled_from(COMMON_VALUES),
    st.sampled_from(TEXT_VALUES),
    st.integers(-5, 20),
    st.sampled_from([10.5, 3.0, -3.0, 0.5, 1e16]),
    st.booleans(),
    st.none(),
)
_TRAITS = st.dictionaries(st.sampled_from(TRAIT_KEYS), TRAIT_VALUES, max_size=8)
_CUSTOM_KEY = st.sampled_from([None, None, None, None, "custom_key", "7"])


@st.composite
def identities(draw: st.DrawFn) -> dict[str, Any]:
    """Draw an identity: identifier, optional explicit key and typed traits."""
    identity: dict[str, Any] = {"identifier": draw(_IDENTIFIER), "traits": draw(_TRAITS)}
    key = draw(_CUSTOM_KEY)
    if key is not None:
        identity["key"] = key
    return identity
