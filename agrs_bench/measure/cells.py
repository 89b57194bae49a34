"""Comparisons: the cells that are sampled together, and what each cell records.

A comparison is every collective cell of one (buffer, size, exec) — ag, rs and ag_rs under every
source and NCCL options pair of the run, single_comm included — or every fsdp_step cell of one
(bucket size, exec), each step with its compute-only and comm-only variants. Its parts are timed
interleaved (timing.Sampler), so the figures that compare them (overlap efficiency, speedup,
exposed communication) are paired per round. Output checks stay per part: fill and poison, run,
verify on every rank, agree — before anything is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

import torch

from agrs_bench.analysis import measures
from agrs_bench.analysis.paired import per_round_means
from agrs_bench.config.cell import Cell
from agrs_bench.config.run_config import RunConfig
from agrs_bench.groups import ag_shares_rs_comm
from agrs_bench.groups.distributed import raise_if_any_rank
from agrs_bench.measure import buffers as bufs
from agrs_bench.measure import cell_levers, tracing
from agrs_bench.measure.kernels import all_gather, make_kernel, reduce_scatter
from agrs_bench.measure.step import VARIANTS, FsdpStepKernel, Gemm
from agrs_bench.measure.timing import PairedSamples, Part, Sampler, TimingPlan, max_over_ranks
from agrs_bench.results.measured import Measured, StepParts
from agrs_bench.vocab import STEP_MODES, size_label


class OutputCheckError(RuntimeError):
    """A collective wrote a wrong element: names the cell, the rank and the first wrong element."""


def comparison_id(cell: Cell) -> str:
    """The interleaved group a cell is sampled in (results: extra_info.comparison)."""
    head = f"{cell.mode}-" if cell.mode in STEP_MODES else ""
    return f"{head}{cell.buffer}-{size_label(cell.size_bytes)}-{cell.exec}"


def group_comparisons(cells: list[Cell]) -> list[tuple[str, list[Cell]]]:
    """The run's cells as comparisons, in order of first appearance, cells in run order."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(comparison_id(cell), []).append(cell)
    return list(groups.items())


@dataclass(frozen=True, kw_only=True)
class Context:
    """What measuring a comparison needs from the run, on this rank."""

    cfg: RunConfig
    rank: int
    world_size: int
    handles: dict[str, Any]
    """NCCL options label -> device handle (its role streams)."""
    sources: dict[tuple[str, str], Any]
    """(source, NCCL options label) -> group source."""
    group_ranks: dict[str, list[int]]
    """Buffer kind -> the ranks of this rank's group."""
    link_gbps: float | None = None
    """The slowest GPU's per-direction link rate (the link floor of ag_rs)."""

    @property
    def dev(self) -> Any:
        return next(iter(self.handles.values()))


def plan_of(cfg: RunConfig, exec_mode: str) -> TimingPlan:
    return TimingPlan(num_warmup=cfg.num_warmup, num_rounds=cfg.num_samples,
                      ops_per_sample=cfg.ops_per_sample, target_sample_s=cfg.target_sample_ms / 1e3,
                      hide_launch=cfg.hide_launch, graph=exec_mode == "graph")


def _problems(buf: bufs.ShardedBuffer, mode: str, rank: int, base: int, rs_tolerance: float = 0.0) -> list[str]:
    found = []
    if mode in ("ag", "ag_rs", "fsdp_step"):
        bad = bufs.first_mismatch(buf.param_full, bufs.expected_ag(buf, base))
        if bad:
            found.append(f"AG output element {bad[0]} is {bad[1]}, expected {bad[2]}")
    if mode in ("rs", "ag_rs", "fsdp_step"):
        expected = bufs.expected_rs(buf, rank, base)
        bad = bufs.first_mismatch(buf.grad_shard, expected, rs_tolerance)
        if bad:
            found.append(f"RS output element {bad[0]} is {bad[1]}, expected {bad[2]}")
        if mode == "fsdp_step" and buf.main_grad is not None:  # added once per step, not twice
            bad = bufs.first_mismatch(buf.main_grad, expected, rs_tolerance)
            if bad:
                found.append(f"main-gradient element {bad[0]} is {bad[1]}, expected {bad[2]} "
                             "(the reduced shard added once)")
    return found


