"""Statistics against worked textbook examples and known answers."""

import pytest

from agrs_bench.analysis import measures
from agrs_bench.analysis import stats


def test_quartiles_wikipedia_method_3_example_1():
    # Wikipedia, "Quartile", method 3, example 1 (odd count).
    assert stats.quartiles([6, 7, 15, 36, 39, 40, 41, 42, 43, 47, 49]) == (20.25, 42.75)


def test_quartiles_wikipedia_method_2_example_2():
    # Wikipedia, "Quartile", method 2, example 2 (even count).
    assert stats.quartiles([7, 15, 36, 39, 40, 41]) == (15, 40)


def test_summarize_matches_pytest_benchmark():
    from pytest_benchmark.stats import Stats

    data = [0.5, 0.1, 0.3, 0.9, 0.4, 0.45, 0.33]
    theirs = Stats()
    for x in data:
        theirs.update(x)
    ours = stats.summarize(data)
    for key in ("min", "max", "mean", "stddev", "median", "q1", "q3", "iqr", "ld15iqr", "hd15iqr",
                "iqr_outliers", "stddev_outliers", "outliers", "rounds", "total"):
        assert ours[key] == pytest.approx(getattr(theirs, key)), key


def test_summarize_one_sample():
    s = stats.summarize([2.0])
    assert s["median"] == 2.0 and s["stddev"] == 0.0 and s["iqr"] == 0.0


def test_bootstrap_identical_sides_bracket_one():
    launches = [[1.0, 1.01, 0.99, 1.02, 0.98]] * 3
    ratio, low, high = stats.bootstrap_median_ratio(launches, launches, num_resamples=500)
    assert ratio == 1.0 and low <= 1.0 <= high


def test_bootstrap_clear_shift_excludes_one():
    base = [[1.0 + 0.01 * i for i in range(10)]] * 3
    head = [[1.2 + 0.01 * i for i in range(10)]] * 3
    ratio, low, high = stats.bootstrap_median_ratio(base, head, num_resamples=500)
    assert low > 1.1 and ratio == pytest.approx(1.245 / 1.045)


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
        return results.make_benchmark(params, [seconds] * 3, 1, {}, {})

    opts = "ag:hp/rs:default"
    doc = results.build_document(
        [cell("ag_rs", "single_comm", 2.0, opts), cell("ag_rs", "pg_collection", 1.0, opts)],
        machine_info={}, commit_info={}, config={}, missing_cells=[], started_utc="x")
    assert doc["benchmarks"][1]["extra_info"]["speedup_vs_single_comm"] == 2.0
