"""SDK trait parsing: the inline check of plain items agrees with the full parser.

``parse_traits`` accepts the common ``{"trait_key", "trait_value"}`` item without calling
``parse_trait``; these tests hold the two to the same answers, refusals included.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hypothesis_profiles import examples
from webapp.models import TRAIT_KEY_MAX, TRAIT_STRING_MAX
from webapp.services.sdk.parsing import (
    INT_MAX,
    INT_MIN,
    BadRequest,
    TraitInput,
    _plain_trait,
    parse_trait,
    parse_traits,
)

KEYS = st.one_of(
    st.text(max_size=5),
    st.sampled_from(["", "a\x00b", "k" * TRAIT_KEY_MAX, "k" * (TRAIT_KEY_MAX + 1)]),
    st.integers(),
    st.none(),
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=INT_MIN - 2, max_value=INT_MAX + 2),
    st.sampled_from([INT_MIN - 1, INT_MIN, INT_MAX, INT_MAX + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.sampled_from(["x\x00", "s" * TRAIT_STRING_MAX, "s" * (TRAIT_STRING_MAX + 1)]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
ITEMS = st.one_of(
    st.fixed_dictionaries({"trait_key": KEYS, "trait_value": VALUES}),
    st.fixed_dictionaries(
        {"trait_key": KEYS, "trait_value": VALUES},
        optional={"transient": st.one_of(st.booleans(), st.none(), st.integers())},
    ),
    st.fixed_dictionaries({"trait_key": KEYS}),
    st.fixed_dictionaries({"key": KEYS, "trait_value": VALUES}),
    st.lists(st.integers(), max_size=2),
    st.text(max_size=3),
)


def _reference(items: list) -> tuple[TraitInput, ...] | str:
    """What the full parser alone gives: the traits, or the refusal's message."""
    parsed = {}
    try:
        for index, item in enumerate(items):
            trait = parse_trait(item, f"traits[{index}]")
            parsed[trait.key] = trait
    except BadRequest as exc:
        return str(exc)
    return tuple(parsed.values())


def _actual(items: list) -> tuple[TraitInput, ...] | str:
    try:
        return parse_traits(items)
    except BadRequest as exc:
        return str(exc)


def _same(left: object, right: object) -> bool:
    # NaN never equals itself: compare trait values by repr (which also tells -0.0 from 0.0).
    if isinstance(left, tuple) and isinstance(right, tuple):
        return [(t.key, repr(t.value), type(t.value), t.transient) for t in left] == [
            (t.key, repr(t.value), type(t.value), t.transient) for t in right
        ]
    return left == right


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(ITEMS, max_size=4))
def test_parse_traits__agrees_with_the_full_parser(items):
    assert _same(_actual(items), _reference(items))


@pytest.mark.parametrize(
    ("item", "accepted"),
    [
        ({"trait_key": "plan", "trait_value": "pro"}, True),
        ({"trait_key": "age", "trait_value": 41}, True),
        ({"trait_key": "score", "trait_value": 7.5}, True),
        ({"trait_key": "beta", "trait_value": False}, True),
        ({"trait_key": "plan", "trait_value": None}, False),  # a deletion
        ({"trait_key": "plan", "trait_value": "pro", "transient": True}, False),
        ({"trait_key": "score", "trait_value": math.inf}, False),
        ({"trait_key": "big", "trait_value": INT_MAX + 1}, False),
        ({"trait_key": "", "trait_value": "x"}, False),
        ({"trait_key": "plan", "trait_value": ["pro"]}, False),
    ],
)
def test_plain_trait__takes_only_items_that_need_no_more_checks(item, accepted):
    # The inline check defers everything unusual to parse_trait, which names the field.
    trait = _plain_trait(item)
    assert (trait is not None) == accepted
    if accepted:
        assert trait == parse_trait(item, "traits[0]")