def agree_on_check(cell: str, rank: int, mine: list[str]) -> None:
    """Collective: every rank learns whether any rank saw a wrong output, and all stop together."""
    raise_if_any_rank([f"rank {rank}: {p}" for p in mine],
                      lambda wrong: OutputCheckError(f"output check failed in cell {cell}: " + "; ".join(wrong[:4])))


def _checker(ctx: Context, cell: Cell, layers: list[dict[str, bufs.ShardedBuffer]],
             rs_scale: int | dict[str, int] = 1, rs_tolerance: float = 0.0
             ) -> Callable[[Callable[[], None]], None] | None:
    """Fill and poison the buffers of `cell`, run one sample, verify it on every rank, agree.
    `rs_scale`: the kernel's RS input scale (n under ReduceOp.AVG, so the expected sums hold)."""
    if not ctx.cfg.check:
        return None
    dev, name = ctx.handles[cell.nccl_options], cell.name

    def check(run_sample: Callable[[], None]) -> None:
        for layer in layers:
            for kind, buf in layer.items():
                scale = rs_scale[kind] if isinstance(rs_scale, dict) else rs_scale
                bufs.fill_for_check(buf, ctx.rank, bufs.pattern_base(kind, cell.source), rs_scale=scale)
        run_sample()
        dev.synchronize()
        agree_on_check(name, ctx.rank, [
            f"{'layer ' + str(i) + ' ' + kind + ': ' if len(layers) > 1 else ''}{p}"
            for i, layer in enumerate(layers) for kind, buf in layer.items()
            for p in _problems(buf, cell.mode, ctx.rank, bufs.pattern_base(kind, cell.source), rs_tolerance)])
    return check


def _reference_iteration(mode: str, buf: bufs.ShardedBuffer, group: Any) -> Callable[[list], None]:
    """nccl-tests' loop body: one op on the current stream, nothing else."""
    if mode == "ag":
        return lambda pending: all_gather(buf.param_full, buf.param_shard, group=group)
    return lambda pending: reduce_scatter(buf.grad_shard, buf.grad_full, group=group)


def _reference(ctx: Context, cell: Cell, samples: PairedSamples) -> measures.ReferenceFigures | None:
    """The reference of an ag or rs cell (None for other modes), or why it has none."""
    if cell.mode not in ("ag", "rs"):
        return None
    if not ctx.cfg.reference:
        return measures.ReferenceFigures(omitted="--no-reference")
    if cell.exec != "eager":
        return measures.ReferenceFigures(omitted="CUDA graph cell: the reference is timed eagerly, in the eager cell")
    name = "reference:" + cell.name
    device_s, host_s = samples.estimate_s[name]
    return measures.reference_figures(samples.per_iter_s[name], samples.sample_s_min(name),
                                      device_s=device_s, host_s=host_s, on_device=ctx.dev.is_cuda)


def _common(ctx: Context, cell: Cell, comparison: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"comparison": comparison, "checked": ctx.cfg.check}
    source = ctx.sources[(cell.source, cell.nccl_options)]
    kinds = ctx.cfg.buffers if cell.mode in STEP_MODES else (cell.buffer,)
    shares = {kind: ag_shares_rs_comm(source, kind) for kind in kinds}
    extra["ag_shares_rs_comm"] = any(shares.values())  # some AG ran on its RS communicator
    if len(kinds) > 1:
        extra["ag_shares_rs_comm_by_buffer"] = shares
    if ctx.link_gbps:
        extra["link_gbps_per_direction"] = ctx.link_gbps
    return extra


