"""The figure records of analysis.measures: each one's extra_info() names exactly the fields
results.json has always carried for it, present or absent as before. Hand-worked values; pure."""

import pytest

from agrs_bench.analysis import measures, paired, stats


def test_collective_figures_hand_worked():
    # 1 MiB ag on 2 ranks, 1 ms per op: algbw 1.048576 GB/s, busbw half of it.
    data = [1e-3] * 7
    got = measures.collective_figures("ag", 1 << 20, 2, data, reference_s=0.5e-3)
    assert got.median_s == 1e-3 and got.algbw_gbps == pytest.approx(1.048576)
    assert got.busbw_gbps == pytest.approx(0.524288)
    # 7 rounds: [min, max] covers the median with 1 - 2/128, the narrowest interval reaching 95%.
    assert got.median_interval_s == stats.OrderInterval(1e-3, 1e-3, pytest.approx(1 - 2 / 128))
    assert got.busbw_interval_gbps.coverage == got.median_interval_s.coverage
    assert got.busbw_vs_reference == pytest.approx(0.5) and got.link_floor_s is None
    assert list(got.extra_info()) == ["median_ci_s", "median_interval_coverage", "algbw_gbps", "busbw_gbps",
                                      "busbw_gbps_ci", "reference_busbw_gbps", "busbw_vs_reference"]


def test_busbw_interval_turns_the_time_interval_around():
    got = measures.collective_figures("rs", 1 << 20, 4, [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3, 7e-3])
    low, high = got.busbw_interval_gbps.low, got.busbw_interval_gbps.high
    assert low == pytest.approx(measures.busbw_gbps("rs", 1 << 20, got.median_interval_s.high, 4))
    assert high == pytest.approx(measures.busbw_gbps("rs", 1 << 20, got.median_interval_s.low, 4))
    assert low < got.busbw_gbps < high


def test_too_few_rounds_keep_the_interval_fields_as_none():
    got = measures.collective_figures("ag_rs", 1 << 20, 2, [1e-3, 2e-3], link_gbps=450.0).extra_info()
    assert got["median_ci_s"] is None and got["median_interval_coverage"] is None and got["busbw_gbps_ci"] is None
    # ag_rs moves 2S: each rank sends 2 * (n-1)/n * S = 1 MiB over 450 GB/s.
    assert got["link_floor_s"] == pytest.approx((1 << 20) / 450e9)
    assert "reference_busbw_gbps" not in got


def test_collective_figures_refuse_a_step_mode_or_no_samples():
    with pytest.raises(ValueError, match="'fsdp_step'"):
        measures.collective_figures("fsdp_step", 1, 2, [1.0])
    with pytest.raises(ValueError, match="0 sample"):
        measures.collective_figures("ag", 1, 2, [])


def test_pair_figures_name_only_what_was_sampled_together():
    assert measures.pair_figures(ag=None, rs=None, ag_rs=[1.0, 2.0]).extra_info() == {}
    only_single = measures.pair_figures(ag=None, rs=None, ag_rs=[1.0] * 3, single=[2.0] * 3)
    assert only_single.overlap_efficiency is None and only_single.serial_sum_s is None
    assert only_single.speedup_vs_single_comm == paired.Interval(2.0, 2.0, 2.0)
    assert list(only_single.extra_info()) == ["speedup_vs_single_comm", "speedup_vs_single_comm_ci"]
    both = measures.pair_figures(ag=[1.0] * 3, rs=[2.0] * 3, ag_rs=[2.5] * 3, single=[5.0] * 3)
    assert list(both.extra_info()) == ["overlap_efficiency", "overlap_efficiency_ci", "serial_sum_s",
                                       "speedup_vs_single_comm", "speedup_vs_single_comm_ci"]


def test_step_figures_without_timed_gemms_say_so():
    # mfsdp_step: no comm-only part, GEMMs not timed.
    got = measures.step_figures(step=[5.0, 6.0, 7.0], compute_only=[4.0] * 3, comm_only=None)
    assert got.comm_only_s is None and got.exposed_comm_fraction is None and got.compute_slowdown is None
    info = got.extra_info()
    assert info["compute_slowdown"] is None and "compute_in_step_s" not in info and "compute_slowdown_ci" not in info
    assert info["exposed_comm_s"] == pytest.approx(2.0)
    timed = measures.step_figures(step=[5.0] * 3, compute_only=[4.0] * 3, comm_only=[2.0] * 3,
                                  compute_in_step=[3.3] * 3, compute_alone=[3.0] * 3)
    assert timed.exposed_comm_fraction == pytest.approx(0.5)
    assert list(timed.extra_info())[-4:] == ["compute_in_step_s", "compute_alone_s", "compute_slowdown",
                                             "compute_slowdown_ci"]


