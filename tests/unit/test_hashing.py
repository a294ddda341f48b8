"""Percentage buckets: the SPEC test vector and equality with the official hashing."""

from __future__ import annotations

from hashlib import md5

import pytest
from flag_engine.utils.hashing import get_hashed_percentage_for_object_ids
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hypothesis_profiles import examples
from webapp.evaluation import hashed_percentage
from webapp.evaluation.hashing import hashed_percentage_of_bytes, hashed_percentage_of_text


def test_hashed_percentage__spec_vector__is_34_52690538107622() -> None:
    # Given / When
    bucket = hashed_percentage(["1", "env_user1"])

    # Then
    assert bucket == 34.52690538107622


@pytest.mark.parametrize("ids", [[1, "env_user1"], ["seg", 7], ["", ""], ["Zoë", "ключ"]])
def test_hashed_percentage__mixed_ids__equals_engine(ids: list[object]) -> None:
    assert hashed_percentage(ids) == get_hashed_percentage_for_object_ids(ids)  # type: ignore[arg-type]


@settings(max_examples=examples(200), deadline=None, print_blob=True)
@given(st.lists(st.one_of(st.text(max_size=12), st.integers()), min_size=1, max_size=3))
def test_hashed_percentage__any_ids__equals_engine_and_stays_below_100(ids: list[object]) -> None:
    bucket = hashed_percentage(ids)
    assert bucket == get_hashed_percentage_for_object_ids(ids)  # type: ignore[arg-type]
    assert 0 <= bucket < 100


def _ids_hashing_to_exactly_100() -> list[str]:
    # About one id list in 9999 lands on 9998 (exactly 100): find one.
    for number in range(200_000):
        ids = ["seed", str(number)]
        digest = int.from_bytes(md5(",".join(ids).encode()).digest(), "big")
        if digest % 9999 == 9998:
            return ids
    raise AssertionError("no id list hashes to 100 in the searched range")


def test_hashed_percentage__exactly_100__rehashes_the_doubled_list_like_engine() -> None:
    # Given ids whose first hash is exactly 100
    ids = _ids_hashing_to_exactly_100()

    # When
    bucket = hashed_percentage(ids)

    # Then the doubled list was hashed instead, as the engine does
    assert bucket == get_hashed_percentage_for_object_ids(ids)
    assert bucket < 100
    joined = ",".join(ids)
    assert hashed_percentage_of_text(joined) == bucket
    assert hashed_percentage_of_bytes(joined.encode()) == bucket
