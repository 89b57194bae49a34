"""The measuring loop on every rank: groups built once, then every cell in order, each bounded
by the watchdog, each finished cell handed on at once (rank 0 appends it to cells.jsonl)."""

from __future__ import annotations

import sys
from typing import Any

import torch.distributed as dist

from agrs_bench.config.cell import Cell
from agrs_bench.config.nccl_options import pair_label
from agrs_bench.config.run_config import RunConfig
from agrs_bench.groups import RS_GROUP_KIND, build_source, distributed, megatron_core
from agrs_bench.groups.membership import check_membership
from agrs_bench.measure import cells as cellmod
from agrs_bench.measure import telemetry
from agrs_bench.measure.device import make_handle
from agrs_bench.measure.watchdog import Watchdog, margin_s
from agrs_bench.results import files as results
from agrs_bench.results import schema
from agrs_bench.vocab import STEP_MODES


def say(rank: int, text: str) -> None:
    """Print a progress line once for the run: on rank 0 only."""
    if rank == 0:
        print(text, flush=True)


class CellFailed(RuntimeError):
    """A cell stopped with an error (a peer died, a collective timed out): names the cell."""


def groups_span_nodes(cfg: RunConfig, nodes: list[str]) -> dict[str, bool]:
    """Per buffer kind: does any of its groups (in the whole layout) hold ranks of several nodes?"""
    return {kind: any(len({nodes[r] for r in ranks}) > 1 for ranks in cfg.layout.rank_lists(RS_GROUP_KIND[kind]))
            for kind in cfg.buffers}


def context(cfg: RunConfig, info: distributed.DistInfo, fixtures: Fixtures,
            devices: list[dict] | None = None) -> cellmod.Context:
    """What every comparison of the run shares, on this rank."""
    # The slowest GPU's per-direction link rate bounds every group: the link floor of ag_rs.
    link_gbps = min((d.get("nvml", {}).get("link_gbps_per_direction") or 0 for d in devices or []),
                    default=0) or None
    return cellmod.Context(cfg=cfg, rank=info.rank, world_size=info.world_size, handles=fixtures.handles,
                           sources=fixtures.sources, link_gbps=link_gbps,
                           group_ranks={kind: cfg.layout.group_of(RS_GROUP_KIND[kind], info.rank)
                                        for kind in cfg.buffers})


def benchmarks_of(ctx: cellmod.Context, measured: list[cellmod.Measured], *, spans: dict[str, bool] | None = None,
                  telemetry_record: dict[str, Any] | None = None) -> list[dict]:
    """The finished cells of a comparison as pytest-benchmark benchmarks; `spans`: per buffer kind,
    whether its groups span nodes; `telemetry_record`: the GPUs' clocks while it ran, every rank's
    (the run knows both; the pytest-benchmark suite neither)."""
    cfg, dev = ctx.cfg, ctx.dev
    options = {"timer": "cuda_event" if dev.is_cuda else "perf_counter", "warmup": cfg.num_warmup,
               "min_rounds": cfg.num_samples, "disable_gc": False, "max_time": 0, "min_time": 0}

    def kinds(cell: Cell) -> tuple[str, ...]:
        return cfg.buffers if cell.mode in STEP_MODES else (cell.buffer,)
    return [results.cell_benchmark(
        m, world_size=ctx.world_size, options=options, telemetry=telemetry_record,
        spans_nodes=any(spans[kind] for kind in kinds(m.cell)) if spans is not None else None,
        warnings=telemetry.throttle_warnings(telemetry_record or {})) for m in measured]


