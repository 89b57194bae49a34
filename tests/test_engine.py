"""The timing engine on CPU: interleaved, rotated rounds; full samples or a flag; paired intervals
in results.json; one process (gloo, world 1) for the engine alone, 2 and 4 ranks end to end."""

import json
import os
import time

import pytest

from agrs_bench.analysis import stats
from tests import launch

torch = pytest.importorskip("torch")
dist = torch.distributed


@pytest.fixture
def world_of_one(tmp_path):
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _parts(log, sleeps_s):
    from agrs_bench.measure.device import CpuHandle
    from agrs_bench.measure.timing import Part

    dev = CpuHandle()

    def iteration(name, sleep_s):
        def run(pending):
            log.append(name)
            time.sleep(sleep_s)
        return run

    return [Part(name, dev, iteration(name, s), ()) for name, s in sleeps_s.items()]


def test_rounds_are_interleaved_rotated_and_full(world_of_one):
    from agrs_bench.measure.timing import Sampler, TimingPlan

    log = []
    parts = _parts(log, {"a": 200e-6, "b": 400e-6, "c": 100e-6})
    plan = TimingPlan(num_warmup=1, num_rounds=4, target_sample_s=2e-3)
    samples = Sampler(parts, plan).run()
    ops = samples.ops_per_sample
    fastest_s = min(device_s for device_s, _ in samples.estimate_s.values())
    assert ops * fastest_s >= plan.target_sample_s  # from the fastest part: every part's sample is full
    assert samples.order == ((0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 1, 2))
    # The log's tail is the timed rounds: runs of `ops` iterations per part, in the rotated order.
    timed = log[-4 * 3 * ops:]
    runs = [timed[i] for i in range(0, len(timed), ops)]
    assert runs == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert all(timed[i:i + ops] == [timed[i]] * ops for i in range(0, len(timed), ops))
    for name in "abc":
        assert len(samples.per_iter_s[name]) == 4
        info = samples.sample_figures(name)
        assert info.sample_s_min == pytest.approx(min(samples.per_iter_s[name]) * ops)
        assert info.sample_s_min >= plan.target_sample_s or (info.sample_short and samples.short_warnings(name))
    assert samples.position("a") == [0, 2, 1, 0] and samples.position("c") == [2, 1, 0, 2]


def test_fixed_ops_short_samples_are_flagged(world_of_one):
    from agrs_bench.measure.timing import Sampler, TimingPlan

    samples = Sampler(_parts([], {"a": 50e-6, "b": 50e-6}),
                      TimingPlan(num_warmup=0, num_rounds=2, target_sample_s=1.0, ops_per_sample=1)).run()
    assert samples.ops_per_sample == 1 and samples.sample_figures("a").sample_short is True
    assert "fell short of the 1000 ms budget" in samples.short_warnings("a")[0]


def test_checks_run_once_per_part_before_timing(world_of_one):
    from agrs_bench.measure.timing import Part, Sampler, TimingPlan

    log = []
    parts = _parts(log, {"a": 0.0, "b": 0.0})
    checked = []

    def check(name):
        def run(run_sample):
            before = len(log)
            run_sample()
            checked.append((name, len(log) - before))
        return run

    parts = [Part(p.name, p.dev, p.iteration, p.roles, check(p.name)) for p in parts]
    samples = Sampler(parts, TimingPlan(num_warmup=0, num_rounds=2, target_sample_s=1e-4,
                                        ops_per_sample=3)).run()
    assert checked == [("a", 3), ("b", 3)] and samples.ops_per_sample == 3


def test_names_must_differ():
    from agrs_bench.measure.timing import Sampler, TimingPlan

    with pytest.raises(ValueError, match="distinct"):
        Sampler(_parts([], {"a": 0.0}) * 2, TimingPlan(num_warmup=0, num_rounds=1, target_sample_s=1e-3))


