"""Statistics against worked textbook examples, known answers and pytest-benchmark itself."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agrs_bench.analysis import measures, stats


def _theirs(data):
    from pytest_benchmark.stats import Stats

    found = Stats()
    for x in data:
        found.update(x)
    return found


def test_quartiles_wikipedia_method_3_example_1():
    # Wikipedia, "Quartile", method 3, example 1 (odd count).
    assert stats.quartiles([6, 7, 15, 36, 39, 40, 41, 42, 43, 47, 49]) == (20.25, 42.75)


def test_quartiles_wikipedia_method_2_example_2():
    # Wikipedia, "Quartile", method 2, example 2 (even count).
    assert stats.quartiles([7, 15, 36, 39, 40, 41]) == (15, 40)


def test_summarize_is_pytest_benchmarks_stats():
    from pytest_benchmark.stats import Stats

    data = [0.5, 0.1, 0.3, 0.9, 0.4, 0.45, 0.33]
    ours = stats.summarize(data)
    assert set(ours) == set(Stats.fields)
    assert ours == _theirs(data).as_dict()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1e-7, max_value=10.0, allow_nan=False), min_size=1, max_size=60))
def test_summarize_equals_stats_on_any_samples(data):
    # Whatever version is installed (5.2.3 and 5.3.1 differ in hd15iqr): the fields are its own.
    assert stats.summarize(data) == _theirs(data).as_dict()


def test_hd15iqr_with_an_outlier_is_the_installed_rule():
    data = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 9.0]
    assert stats.summarize(data)["hd15iqr"] == _theirs(data).hd15iqr


def test_summarize_one_sample():
    s = stats.summarize([2.0])
    assert s["median"] == 2.0 and s["stddev"] == 0.0 and s["iqr"] == 0.0


def test_summarize_rejects_no_samples():
    with pytest.raises(ValueError, match="no samples"):
        stats.summarize([])


def test_holm_textbook_example():
    # Holm (1979) step-down: sorted p 0.01, 0.02, 0.03, 0.04 (m = 4) -> 0.04, 0.06, 0.06, 0.06.
    assert stats.holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert stats.holm([0.5]) == [0.5]
    assert stats.holm([0.9, 0.9]) == [1.0, 1.0]


def test_trigamma_inverse_roundtrip():
    from scipy import special

    for y in (0.05, 0.5, 2.0, 40.0):
        assert stats.trigamma_inverse(float(special.polygamma(1, y))) == pytest.approx(y, rel=1e-6)


def test_variance_prior_of_equal_variances_is_infinite_df():
    d0, s0 = stats.variance_prior([0.04] * 10, [4] * 10)
    assert math.isinf(d0) and s0 == pytest.approx(0.04 * math.exp(0), rel=0.5)


def test_variance_prior_of_wildly_different_variances_adds_little():
    d0, _ = stats.variance_prior([1e-6, 1e-2, 1e-5, 1.0, 1e-4, 1e-1], [4] * 6)
    assert 0 < d0 < 1


def test_variance_prior_needs_three_cells():
    assert stats.variance_prior([0.1, 0.2], [4, 4]) == (0.0, 0.0)


def test_t_interval_and_p_above():
    low, high = stats.t_interval(0.0, 1.0, 4, 0.95)
    assert high == pytest.approx(2.776445, rel=1e-5) and low == -high  # t(0.975, 4)
    assert stats.p_above(2.776445, 0.0, 1.0, 4) == pytest.approx(0.025, rel=1e-4)
    assert all(math.isnan(x) for x in stats.t_interval(0.0, math.nan, 0, 0.95))
    assert stats.p_above(1.0, 0.0, math.nan, 0) == 1.0
    assert stats.p_above(1.0, 0.0, 0.0, 4) == 0.0 and stats.p_above(-1.0, 0.0, 0.0, 4) == 1.0


def test_compare_launches_pooled_t_by_hand():
    base = [[1.0], [1.1], [0.9]]
    head = [[2.0], [2.2], [1.8]]
    (cell,) = stats.compare_launches([(base, head)])  # one cell: no prior
    b = [math.log(x) for x in (1.0, 1.1, 0.9)]
    h = [math.log(x) for x in (2.0, 2.2, 1.8)]
    mb, mh = sum(b) / 3, sum(h) / 3
    pooled = (sum((x - mb) ** 2 for x in b) + sum((x - mh) ** 2 for x in h)) / 4
    assert cell.diff == pytest.approx(mh - mb) and cell.df == 4
    assert cell.se == pytest.approx(math.sqrt(pooled * (2 / 3)))
    assert cell.moderated_se == cell.se and cell.moderated_df == 4


def test_compare_launches_one_launch_per_side_has_no_df():
    (cell,) = stats.compare_launches([([[1.0, 1.1]], [[1.2, 1.3]])])
    assert cell.df == 0 and math.isnan(cell.se)


def test_measures_conventions():
    # nccl-tests: 1 MiB AG in 15.58 us on 2 GPUs -> algbw 67.3, busbw 33.65 GB/s.
    assert measures.algbw_gbps("ag", 1048576, 15.58e-6) == pytest.approx(67.30, abs=0.01)
    assert measures.busbw_gbps("ag", 1048576, 15.58e-6, 2) == pytest.approx(33.65, abs=0.01)
    assert measures.overlap_efficiency(1.0, 1.0, 2.0) == 0.0
    assert measures.overlap_efficiency(1.0, 0.5, 1.0) == 1.0
    assert measures.speedup(2.0, 1.0) == 2.0


def test_speedup_uses_single_comm_of_the_same_options():
    from agrs_bench.results import files as results

    def cell(mode, source, seconds, options):
        params = {"mode": mode, "buffer": "dense", "source": source, "size_bytes": 1 << 20, "dtype": "bf16",
                  "world_size": 2, "group_size": 2, "nccl_options": options}
        return results.make_benchmark(params, [seconds] * 3, 1, {"comparison": "dense-1MiB-eager"}, {})

    opts = "ag:hp/rs:default"
    doc = results.build_document(
        [cell("ag_rs", "single_comm", 2.0, opts), cell("ag_rs", "pg_collection", 1.0, opts)],
        machine_info={}, commit_info={}, config={}, missing_cells=[], started_utc="x")
    assert doc["benchmarks"][1]["extra_info"]["speedup_vs_single_comm"] == 2.0
    assert doc["benchmarks"][1]["extra_info"]["speedup_vs_single_comm_ci"] == [2.0, 2.0]


def test_cells_not_sampled_together_get_no_paired_figure():
    from agrs_bench.results import files as results

    def cell(mode, comparison):
        params = {"mode": mode, "buffer": "dense", "source": "pg_collection", "size_bytes": 1 << 20,
                  "dtype": "bf16", "world_size": 2, "group_size": 2}
        return results.make_benchmark(params, [1.0] * 3, 1, {"comparison": comparison}, {})

    doc = results.build_document([cell("ag", "x"), cell("rs", "x"), cell("ag_rs", "y")], machine_info={},
                                 commit_info={}, config={}, missing_cells=[], started_utc="x")
    assert "overlap_efficiency" not in doc["benchmarks"][2]["extra_info"]


def test_reference_is_the_median_unless_the_host_is_the_bottleneck():
    figures = measures.reference_figures([3e-6, 1e-6, 2e-6, 9e-6], 5e-3, device_s=2e-6, host_s=1e-6,
                                         on_device=True).extra_info()
    assert figures["reference_s"] == pytest.approx(2.5e-6) and figures["reference_sample_s_min"] == 5e-3
    launch_bound = measures.reference_figures([1e-6], 1e-3, device_s=1e-6, host_s=4e-6, on_device=True).extra_info()
    assert "reference_s" not in launch_bound and "launch-bound" in launch_bound["reference_omitted"]
    # On CPU (gloo) the host is the device: never omitted.
    assert measures.reference_figures([1e-6], 1e-3, device_s=1e-6, host_s=4e-6, on_device=False).reference_s
