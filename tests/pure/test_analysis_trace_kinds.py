"""analysis.trace_kinds on synthetic trace events: what moved the bytes, and which levers NCCL
ignored. (The real trace recorded on one H200 is tests/data/levers_trace.json.)"""

import json
import os

import pytest

from agrs_bench.analysis import trace_kinds as tk


def kernel(name, ts, grid=(1, 1, 1)):
    return {"ph": "X", "cat": "kernel", "name": name, "ts": ts, "dur": 5, "args": {"grid": list(grid)}}


def memcpy(ts, name="Memcpy DtoD (Device -> Device)"):
    return {"ph": "X", "cat": "gpu_memcpy", "name": name, "ts": ts, "dur": 5}


RING = "ncclDevKernel_AllGather_RING_LL(ncclDevKernelArgsStorage<4096ul>)"


@pytest.mark.parametrize("name, algorithm", [
    (RING, "ring"), ("ncclDevKernel_ReduceScatter_Sum_bf16_TREE_SIMPLE", "tree"),
    ("ncclDevKernel_AllGather_NVLS_SIMPLE", "nvls"), ("ncclSymkDevKernel_AllGather_LL", "symmetric"),
    ("ncclDevKernel_AllGather_PAT_SIMPLE", "pat"), ("ncclDevKernel_Generic", "other"),
    # names as profilers print them (public profiles and NCCL's docs for its symmetric kernels)
    ("ncclDevKernel_ReduceScatter_Sum_f32_RING_LL", "ring"),
    ("ncclSymkDevKernel_AllReduce_AGxLLMC_R_sum_bf16", "symmetric"),
    ("ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)", "other")])
def test_algorithm_is_read_from_the_kernel_name(name, algorithm):
    assert tk.algorithm(name) == algorithm


def test_nccl_kernels_are_sm_kernels_with_their_ctas():
    seen = tk.summarize([kernel(RING, 0, (16, 1, 1)), kernel(RING, 10, (24, 1, 1)), kernel("ampere_gemm", 3)])
    assert seen["engine"] == "sm_kernels" and seen["nccl_ctas_max"] == 24
    assert seen["nccl_algorithms"] == {"ring": 2} and seen["other_kernel_count"] == 1
    assert seen["nccl_kernel_names"] == ["ncclDevKernel_AllGather_RING_LL"]


def test_memcpy_without_nccl_kernel_is_the_copy_engine():
    seen = tk.summarize([memcpy(0), memcpy(8, "Memcpy PtoP (Device -> Device)"), kernel("gemm", 2)])
    assert seen["engine"] == "copy_engine" and seen["memcpy_count"] == 2 and seen["nccl_ctas_max"] is None


def test_window_and_mixed_and_none():
    events = [kernel(RING, 0), memcpy(100)]
    assert tk.summarize(events)["engine"] == "mixed"
    assert tk.summarize(events, (50, 150))["engine"] == "copy_engine"
    assert tk.summarize(events, (500, 600))["engine"] == "none"


def test_grid_missing_or_malformed_gives_no_cta_count():
    event = kernel(RING, 0)
    event["args"] = {"grid": "16"}
    assert tk.summarize([event])["nccl_ctas_max"] is None


def test_zero_policy_ignored_without_symmetric_buffers_or_across_nodes():
    sm = tk.summarize([kernel(RING, 0, (8, 1, 1))])
    assert tk.judge({"cta_policy": "zero"}, sm) == [
        "cta_policy=zero ignored without symmetric buffers: NCCL ran SM kernels (ring, up to 8 CTAs)"]
    assert "across nodes" in tk.judge({"cta_policy": "zero", "registration": "symmetric"}, sm, nodes=2)[0]
    assert tk.judge({"cta_policy": "zero", "registration": "symmetric"}, tk.summarize([memcpy(0)])) == []
    assert tk.judge({"cta_policy": "efficiency"}, sm) == []


def test_symmetric_registration_ignored_when_only_ring_kernels_ran():
    sm = tk.summarize([kernel(RING, 0)])
    assert tk.judge({"registration": "symmetric"}, sm) == [
        "registration=symmetric ignored: NCCL ran ring kernels, not its symmetric ones"]
    sym = tk.summarize([kernel("ncclSymkDevKernel_AllGather_LL", 0)])
    assert tk.judge({"registration": "symmetric"}, sym) == []


REAL = os.path.join(os.path.dirname(__file__), os.pardir, "data", "levers_trace.json")


def test_real_trace_tells_copy_engine_from_kernels():
    with open(REAL, encoding="utf-8") as fh:
        events = json.load(fh)["traceEvents"]

    def window(label):
        for e in events:
            if e.get("cat") == "user_annotation" and e.get("name") == label:
                return float(e["ts"]), float(e["ts"]) + float(e["dur"])
        raise AssertionError(label)

    ce = tk.summarize(events, window("levers:ce_copy"))
    sm = tk.summarize(events, window("levers:sm_copy"))
    assert ce["engine"] == "copy_engine" and ce["other_kernel_count"] == 0
    assert sm["memcpy_count"] == 0 and sm["other_kernel_count"] >= 1
    # A group of one rank: NCCL ran no kernel under any CTA policy, only a local copy per AG and RS,
    # so the copy engine there is not policy zero at work and the levers are not in play.
    for policy in ("default", "efficiency", "zero"):
        seen = tk.summarize(events, window(f"levers:nccl_{policy}"))
        assert seen["engine"] == "copy_engine" and not seen["nccl_kernel_names"] and seen["memcpy_count"] == 2
        assert tk.judge({"cta_policy": "zero", "registration": "symmetric"}, seen) == []
        assert tk.judge({"cta_policy": policy, "registration": "none"}, seen, ranks=1) == (
            [] if policy == "default" else
            [f"cta_policy={policy} not in play on a group of one rank: NCCL copies locally"])


def test_one_rank_reports_every_asked_lever_as_not_in_play():
    info = tk.cell_info([memcpy(0), memcpy(5)], {"ag": {"cta_policy": "zero", "registration": "symmetric"},
                                                 "rs": {"cta_policy": "default", "registration": "none"}}, ranks=1)
    assert info["levers_ignored"] == [
        "ag: cta_policy=zero not in play on a group of one rank: NCCL copies locally",
        "ag: registration=symmetric not in play on a group of one rank: NCCL copies locally"]


def test_cell_info_judges_each_role_on_its_own_collective():
    events = [kernel(RING, 0, (8, 1, 1)), kernel("ncclDevKernel_ReduceScatter_Sum_bf16_RING_LL", 5, (16, 1, 1))]
    info = tk.cell_info(events, {"ag": {"cta_policy": "zero", "registration": "none"},
                                 "rs": {"cta_policy": "default", "registration": "none"}})
    assert info["trace_kinds"]["ag"]["nccl_ctas_max"] == 8 and info["trace_kinds"]["rs"]["nccl_ctas_max"] == 16
    assert info["levers_ignored"] == [
        "ag: cta_policy=zero ignored without symmetric buffers: NCCL ran SM kernels (ring, up to 8 CTAs)"]
