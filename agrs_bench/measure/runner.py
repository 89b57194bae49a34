"""The measuring loop on every rank: groups built once, then every cell in order, each bounded
by the watchdog, each finished cell handed on at once (rank 0 appends it to cells.jsonl)."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from agrs_bench.config.nccl_options import pair_label
from agrs_bench.config.run_config import RunConfig
from agrs_bench.groups import RS_GROUP_KIND, build_source, distributed
from agrs_bench.groups.membership import check_membership
from agrs_bench.measure import buffers as bufs
from agrs_bench.measure import cells as cellmod
from agrs_bench.measure import faults as testhooks
from agrs_bench.measure import telemetry
from agrs_bench.measure.device import make_handle
from agrs_bench.measure.step import Gemm
from agrs_bench.measure.watchdog import Watchdog, margin_s
from agrs_bench.results import files as results
from agrs_bench.results import schema


def _say(rank: int, text: str) -> None:
    if rank == 0:
        print(text, flush=True)



class CellFailed(RuntimeError):
    """A cell stopped with an error (a peer died, a collective timed out): names the cell."""



def groups_span_nodes(cfg: RunConfig, nodes: list[str]) -> dict[str, bool]:
    """Per buffer kind: does any of its groups (in the whole layout) hold ranks of several nodes?"""
    return {kind: any(len({nodes[r] for r in ranks}) > 1 for ranks in cfg.layout.rank_lists(RS_GROUP_KIND[kind]))
            for kind in cfg.buffers}


def measure_all(cfg: RunConfig, info: distributed.DistInfo, fixtures: "Fixtures", finished: list,
                *, skip: set, nodes: list[str], watchdog: Watchdog, devices: list[dict]) -> None:
    """Every cell not in `skip`, in order; each finished cell goes to `finished` and (rank 0) to
    cells.jsonl at once. A cell that fails raises CellFailed naming it."""
    rank, layout = info.rank, cfg.layout
    group_ranks = {kind: layout.group_of(RS_GROUP_KIND[kind], rank) for kind in cfg.buffers}
    todo = cfg.cells()
    budget_s = cfg.timeout_s + margin_s(cfg.timeout_s, cfg.backend)
    allocated: dict[tuple, Any] = {}
    spans = groups_span_nodes(cfg, nodes)
    uuid = devices[rank].get("uuid") if cfg.telemetry else None
    # The slowest GPU's per-direction link rate bounds every group: the link floor of ag_rs.
    link_gbps = min((d["nvml"].get("link_gbps_per_direction") or 0 for d in devices), default=0) or None
    for index, cell in enumerate(todo, start=1):
        if schema.cell_key(cell) in skip:
            continue
        name = schema.cell_id(dict(cell, world_size=info.world_size))
        testhooks.maybe_signal_self(rank, index)
        watchdog.arm(f"cell {name} ({index}/{len(todo)})", budget_s)
        dev = fixtures.handles[cell["nccl_options"]]
        try:
            with telemetry.CellSampler(uuid if dev.is_cuda else None) as sampler:
                bench = _measure_cell(cfg, info, dev, fixtures.sources[(cell["source"], cell["nccl_options"])],
                                      cell, name, group_ranks, allocated, link_gbps)
            every_rank: list[Any] = [None] * info.world_size
            dist.all_gather_object(every_rank, sampler.summary())
        except cellmod.OutputCheckError:
            raise  # names the cell, the rank and the first wrong element already
        except Exception as err:
            detail = " ".join(str(err).split())
            raise CellFailed(f"cell {name} ({index}/{len(todo)}) failed: {type(err).__name__}: {detail}") \
                from err
        watchdog.disarm()
        kinds = cfg.buffers if cell["mode"] == "fsdp_step" else (cell["buffer"],)
        bench["extra_info"]["spans_nodes"] = any(spans[kind] for kind in kinds)
        bench["extra_info"]["telemetry"] = record = telemetry.combine(every_rank)
        if record.get("throttled"):
            bench["extra_info"].setdefault("warnings", []).append(
                f"GPU clocks throttled during this cell (SM clock down to {record['sm_clock_mhz_min']} MHz; "
                + ", ".join(record["clock_event_reasons"]) + ")")
        finished.append(bench)
        if rank == 0:
            results.append_cell(cfg.out_dir, bench)
            _progress(index, len(todo), name, bench)


def _progress(index: int, total: int, name: str, bench: dict) -> None:
    extra = bench["extra_info"]
    if "busbw_gbps" in extra:
        tail = f"busbw {extra['busbw_gbps']:7.1f} GB/s"
        if "busbw_vs_reference" in extra:
            tail += f" ({extra['busbw_vs_reference']:.0%} of reference)"
    else:
        tail = f"exposed {extra['exposed_comm_s'] * 1e3:.3f} ms"
    print(f"[{index}/{total}] {name:<48} median {bench['stats']['median'] * 1e3:9.4f} ms  {tail}  "
          f"({extra['ops_per_sample']} ops/sample)", flush=True)


def _measure_cell(cfg: RunConfig, info: distributed.DistInfo, dev, source, cell: dict, name: str,
                  group_ranks: dict[str, list[int]], allocated: dict[tuple, Any],
                  link_gbps: float | None) -> dict:
    """Measure one cell; `allocated` keeps the buffers of the current size for its next cells."""
    rank = info.rank
    params = dict(cell, world_size=info.world_size)
    key = (cell["mode"] == "fsdp_step", cell["buffer"], cell["size_bytes"])
    if key not in allocated:
        allocated.clear()  # one size at a time on the device
        if dev.is_cuda:
            torch.cuda.empty_cache()
        if cell["mode"] == "fsdp_step":
            m, n, k = cfg.gemm_mnk
            allocated[key] = (cellmod.make_step_layers(cfg, cell["size_bytes"], group_ranks, dev.device),
                               Gemm.make(m, n, k, bufs.DTYPES[cfg.dtype], dev.device))
        else:
            allocated[key] = bufs.make_buffer(cell["buffer"], cell["size_bytes"], bufs.DTYPES[cfg.dtype],
                                               group_ranks[cell["buffer"]], dev.device)
    if cell["mode"] == "fsdp_step":
        layers, gemm = allocated[key]
        samples, extra = cellmod.measure_step(dev, cfg, cell, name, source, layers, gemm, rank)
        params["group_size"] = len(group_ranks[cfg.buffers[0]])
        extra["group_sizes"] = {kind: len(r) for kind, r in group_ranks.items()}
        extra["group_ranks"] = dict(group_ranks)
    else:
        buf = allocated[key]
        samples, extra = cellmod.measure_collective(dev, cfg, cell, name, source, buf, rank)
        params["group_size"] = len(buf.group_ranks)
        extra["shard_bytes"] = buf.param_shard.numel() * buf.param_shard.element_size()
        extra["group_ranks"] = buf.group_ranks
    extra["checked"] = cfg.check
    if link_gbps:
        extra["link_gbps_per_direction"] = link_gbps
    options = {"timer": "cuda_event" if dev.is_cuda else "perf_counter", "warmup": cfg.num_warmup,
               "min_rounds": cfg.num_samples, "disable_gc": False, "max_time": 0, "min_time": 0}
    return results.make_benchmark(params, samples.per_iter_s, samples.ops_per_sample, extra, options)



class Fixtures:
    """What cells share: device handles and group sources per NCCL options pair, created once,
    collectively, in the same order on every rank; then the membership check."""

    def __init__(self, cfg: RunConfig, info: distributed.DistInfo) -> None:
        self.handles: dict[str, Any] = {}
        self.sources: dict[tuple[str, str], Any] = {}
        corrupt = testhooks.corrupt_ag_layout(cfg.layout)
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
                    name, cfg.layout, info.rank, make_group=make_group,
                    ag_layout=corrupt if name == "pg_collection" else None)
        if corrupt is None:
            check_membership(list(self.sources.values()), cfg.layout, info.rank)
        else:
            _say(info.rank, f"agrs_bench: TEST HOOK {testhooks.CORRUPT_AG_VAR}: pg_collection AG groups "
                            f"from order {corrupt.order!r}, membership check skipped")