def test_a_reference_has_a_time_or_a_reason_never_both():
    assert measures.ReferenceFigures(omitted="--no-reference").extra_info() == {"reference_omitted": "--no-reference"}
    kept = measures.ReferenceFigures(reference_s=2e-6, sample_s_min=1e-3).extra_info()
    assert kept == {"reference_s": 2e-6, "reference_method": measures.REFERENCE_METHOD,
                    "reference_sample_s_min": 1e-3}
    with pytest.raises(ValueError, match="either"):
        measures.ReferenceFigures(reference_s=1.0, omitted="why")
    with pytest.raises(ValueError, match="either"):
        measures.ReferenceFigures()


def _measured(mode="ag", **parts):
    from agrs_bench.analysis.sampling import SampleFigures
    from agrs_bench.config.cell import Cell
    from agrs_bench.results.measured import Measured

    samples = SampleFigures(rounds=7, ops_per_sample=3, sample_s_min=3e-3, sample_s_target=2e-3,
                            sampling_position=(0, 1, 0, 1, 0, 1, 0), estimate_device_s=1e-3, estimate_host_s=1e-5)
    cell = Cell(mode=mode, buffer="dense", source="pg_collection", size_bytes=1 << 20, dtype="bf16")
    return Measured(cell=cell, group_size=2, data=tuple([1e-3] * 7),
                    settings={"comparison": "dense-1MiB-eager", "group_ranks": [0, 1]}, samples=samples, **parts)


def test_cell_benchmark_writes_settings_samples_reference_figures_then_the_runs_notes():
    from agrs_bench.results import files

    measured = _measured(reference=measures.ReferenceFigures(reference_s=0.5e-3, sample_s_min=1e-3),
                         warnings=("samples fell short",))
    bench = files.cell_benchmark(measured, world_size=2, options={}, spans_nodes=False, telemetry={"x": 1},
                                 warnings=["GPU clocks throttled"])
    extra = bench["extra_info"]
    assert bench["params"]["group_size"] == 2 and bench["stats"]["iterations"] == 3
    assert list(extra)[:2] == ["comparison", "group_ranks"] and extra["sampling_position"] == [0, 1, 0, 1, 0, 1, 0]
    assert extra["busbw_vs_reference"] == pytest.approx(0.5)  # the reference reached the figures
    assert list(extra)[-3:] == ["spans_nodes", "telemetry", "warnings"]
    assert extra["warnings"] == ["samples fell short", "GPU clocks throttled"]  # the cell's own first
    quiet = files.cell_benchmark(_measured(), world_size=2, options={})  # the benchmarks/ suite: no run notes
    assert not {"spans_nodes", "telemetry", "warnings", "reference_s", "reference_omitted"} & set(quiet["extra_info"])


def test_step_parts_reach_the_step_figures():
    from agrs_bench.results import files
    from agrs_bench.results.measured import StepParts

    untimed = _measured("fsdp_step", parts=StepParts(compute_only=(4e-4,) * 7, comm_only=(5e-4,) * 7))
    extra = files.cell_benchmark(untimed, world_size=2, options={})["extra_info"]
    assert extra["compute_only_data"] == [4e-4] * 7 and "compute_in_step_data" not in extra
    assert extra["exposed_comm_s"] == pytest.approx(6e-4) and extra["compute_slowdown"] is None
    mfsdp = _measured("fsdp_step", parts=StepParts(compute_only=(4e-4,) * 7, comm_only=None))
    extra = files.cell_benchmark(mfsdp, world_size=2, options={})["extra_info"]
    assert extra["comm_only_data"] is None and extra["exposed_comm_fraction"] is None


def test_throttling_is_said_once_per_cell():
    from agrs_bench.measure import telemetry

    assert telemetry.throttle_warnings({"throttled": False}) == []
    (line,) = telemetry.throttle_warnings({"throttled": True, "sm_clock_mhz_min": 1530,
                                           "clock_event_reasons": ["sw_power_cap"]})
    assert line == "GPU clocks throttled during this cell (SM clock down to 1530 MHz; sw_power_cap)"


def test_trace_figures_keep_the_fields_a_traced_cell_always_had():
    from agrs_bench.analysis import trace_overlap

    cpu = trace_overlap.TraceFigures(trace_file="traces/x.json", traced_rounds=3, overlap=trace_overlap.OverlapFigures(
        fraction=None, rounds=3, reason="gloo on CPU"))
    assert cpu.extra_info() == {"trace_file": "traces/x.json", "traced_rounds": 3, "trace_overlap_fraction": None,
                                "trace_overlap_reason": "gloo on CPU"}
    one_round = trace_overlap.across_ranks([[0.4], [0.6]], 1)
    assert one_round.fraction.point == 0.4 and one_round.extra_info() == {"trace_overlap_fraction": 0.4}
    gpu = trace_overlap.TraceFigures(trace_file="t", traced_rounds=3, overlap=trace_overlap.across_ranks(
        [[0.9, 0.5, 0.7], [0.8, 0.6, 0.2]], 3), kinds={"trace_kinds": {}, "levers_ignored": []})
    assert list(gpu.extra_info()) == ["trace_file", "traced_rounds", "trace_kinds", "levers_ignored",
                                      "trace_overlap_fraction", "trace_overlap_fraction_ci"]