def _run(tmp_path, nproc, *args):
    out = tmp_path / f"r{nproc}"
    done = launch.run(launch.torchrun_cmd(nproc, "--out", str(out), *launch.FAST, "--sample-ms", "0.5", *args),
                      deadline_s=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def _check_paired_document(doc):
    by_comparison = {}
    for bench in doc["benchmarks"]:
        extra = bench["extra_info"]
        by_comparison.setdefault(extra["comparison"], []).append(bench)
        assert extra["rounds"] == len(bench["stats"]["data"])
        assert extra["sample_s_target"] == pytest.approx(0.5e-3)
        data = list(bench["stats"]["data"])
        if bench["params"]["mode"] == "fsdp_step":  # every part of the cell counts
            data += extra["compute_only_data"] + extra["comm_only_data"]
        assert extra["sample_s_min"] == pytest.approx(min(data) * extra["ops_per_sample"])
        assert extra["sample_short"] == (extra["sample_s_min"] < extra["sample_s_target"])
        if extra["sample_short"]:
            assert any("fell short" in w for w in extra["warnings"])
        mode = bench["params"]["mode"]
        if mode in ("ag", "rs", "ag_rs"):  # an order-statistic interval only where rounds reach 95%
            if extra["rounds"] >= stats.min_samples_for(0.95):
                low, high = extra["busbw_gbps_ci"]
                assert low <= extra["busbw_gbps"] <= high
            else:
                assert extra["busbw_gbps_ci"] is None
        if mode == "ag_rs":
            for name in ("overlap_efficiency", "speedup_vs_single_comm"):
                low, high = extra[f"{name}_ci"]
                assert low <= extra[name] <= high, (name, extra)
        if mode in ("ag", "rs"):
            assert ("reference_s" in extra) != ("reference_omitted" in extra)
        if mode == "fsdp_step":
            for name in ("exposed_comm_s", "compute_slowdown"):
                low, high = extra[f"{name}_ci"]
                assert low <= extra[name] <= high
    for comparison, cells in by_comparison.items():
        counts = {b["extra_info"]["ops_per_sample"] for b in cells}
        assert len(counts) == 1, comparison  # one count for every part of a comparison
        rounds = cells[0]["extra_info"]["rounds"]
        for r in range(rounds):  # interleaved: every cell has its own place in every round
            places = [b["extra_info"]["sampling_position"][r] for b in cells]
            assert len(set(places)) == len(places)
    return by_comparison


@pytest.mark.gloo
def test_two_ranks_every_mode_paired_and_traced(tmp_path):
    out, doc = _run(tmp_path, 2, "--no-reference", "--trace")
    by_comparison = _check_paired_document(doc)
    assert set(by_comparison) == {"dense-4KiB-eager", "expert-4KiB-eager", "dense-32KiB-eager",
                                  "expert-32KiB-eager", "fsdp_step-dense+expert-8KiB-eager"}
    for cells in by_comparison.values():
        parts = len(cells) * (3 if cells[0]["params"]["mode"] == "fsdp_step" else 1)
        for bench in cells:  # rotated: one place earlier every round (no reference parts here)
            places = bench["extra_info"]["sampling_position"]
            assert all(b == (a - 1) % parts for a, b in zip(places, places[1:]))
    pair = next(b for b in doc["benchmarks"] if b["name"] == "agrs[ag_rs-dense-pg_collection-4KiB]")
    extra = pair["extra_info"]
    assert extra["trace_file"] == os.path.join("traces", "ag_rs-dense-pg_collection-4KiB.json")
    trace = json.loads((out / extra["trace_file"]).read_text())
    assert any(str(e.get("name", "")).startswith("agrs_round_") for e in trace["traceEvents"])
    assert (out / "traces" / "ag_rs-dense-pg_collection-4KiB.rank1.json").exists()
    assert extra["trace_overlap_fraction"] is None and "no device kernels" in extra["trace_overlap_reason"]
    assert "reference_omitted" in next(b for b in doc["benchmarks"] if b["params"]["mode"] == "ag")["extra_info"]


@pytest.mark.gloo
def test_four_ranks_collectives_with_reference(tmp_path):
    _, doc = _run(tmp_path, 4, "--modes", "ag,rs,ag_rs", "--sources", "single_comm,pg_collection",
                  "--sizes", "4KiB", "--buffers", "dense")
    by_comparison = _check_paired_document(doc)
    assert list(by_comparison) == ["dense-4KiB-eager"] and len(by_comparison["dense-4KiB-eager"]) == 6
    ag = next(b for b in doc["benchmarks"] if b["params"]["mode"] == "ag")
    assert ag["params"]["world_size"] == 4 and ag["extra_info"]["reference_s"] > 0  # gloo: never omitted
