"""Trace overlap on synthetic Chrome traces with known overlap."""

import pytest

from agrs_bench.analysis import trace_overlap as to


def k(name, ts, dur, device=0, stream=7):
    return {"ph": "X", "cat": "kernel", "name": name, "pid": device, "tid": stream, "ts": ts, "dur": dur,
            "args": {"device": device, "stream": stream}}


AG = "ncclDevKernel_AllGather_RING_LL(ncclDevKernelArgsStorage<4096ul>)"
RS = "ncclDevKernel_ReduceScatter_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)"


def test_serial_kernels_do_not_overlap():
    assert to.fraction([k(AG, 0, 10), k(RS, 10, 10, stream=8)]) == 0.0


def test_partial_overlap_of_the_shorter():
    # AG [0, 10), RS [6, 26): overlap 4 of the shorter AG's 10.
    assert to.fraction([k(AG, 0, 10), k(RS, 6, 20, stream=8)]) == pytest.approx(0.4)


def test_full_overlap():
    assert to.fraction([k(AG, 5, 5), k(RS, 0, 20, stream=8)]) == pytest.approx(1.0)


def test_several_kernels_per_op_and_streams_use_the_union():
    events = [k(AG, 0, 10, stream=1), k(AG, 5, 10, stream=2),  # AG covers [0, 15): 15
              k(RS, 10, 4, stream=3), k(RS, 12, 8, stream=4),  # RS covers [10, 20): 10
              {"ph": "X", "cat": "cpu_op", "name": AG, "ts": 0, "dur": 100}]  # host events ignored
    assert to.fraction(events) == pytest.approx(5 / 10)


def test_devices_are_judged_apart_and_the_worst_counts():
    events = [k(AG, 0, 10, device=0), k(RS, 0, 10, device=0, stream=8),
              k(AG, 0, 10, device=1), k(RS, 10, 10, device=1, stream=8)]
    assert to.overlap_by_device(events) == {0: 1.0, 1: 0.0}
    assert to.fraction(events) == 0.0


def test_missing_kind_gives_none():
    assert to.fraction([k(AG, 0, 10)]) is None
    assert to.fraction([]) is None


def test_matchers_generalise_to_other_kernels():
    events = [k("sm90_xmma_gemm_bf16", 0, 100, stream=1), k("direct_copy_kernel_cuda", 50, 10, stream=2)]
    assert to.fraction(events, "copy", lambda e: "gemm" in e["name"]) == pytest.approx(1.0)


def test_rounds_split_by_profiler_ranges():
    events = [{"ph": "X", "cat": "user_annotation", "name": "agrs_round_0", "ts": 0, "dur": 50},
              {"ph": "X", "cat": "gpu_user_annotation", "name": "agrs_round_0", "ts": 3, "dur": 50},
              {"ph": "X", "cat": "user_annotation", "name": "agrs_round_1", "ts": 100, "dur": 50},
              k(AG, 10, 10), k(RS, 10, 10, stream=8),      # round 0: full
              k(AG, 110, 10), k(RS, 120, 10, stream=8)]    # round 1: none
    assert to.round_windows(events) == [(0.0, 100.0), (100.0, float("inf"))]
    assert to.per_round(events) == [1.0, 0.0]
    assert to.trace_events({"traceEvents": events}) == events


def test_across_ranks_takes_the_least_overlapped_rank_per_round():
    info = to.across_ranks([[0.9, 0.5, 0.7], [0.8, 0.6, 0.2]], 3).extra_info()
    assert info["trace_overlap_fraction"] == 0.5  # median of the per-round minima 0.8, 0.5, 0.2
    assert "trace_overlap_fraction_ci" in info


def test_across_ranks_with_a_round_missing_on_one_rank_gives_none():
    info = to.across_ranks([[0.9, 0.5], [0.8, None]], 2).extra_info()
    assert info["trace_overlap_fraction"] is None and "no kernels" in info["trace_overlap_reason"]
    assert to.across_ranks([[0.9], None], 1).fraction is None
