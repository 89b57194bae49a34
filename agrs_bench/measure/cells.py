"""Measure one cell: fill and poison its buffers, time it, verify its outputs on every rank."""

from __future__ import annotations

import statistics
from typing import Any

import torch
import torch.distributed as dist

from agrs_bench.measure import buffers as bufs
from agrs_bench.config.run_config import RunConfig
from agrs_bench.measure.kernels import CollectiveKernel, all_gather, reduce_scatter
from agrs_bench.measure.step import VARIANTS, FsdpStepKernel, Gemm
from agrs_bench.measure.timing import Samples, TimingPlan, measure, measure_graph, time_back_to_back


class OutputCheckError(RuntimeError):
    """A collective wrote a wrong element: names the cell, the rank and the first wrong element."""


def plan_of(cfg: RunConfig) -> TimingPlan:
    return TimingPlan(num_warmup=cfg.num_warmup, num_samples=cfg.num_samples,
                      ops_per_sample=cfg.ops_per_sample, target_sample_s=cfg.target_sample_ms / 1e3,
                      hide_launch=cfg.hide_launch)


def _problems(buf: bufs.ShardedBuffer, mode: str, rank: int, base: int) -> list[str]:
    found = []
    if mode in ("ag", "ag_rs", "fsdp_step"):
        bad = bufs.first_mismatch(buf.param_full, bufs.expected_ag(buf, base))
        if bad:
            found.append(f"AG output element {bad[0]} is {bad[1]}, expected {bad[2]}")
    if mode in ("rs", "ag_rs", "fsdp_step"):
        bad = bufs.first_mismatch(buf.grad_shard, bufs.expected_rs(buf, rank, base))
        if bad:
            found.append(f"RS output element {bad[0]} is {bad[1]}, expected {bad[2]}")
    return found


def agree_on_check(cell: str, rank: int, mine: list[str]) -> None:
    """Collective: every rank learns whether any rank saw a wrong output, and all stop together."""
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, [f"rank {rank}: {p}" for p in mine])
    wrong = [p for found in everyone for p in (found or [])]
    if wrong:
        raise OutputCheckError(f"output check failed in cell {cell}: " + "; ".join(wrong[:4]))


def _timed(dev, cell: dict, kernel, plan: TimingPlan) -> Samples:
    timer = measure_graph if cell.get("exec") == "graph" else measure
    return timer(dev, kernel, kernel.roles, plan)


def reference(dev, cell: dict, buf: bufs.ShardedBuffer, group) -> dict[str, Any]:
    """nccl-tests' method on the same buffer and group: 20 ops on one stream per event pair."""
    if cell["mode"] == "ag":
        per_op = time_back_to_back(dev, lambda: all_gather(buf.param_full, buf.param_shard, group=group))
    else:
        per_op = time_back_to_back(dev, lambda: reduce_scatter(buf.grad_shard, buf.grad_full, group=group))
    return {"reference_method": "20 back-to-back ops per event pair, one stream, median of 5",
            "reference_s": statistics.median(per_op)}


def measure_collective(dev, cfg: RunConfig, cell: dict, cell_name: str, source, buf: bufs.ShardedBuffer,
                       rank: int) -> tuple[Samples, dict[str, Any]]:
    ag_group, rs_group = source.group(cell["buffer"], "ag"), source.group(cell["buffer"], "rs")
    kernel = CollectiveKernel(dev, cell["mode"], buf, ag_group, rs_group)
    base = bufs.pattern_base(cell["buffer"], cell["source"])
    if cfg.check:
        bufs.fill_for_check(buf, rank, base)
    samples = _timed(dev, cell, kernel, plan_of(cfg))
    if cfg.check:
        agree_on_check(cell_name, rank, _problems(buf, cell["mode"], rank, base))
    extra: dict[str, Any] = {}
    if cfg.reference and cell["mode"] in ("ag", "rs") and cell.get("exec", "eager") == "eager":
        extra = reference(dev, cell, buf, ag_group if cell["mode"] == "ag" else rs_group)
    return samples, extra


def make_step_layers(cfg: RunConfig, size_bytes: int, group_ranks: dict[str, list[int]], device
                     ) -> list[dict[str, bufs.ShardedBuffer]]:
    dtype = bufs.DTYPES[cfg.dtype]
    return [{kind: bufs.make_buffer(kind, size_bytes, dtype, group_ranks[kind], device)
             for kind in cfg.buffers} for _ in range(cfg.step_layers)]


def measure_step(dev, cfg: RunConfig, cell: dict, cell_name: str, source,
                 layers: list[dict[str, bufs.ShardedBuffer]], gemm: Gemm, rank: int
                 ) -> tuple[Samples, dict[str, Any]]:
    """Time the step, then its compute alone and its communication alone; derive the measures."""
    groups = {kind: (source.group(kind, "ag"), source.group(kind, "rs")) for kind in cfg.buffers}
    plan = plan_of(cfg)
    base = {kind: bufs.pattern_base(kind, cell["source"]) for kind in cfg.buffers}
    if cfg.check:
        for layer in layers:
            for kind, buf in layer.items():
                bufs.fill_for_check(buf, rank, base[kind])
    by_variant = {}
    eager = cell.get("exec", "eager") == "eager"
    for variant in VARIANTS:
        kernel = FsdpStepKernel(dev, layers, groups, gemm, variant=variant, time_compute=eager)
        samples = _timed(dev, cell, kernel, plan)
        by_variant[variant] = (samples, kernel)
        if variant == "step" and cfg.check:
            found = [f"layer {i} {kind}: {p}" for i, layer in enumerate(layers)
                     for kind, buf in layer.items() for p in _problems(buf, "fsdp_step", rank, base[kind])]
            agree_on_check(cell_name, rank, found)
    step, step_kernel = by_variant["step"]
    calls = plan.num_samples * step.ops_per_sample
    step_s = statistics.median(step.per_iter_s)
    compute_only_s = statistics.median(by_variant["compute_only"][0].per_iter_s)
    comm_only_s = statistics.median(by_variant["comm_only"][0].per_iter_s)
    compute_in_step_s = compute_alone_s = None
    if eager:  # summed GEMM spans in the step and alone, per rank, then the slowest rank's
        compute_only, compute_kernel = by_variant["compute_only"]
        spans = torch.tensor([statistics.median(step_kernel.compute_s(calls)),
                              statistics.median(compute_kernel.compute_s(
                                  plan.num_samples * compute_only.ops_per_sample))],
                             dtype=torch.float64, device=dev.device)
        dist.all_reduce(spans, op=dist.ReduceOp.MAX)
        compute_in_step_s, compute_alone_s = spans.tolist()
    extra = {
        "layers": cfg.step_layers,
        "gemm_mnk": list(cfg.gemm_mnk),
        "compute_only_s": compute_only_s,
        "comm_only_s": comm_only_s,
        "exposed_comm_s": step_s - compute_only_s,
        "exposed_comm_fraction": (step_s - compute_only_s) / comm_only_s if comm_only_s else None,
        "compute_in_step_s": compute_in_step_s,
        "compute_alone_s": compute_alone_s,
        # The same GEMMs, timed the same way (summed event spans), with and without communication.
        "compute_slowdown": compute_in_step_s / compute_alone_s if compute_alone_s else None,
        "compute_only_data": list(by_variant["compute_only"][0].per_iter_s),
        "comm_only_data": list(by_variant["comm_only"][0].per_iter_s),
    }
    return step, extra
