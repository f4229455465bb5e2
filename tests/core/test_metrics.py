import math

import pytest

from opsrl.core.metrics import gap_pct, shifted_geomean, wins


def test_gap_minimise_and_maximise():
    assert gap_pct(105.0, 100.0) == pytest.approx(5.0)
    assert gap_pct(95.0, 100.0, "max") == pytest.approx(5.0)
    assert gap_pct(100.0, 100.0) == 0.0
    assert math.isnan(gap_pct(None, 100.0))
    assert math.isnan(gap_pct(1.0, None))
    assert gap_pct(0.0, 0.0) == 0.0 and math.isnan(gap_pct(1.0, 0.0))


def test_shifted_geomean_matches_hand_computation():
    vals = [1.0, 10.0, 100.0]
    expected = math.exp((math.log(11) + math.log(20) + math.log(110)) / 3) - 10
    assert shifted_geomean(vals, shift=10) == pytest.approx(expected)
    assert shifted_geomean([2.0, 8.0], shift=0) == pytest.approx(4.0)
    assert math.isnan(shifted_geomean([]))
    with pytest.raises(ValueError):
        shifted_geomean([-2.0], shift=1)


def test_wins_counts_ties_for_all_and_skips_nan():
    objs = {"a": {"s1": 10, "s2": 10, "s3": 12}, "b": {"s1": 5, "s2": 4, "s3": float("nan")},
            "c": {"s1": float("nan"), "s2": float("nan")}}
    assert wins(objs, "min") == {"s1": 1, "s2": 2, "s3": 0}
    assert wins(objs, "max") == {"s1": 1, "s2": 0, "s3": 1}