def measure_all(cfg: RunConfig, info: distributed.DistInfo, fixtures: Fixtures, finished: list,
                *, skip: set, nodes: list[str], watchdog: Watchdog, devices: list[dict]) -> None:
    """Every comparison not wholly in `skip`, in order; its cells go to `finished` and (rank 0)
    to cells.jsonl as soon as the comparison ends. A comparison is the unit of resuming: one
    with a cell missing is measured again whole, so its figures stay paired. A comparison that
    fails raises CellFailed naming it."""
    rank = info.rank
    # Cells of a source the run does not time (megatron_core with mismatched groups) are left out.
    todo = [c for c in cfg.cells() if (c.source, c.nccl_options) in fixtures.sources]
    comparisons = cellmod.group_comparisons(todo)
    budget_s = cfg.timeout_s + margin_s(cfg.timeout_s, cfg.backend)
    spans = groups_span_nodes(cfg, nodes)
    uuid = devices[rank].get("uuid") if cfg.telemetry else None
    ctx = context(cfg, info, fixtures, devices)
    index = 0
    for comparison, cells in comparisons:
        first, index = index + 1, index + len(cells)
        keys = {c.key for c in cells}
        if keys <= skip:
            continue
        finished[:] = [b for b in finished if schema.cell_key(b["params"]) not in keys]
        names = [c.name for c in cells]
        where = f"comparison {comparison} (cells {first}-{index}/{len(todo)}: {', '.join(names)})"
        watchdog.arm(where, budget_s)
        try:
            with telemetry.GpuMonitor(uuid if ctx.dev.is_cuda else None) as monitor:
                measured = cellmod.measure_comparison(ctx, comparison, cells)
            every_rank: list[Any] = [None] * info.world_size
            dist.all_gather_object(every_rank, monitor.summary())
            benches = benchmarks_of(ctx, measured, spans=spans, telemetry_record=telemetry.combine(every_rank))
        except cellmod.OutputCheckError:
            raise  # names the cell, the rank and the first wrong element already
        except Exception as err:
            detail = " ".join(str(err).split())
            raise CellFailed(f"{where} failed: {type(err).__name__}: {detail}") from err
        watchdog.disarm()
        for offset, bench in enumerate(benches):
            finished.append(bench)
            if rank == 0:
                results.append_cell(cfg.out_dir, bench)
                _progress(first + offset, len(todo), names[offset], bench)


def _progress(index: int, total: int, name: str, bench: dict) -> None:
    extra = bench["extra_info"]
    if "busbw_gbps" in extra:
        tail = f"busbw {extra['busbw_gbps']:7.1f} GB/s"
        if "busbw_vs_reference" in extra:
            tail += f" ({extra['busbw_vs_reference']:.0%} of reference)"
    else:
        tail = f"exposed {extra['exposed_comm_s'] * 1e3:.3f} ms"
    short = "  SHORT SAMPLES" if extra.get("sample_short") else ""
    print(f"[{index}/{total}] {name:<48} median {bench['stats']['median'] * 1e3:9.4f} ms  {tail}  "
          f"({extra['ops_per_sample']} ops/sample){short}", flush=True)


class Fixtures:
    """What cells share: device handles and group sources per NCCL options pair, created once,
    collectively, in the same order on every rank; then the membership checks.

    Our sources' AG groups must hold the ranks of their RS groups (MembershipError otherwise).
    megatron_core's groups are megatron-core's: when its AG groups differ from its DP groups
    (NVIDIA/Megatron-LM#4261) the finding is kept in `megatron_mismatch`, that source leaves
    `sources` (not timed) and the run goes on with the others."""

    def __init__(self, cfg: RunConfig, info: distributed.DistInfo) -> None:
        self.handles: dict[str, Any] = {}
        self.sources: dict[tuple[str, str], Any] = {}
        self.megatron: Any = None
        self.megatron_mismatch: list[dict[str, Any]] = []
        for name in cfg.sources:
            for ag, rs in cfg.option_pairs(name):
                label = pair_label(ag, rs)
                options = {"ag": ag, "rs": rs}
                if label not in self.handles:
                    high = tuple(role for role, opt in options.items() if opt.high_priority)
                    self.handles[label] = make_handle(info.backend, info.local_rank, high)
                make_group = distributed.group_maker(
                    cfg.timeout_s, lambda role, o=options: o[role].to_process_group_options())
                self.sources[(name, label)] = build_source(
                    name, cfg.layout, info.rank, make_group=make_group, timeout_s=cfg.timeout_s)
        ours = [s for (name, _), s in self.sources.items() if name != "megatron_core"]
        check_membership(ours, cfg.layout, info.rank)
        for (name, label), source in list(self.sources.items()):
            if name == "megatron_core":
                self.megatron = source
                self.megatron_mismatch = megatron_core.mismatches(source, cfg.layout, info.rank)
                if self.megatron_mismatch:
                    del self.sources[(name, label)]
        if info.rank == 0:
            for finding in self.megatron_mismatch:
                print(f"agrs_bench: MEGATRON MISMATCH: {megatron_core.describe_mismatch(finding)}",
                      file=sys.stderr, flush=True)

    @property
    def untimed_sources(self) -> tuple[str, ...]:
        """Sources the run was asked for but does not time (megatron_core on a mismatch)."""
        return ("megatron_core",) if self.megatron_mismatch else ()

    def close(self) -> None:
        """Collective, at the end of a run that went well: megatron-core's groups torn down."""
        if self.megatron is not None:
            self.megatron.close()
            self.megatron = None
