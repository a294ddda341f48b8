"""The experiment verdict: thresholds, the chi-squared test against control, the wording.

Pure: the comparison reads counts, no database (so no ``databases`` marker).
"""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from webapp.services.experiments.results import (
    ALPHA,
    BETTER,
    MIN_EXPOSURES,
    NO_DIFFERENCE,
    NOT_ENOUGH,
    WORSE,
    ArmResult,
    compare,
)


def arms(*counts):
    keys = ["control", "red", "green", "teal"]
    return [ArmResult(keys[i], i * 10, True, n, c) for i, (n, c) in enumerate(counts)]


def two_proportion_z_p(n1, c1, n2, c2):
    """The textbook pooled two-proportion z-test, written out to check the library call."""
    pooled = (c1 + c2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (c2 / n2 - c1 / n1) / se
    return 2 * norm.sf(abs(z))


@pytest.mark.parametrize(
    ("counts", "verdict", "starts"),
    [
        pytest.param([(0, 0), (0, 0)], NOT_ENOUGH, "Not enough data yet", id="nothing yet"),
        pytest.param(
            [(99, 20), (500, 100)],
            NOT_ENOUGH,
            "Not enough data yet",
            id="control one short of the minimum",
        ),  # fmt: skip
        pytest.param(
            [(1000, 2), (1000, 2)],
            NOT_ENOUGH,
            "Not enough data yet",
            id="expected conversions under 5",
        ),  # fmt: skip
        pytest.param(
            [(1000, 998), (1000, 999)],
            NOT_ENOUGH,
            "Not enough data yet",
            id="expected non-conversions under 5",
        ),  # fmt: skip
        pytest.param(
            [(1000, 100), (1000, 150)], BETTER, "red (10) beats control (0)", id="clear winner"
        ),
        pytest.param(
            [(1000, 150), (1000, 100)], WORSE, "control (0) beats red (10)", id="clear loser"
        ),
        pytest.param(
            [(1000, 100), (1000, 105)], NO_DIFFERENCE, "No clear difference", id="no difference"
        ),  # fmt: skip
    ],
)
def test_compare__cases__give_the_verdict(counts, verdict, starts):
    results = compare(arms(*counts))
    assert results.arms[1].verdict == verdict
    assert results.verdict.startswith(starts)
    assert results.enough_data is (verdict != NOT_ENOUGH)


def test_compare__exactly_the_minimum__is_enough():
    results = compare(arms((MIN_EXPOSURES, 20), (MIN_EXPOSURES, 40)))
    assert results.arms[1].verdict == BETTER


def test_compare__p_value__equals_the_two_proportion_z_test():
    results = compare(arms((1200, 130), (1100, 160)))
    p_value = results.arms[1].p_value
    assert type(p_value) is float
    assert p_value == pytest.approx(two_proportion_z_p(1200, 130, 1100, 160), rel=1e-9)


def test_compare__several_variants__share_the_significance_level():
    # p ≈ 0.034 for red: significant alone, not when three variants share 0.05.
    alone = compare(arms((2000, 200), (2000, 242)))
    shared = compare(arms((2000, 200), (2000, 242), (2000, 200), (2000, 200)))
    assert alone.alpha == ALPHA and shared.alpha == pytest.approx(ALPHA / 3)
    assert 0.05 / 3 < alone.arms[1].p_value < 0.05
    assert alone.arms[1].verdict == BETTER
    assert shared.arms[1].verdict == NO_DIFFERENCE


def test_compare__best_of_two_winners__is_named():
    results = compare(arms((2000, 200), (2000, 300), (2000, 400)))
    assert results.verdict.startswith("green (20) beats control (0)")
    assert "20.0%" in results.verdict and "10.0%" in results.verdict


def test_compare__one_variant_short__says_which():
    results = compare(arms((1000, 100), (1000, 150), (10, 1)))
    assert results.verdict.startswith("Not enough data yet")
    assert "green" in results.verdict and "red" not in results.verdict.split("(")[1]


def test_compare__rate__is_a_float_or_none():
    results = compare(arms((0, 0), (4, 1)))
    assert results.arms[0].rate is None
    assert results.arms[1].rate == 0.25 and type(results.arms[1].rate) is float