def measure_collectives(ctx: Context, comparison: str, cells: list[Cell],
                        held: ExitStack | None = None) -> list[Measured]:
    """ag, rs and ag_rs of one buffer and size, every source and options pair, interleaved.
    `held` keeps registered buffers (cell_levers) until the comparison ends."""
    cfg, first = ctx.cfg, cells[0]
    kind = first.buffer
    buf = bufs.make_buffer(kind, first.size_bytes, bufs.DTYPES[cfg.dtype], ctx.group_ranks[kind],
                           ctx.dev.device)
    parts, kernels, lever_info = [], {}, {}
    for cell in cells:
        dev, source = ctx.handles[cell.nccl_options], ctx.sources[(cell.source, cell.nccl_options)]
        ag_group, rs_group = source.group(kind, "ag"), source.group(kind, "rs")
        (mine,), lever_info[cell.name] = cell_levers.cell_buffers(
            cfg, cell, [{kind: buf}], {kind: (ag_group, rs_group)}, held or ExitStack(), ctx.dev.device)
        kernel = make_kernel(cell.issue, dev, cell.mode, mine[kind], ag_group, rs_group)
        kernels[cell.name] = kernel
        parts.append(Part(cell.name, dev, kernel, kernel.roles,
                          _checker(ctx, cell, [mine], rs_scale=kernel.rs_input_scale)))
        if cfg.reference and cell.mode in ("ag", "rs") and cell.exec == "eager":
            group = ag_group if cell.mode == "ag" else rs_group
            parts.append(Part("reference:" + cell.name, dev, _reference_iteration(cell.mode, buf, group), ()))
    sampler = Sampler(parts, plan_of(cfg, first.exec))
    samples = sampler.run()
    measured = []
    for cell in cells:
        name = cell.name
        trace = (tracing.overlap_info(sampler, name, name, cfg.out_dir, ctx.rank,
                                      levers=cell_levers.requested(cfg, cell))
                 if cell.mode == "ag_rs" and cfg.trace else None)
        measured.append(Measured(
            cell=cell, group_size=len(buf.group_ranks), data=samples.per_iter_s[name],
            settings={**_common(ctx, cell, comparison), **kernels[name].describe(), **lever_info[name],
                      "shard_bytes": buf.param_shard.numel() * buf.param_shard.element_size(),
                      "group_ranks": list(buf.group_ranks)},
            samples=samples.sample_figures(name), reference=_reference(ctx, cell, samples), trace=trace,
            warnings=tuple(samples.short_warnings(name))))
    return measured


def make_step_layers(cfg: RunConfig, size_bytes: int, group_ranks: dict[str, list[int]], device
                     ) -> list[dict[str, bufs.ShardedBuffer]]:
    dtype = bufs.DTYPES[cfg.dtype]
    grad_dtype = bufs.DTYPES[cfg.step_model.grad_dtype_for(cfg.dtype)]
    return [{kind: bufs.make_buffer(kind, cfg.step_bytes(kind, size_bytes), dtype, group_ranks[kind], device,
                                    grad_dtype=grad_dtype)
             for kind in cfg.buffers} for _ in range(cfg.step_layers)]


