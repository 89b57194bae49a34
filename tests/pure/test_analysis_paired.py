"""Paired statistics: hand-worked examples."""

import numpy as np
import pytest

from agrs_bench.analysis import measures, paired


def test_rotation_moves_every_part_forward_one_place_per_round():
    assert paired.rotation(3, 0) == (0, 1, 2)
    assert paired.rotation(3, 1) == (1, 2, 0)
    assert paired.rotation(3, 2) == (2, 0, 1)
    assert paired.rotation(3, 3) == (0, 1, 2)
    assert paired.rotation(1, 7) == (0,)
    with pytest.raises(ValueError):
        paired.rotation(0, 0)


def test_constant_rounds_give_a_point_interval():
    got = paired.paired_interval({"a": [2.0] * 5, "b": [1.0] * 5}, lambda m: m["a"] / m["b"])
    assert got == (2.0, 2.0, 2.0)


def test_two_rounds_hand_worked():
    # Resamples of 2 rounds: {0,0} p=1/4 -> median a 1; {1,1} p=1/4 -> 3; {0,1} p=1/2 -> 2.
    # b is 2 in every round, so b/a is 2, 2/3 or 1: the 2.5% and 97.5% quantiles are 2/3 and 2.
    got = paired.paired_interval({"a": [1.0, 3.0], "b": [2.0, 2.0]}, lambda m: m["b"] / m["a"])
    assert got.point == pytest.approx(1.0)  # medians over all rounds: 2 / 2
    assert got.low == pytest.approx(2 / 3) and got.high == pytest.approx(2.0)


def test_pairing_cancels_drift_shared_by_a_round():
    # Both parts drift together (each round slower than the last); b is always exactly 2 a.
    drift = [1.0, 1.5, 2.0, 4.0, 8.0, 1.1, 3.0]
    got = paired.paired_interval({"a": drift, "b": [2 * x for x in drift]}, lambda m: m["b"] / m["a"])
    assert got == pytest.approx((2.0, 2.0, 2.0))


def test_bootstrap_is_deterministic():
    rng = np.random.default_rng(5)
    data = {"a": list(rng.random(20)), "b": list(rng.random(20))}
    one = paired.paired_interval(data, lambda m: m["a"] - m["b"])
    two = paired.paired_interval(data, lambda m: m["a"] - m["b"])
    assert one == two and one.low <= one.point <= one.high


def test_unequal_rounds_refused():
    with pytest.raises(ValueError, match="same"):
        paired.paired_interval({"a": [1.0, 2.0], "b": [1.0]}, lambda m: m["a"])


def test_median_interval_and_per_round_means():
    assert paired.median_interval([1.0, 2.0, 3.0]).point == 2.0
    assert paired.per_round_means([1, 3, 5, 7, 2, 2], 3) == [2.0, 6.0, 2.0]
    with pytest.raises(ValueError):
        paired.per_round_means([1, 2, 3], 2)


def test_overlap_interval_from_paired_rounds():
    # ag 1 ms, rs 2 ms, pair 2.5 ms in every round: (1 + 2 - 2.5) / 1 = 0.5 exactly.
    got = measures.pair_figures(ag=[1e-3] * 4, rs=[2e-3] * 4, ag_rs=[2.5e-3] * 4, single=[5e-3] * 4).extra_info()
    assert got["overlap_efficiency"] == pytest.approx(0.5)
    assert got["overlap_efficiency_ci"] == pytest.approx([0.5, 0.5])
    assert got["serial_sum_s"] == pytest.approx(3e-3)
    assert got["speedup_vs_single_comm"] == pytest.approx(2.0)
    assert got["speedup_vs_single_comm_ci"] == pytest.approx([2.0, 2.0])


def test_step_figures_hand_worked():
    got = measures.step_figures(step=[5.0, 6.0, 7.0], compute_only=[4.0, 4.0, 4.0], comm_only=[2.0, 2.0, 2.0],
                                compute_in_step=[3.0, 3.3, 3.6], compute_alone=[3.0, 3.0, 3.0]).extra_info()
    assert got["exposed_comm_s"] == pytest.approx(2.0)  # 6 - 4
    assert got["exposed_comm_fraction"] == pytest.approx(1.0)
    assert got["compute_slowdown"] == pytest.approx(1.1)
    low, high = got["exposed_comm_s_ci"]
    assert 1.0 <= low <= 2.0 <= high <= 3.0
