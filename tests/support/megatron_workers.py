"""gloo workers that build groups with the installed megatron-core (module level, so forked
processes can import them). Each worker loops over several layouts in one set of processes:
importing megatron-core costs seconds per process, and the CI machine has few cores."""

from __future__ import annotations

import torch
import torch.distributed as dist

from agrs_bench.config.levers import LOW_CONTENTION
from agrs_bench.groups import BUFFERS, RS_GROUP_KIND, ag_shares_rs_comm, build_source
from agrs_bench.groups.distributed import group_maker
from agrs_bench.measure import buffers as bufs
from agrs_bench.measure.device import CpuHandle
from agrs_bench.measure.kernels import make_kernel
from agrs_bench.topology.layout import Layout
from agrs_bench.vocab import ISSUE_STYLES

# The styles gloo can run: low_contention is CUDA-only symmetric memory (refused on gloo).
GLOO_ISSUE_STYLES = tuple(style for style in ISSUE_STYLES if style != LOW_CONTENTION)


def _outputs_ok(source, name: str, kind: str, ranks: list[int], rank: int, issue: str) -> bool:
    """One ag_rs iteration in `issue` style; its outputs against an independent expectation."""
    buf = bufs.make_buffer(kind, 4096 + 6, torch.bfloat16, ranks, "cpu")
    base = bufs.pattern_base(kind, name)
    dev = CpuHandle()
    kernel = make_kernel(issue, dev, "ag_rs", buf, source.group(kind, "ag"), source.group(kind, "rs"))
    bufs.fill_for_check(buf, rank, base, rs_scale=kernel.rs_input_scale)
    pending: list = []
    kernel(pending)
    dev.join(pending)
    want_ag = torch.cat([bufs.ag_pattern(r, buf.shard_numel, base, torch.bfloat16, "cpu") for r in ranks])
    pos = ranks.index(rank)
    want_rs = sum(bufs.rs_pattern(r, buf.shard_numel * len(ranks), base, torch.float32, "cpu")
                  [pos * buf.shard_numel:(pos + 1) * buf.shard_numel] for r in ranks)
    return bool(torch.equal(buf.param_full, want_ag)) and bool(torch.equal(buf.grad_shard.float(), want_rs))


def megatron_and_ours(rank: int, world: int, layouts: list[dict], ours: tuple[str, ...]) -> list[dict]:
    """Per layout: this rank's AG/RS rank lists and sharing of megatron_core and of `ours`, and
    whether an ag_rs in every issue style gave correct outputs on each of them."""
    from agrs_bench.groups import megatron_core

    seen = []
    for layout_kwargs in layouts:
        layout = Layout(world_size=world, **layout_kwargs)
        make_group = group_maker(60.0)
        sources = {"megatron_core": build_source("megatron_core", layout, rank, make_group=make_group,
                                                 timeout_s=60.0)}
        for name in ours:
            sources[name] = build_source(name, layout, rank, make_group=make_group)
        row: dict = {"layout": layout_kwargs, "api": sources["megatron_core"].api,
                     "version": sources["megatron_core"].version}
        for name, source in sources.items():
            for kind in BUFFERS:
                ranks = layout.group_of(RS_GROUP_KIND[kind], rank)
                row[(name, kind)] = {
                    "ag_ranks": dist.get_process_group_ranks(source.group(kind, "ag")),
                    "rs_ranks": dist.get_process_group_ranks(source.group(kind, "rs")),
                    "shares": ag_shares_rs_comm(source, kind),
                    "layout_ranks": ranks,
                    "outputs_ok": {issue: _outputs_ok(source, name, kind, ranks, rank, issue)
                                   for issue in GLOO_ISSUE_STYLES
                                   if dist.get_process_group_ranks(source.group(kind, "ag"))
                                   == dist.get_process_group_ranks(source.group(kind, "rs"))},
                }
        row["mismatches"] = megatron_core.mismatches(sources["megatron_core"], layout, rank)
        row["megatron_groups_left"] = _close_and_count_left(sources["megatron_core"])
        seen.append(row)
    return seen


def _close_and_count_left(source) -> int:
    """Tear megatron-core down; how many of the groups it made are still registered in torch."""
    from megatron.core import parallel_state as ps

    made = [g for g in (ps._global_process_group_list or []) if g is not None]
    source.close()
    assert not ps.is_initialized()
    pg_map = dist.distributed_c10d._world.pg_map
    return sum(pg_map.get(g) is not None for g in made)


def megatron_with_0192_ag_groups(rank: int, world: int, layout_kwargs: dict) -> list[dict]:
    """megatron_core built by the installed megatron-core, its AG groups then rebuilt the way
    0.19.2's create_all_gather_groups does (tests/support/fault_entry.py): what the check finds."""
    from agrs_bench.groups import megatron_core
    from tests.support.fault_entry import megatron_ag_layout, rebuild_megatron_ag_groups

    layout = Layout(world_size=world, **layout_kwargs)
    source = build_source("megatron_core", layout, rank, make_group=group_maker(60.0), timeout_s=60.0)
    rebuild_megatron_ag_groups(source, megatron_ag_layout(layout), rank, 60.0)
    found = megatron_core.mismatches(source, layout, rank)
    assert _close_and_count_left(source) == 0
    return found


def megatron_and_ours_then_0192(rank: int, world: int, layouts: list[dict], ours: tuple[str, ...],
                                mismatch_layout: dict) -> tuple[list[dict], list[dict]]:
    """Both of the above in one set of processes (one megatron-core import per rank)."""
    return (megatron_and_ours(rank, world, layouts, ours),
            megatron_with_0192_ag_groups(rank, world, mismatch_layout))