def measure_steps(ctx: Context, comparison: str, cells: list[Cell],
                  held: ExitStack | None = None) -> list[Measured]:
    """fsdp_step of one bucket size under every source: step, compute-only and comm-only of each,
    interleaved. Eager steps also time their GEMMs with events (compute slowdown)."""
    cfg, first = ctx.cfg, cells[0]
    eager = first.exec == "eager"
    layers = make_step_layers(cfg, first.size_bytes, ctx.group_ranks, ctx.dev.device)
    m, n, k = cfg.gemm_mnk
    gemm = Gemm.make(m, n, k, bufs.DTYPES[cfg.dtype], ctx.dev.device)
    parts, kernels, lever_info = [], {}, {}
    built: dict[str, Sampler] = {}  # the GEMM timers kept: the last rounds x ops-per-sample calls

    def keep_calls() -> int:
        return cfg.num_samples * max(1, built["sampler"].ops if built else 1)
    for cell in cells:
        dev, source = ctx.handles[cell.nccl_options], ctx.sources[(cell.source, cell.nccl_options)]
        groups = {kind: (source.group(kind, "ag"), source.group(kind, "rs")) for kind in cfg.buffers}
        mine, lever_info[cell.name] = cell_levers.cell_buffers(cfg, cell, layers, groups, held or ExitStack(),
                                                                    ctx.dev.device)
        for variant in VARIANTS:
            kernel = FsdpStepKernel(dev, mine, groups, gemm, variant=variant, time_compute=eager,
                                    model=cfg.step_model, issue=cell.issue,
                                    keep_calls=keep_calls, dp_size=len(cfg.layout.rank_lists("dp_cp")[0]))
            kernels[(cell.name, variant)] = kernel
            check = (_checker(ctx, cell, mine, rs_scale=kernel.rs_input_scale, rs_tolerance=kernel.rs_tolerance)
                     if variant == "step" else None)
            parts.append(Part(f"{variant}:{cell.name}", dev, kernel, kernel.roles, check))
    built["sampler"] = Sampler(parts, plan_of(cfg, first.exec))
    samples = built["sampler"].run()
    rounds, ops = cfg.num_samples, samples.ops_per_sample
    spans: dict[tuple[str, str], list[float]] = {}
    if eager:  # summed GEMM spans per call, the mean per round, then the slowest rank's
        mine = []
        for cell in cells:
            for variant in ("step", "compute_only"):
                values = per_round_means(kernels[(cell.name, variant)].compute_s(rounds * ops), rounds)
                spans[(cell.name, variant)] = values
                mine.extend(values)
        flat = max_over_ranks(mine, ctx.dev.device)
        for index, key in enumerate(spans):
            spans[key] = flat[index * rounds:(index + 1) * rounds]
    measured = []
    for cell in cells:
        name = cell.name
        warnings = samples.short_warnings(f"step:{name}")
        variant_min = {v: samples.sample_s_min(f"{v}:{name}") for v in VARIANTS}
        shortest_s = min(variant_min.values())  # every part of the cell counts
        for variant in ("compute_only", "comm_only"):
            if samples.short(f"{variant}:{name}"):
                warnings.append(f"{variant} samples fell short of the {samples.target_sample_s * 1e3:g} ms "
                                f"budget: shortest {variant_min[variant] * 1e3:.3g} ms")
        if not eager and "megatron_fsdp" in cfg.issues:
            warnings.append("issued on role streams, not megatron_fsdp: a CUDA graph cannot hold Megatron-FSDP's "
                            "async AG work-handle wait as we capture it (untested); its eager cell has that path")
        measured.append(Measured(
            cell=cell, group_size=len(ctx.group_ranks[cfg.buffers[0]]), data=samples.per_iter_s[f"step:{name}"],
            settings={**_common(ctx, cell, comparison), **lever_info[name], **kernels[(name, "step")].describe(),
                      "layers": cfg.step_layers, "gemm_mnk": list(cfg.gemm_mnk),
                      "group_sizes": {kind: len(r) for kind, r in ctx.group_ranks.items()},
                      "group_ranks": dict(ctx.group_ranks)},
            samples=replace(samples.sample_figures(f"step:{name}"), sample_s_min=shortest_s),
            parts=StepParts(compute_only=samples.per_iter_s[f"compute_only:{name}"],
                            comm_only=samples.per_iter_s[f"comm_only:{name}"],
                            compute_in_step=tuple(spans[(name, "step")]) if eager else None,
                            compute_alone=tuple(spans[(name, "compute_only")]) if eager else None),
            warnings=tuple(warnings)))
    return measured


def measure_comparison(ctx: Context, comparison: str, cells: list[Cell]) -> list[Measured]:
    """Every cell of one comparison, sampled together; buffers live only while it runs."""
    try:
        with ExitStack() as held:  # registered buffers: deregistered before their pools go
            if cells[0].mode == "fsdp_step":
                return measure_steps(ctx, comparison, cells, held)
            if cells[0].mode == "mfsdp_step":  # imported here: it needs the optional megatron-fsdp
                from agrs_bench.measure import megatron_fsdp_step
                return megatron_fsdp_step.measure(ctx, comparison, cells)
            return measure_collectives(ctx, comparison, cells, held)
    finally:
        if ctx.dev.is_cuda:
            torch.cuda.empty_cache()  # one comparison's buffers at a time on the device
