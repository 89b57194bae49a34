"""The timing engine end to end on 2 and 4 gloo ranks: every mode paired and traced, collectives
with the reference (the engine alone, world 1 in-process: tests/pure/test_measure_engine.py)."""

import json
import os

import pytest

from agrs_bench.analysis import stats
from tests.support import launch


def _run(tmp_path, nproc, *args):
    out = tmp_path / f"r{nproc}"
    # The sample budget itself is under test here: FAST's one op per sample is asked back.
    budget = ["--ops-per-sample", "0", "--sample-ms", "0.5"]
    done = launch.run(launch.torchrun_cmd(nproc, "--out", str(out), *launch.FAST, *budget, *args), deadline_s=400)
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


def test_four_ranks_collectives_with_reference(tmp_path):
    _, doc = _run(tmp_path, 4, "--modes", "ag,rs,ag_rs", "--sources", "single_comm,pg_collection",
                  "--sizes", "4KiB", "--buffers", "dense")
    by_comparison = _check_paired_document(doc)
    assert list(by_comparison) == ["dense-4KiB-eager"] and len(by_comparison["dense-4KiB-eager"]) == 6
    ag = next(b for b in doc["benchmarks"] if b["params"]["mode"] == "ag")
    assert ag["params"]["world_size"] == 4 and ag["extra_info"]["reference_s"] > 0  # gloo: never omitted
