"""Worker functions for gloo tests (module level, so that the ranks forked by
tests/support/gloo_harness.py can unpickle them)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from agrs_bench.groups import BUFFERS, RS_GROUP_KIND, build_source
from agrs_bench.groups.distributed import group_maker
from agrs_bench.groups.membership import MembershipError, check_membership
from agrs_bench.measure import buffers as bufs
from agrs_bench.measure.device import CpuHandle
from agrs_bench.measure.kernels import CollectiveKernel
from agrs_bench.topology.layout import Layout
from tests.support.fault_entry import corrupting_group_maker


def _sources(layout: Layout, rank: int, names, ag_layout=None):
    make_group = group_maker(60.0)
    if ag_layout is not None:  # AG groups from another layout, as the fault entry builds them
        make_group = corrupting_group_maker(make_group, ag_layout)
    return {name: build_source(name, layout, rank, make_group=make_group)
            for name in names}


def collectives_per_source(rank: int, world: int, layout_kwargs: dict, size_bytes: int, dtype: str):
    """Run ag_rs under every source and buffer; return what each rank saw."""
    layout = Layout(world_size=world, **layout_kwargs)
    sources = _sources(layout, rank, ("single_comm", "global_state", "pg_collection"))
    check_membership(list(sources.values()), layout, rank)
    dev = CpuHandle()
    report = {}
    for name, source in sources.items():
        for kind in BUFFERS:
            ranks = layout.group_of(RS_GROUP_KIND[kind], rank)
            buf = bufs.make_buffer(kind, size_bytes, bufs.DTYPES[dtype], ranks, "cpu")
            base = bufs.pattern_base(kind, name)
            bufs.fill_for_check(buf, rank, base)
            pending = []
            CollectiveKernel(dev, "ag_rs", buf, source.group(kind, "ag"), source.group(kind, "rs"))(pending)
            dev.join(pending)
            # Independent expectation: concatenation of every member's shard, sum of every member's input.
            want_ag = torch.cat([bufs.ag_pattern(r, buf.shard_numel, base, buf.param_shard.dtype, "cpu")
                                 for r in ranks])
            full = [bufs.rs_pattern(r, buf.shard_numel * len(ranks), base, torch.float32, "cpu") for r in ranks]
            pos = ranks.index(rank)
            want_rs = sum(f[pos * buf.shard_numel:(pos + 1) * buf.shard_numel] for f in full)
            report[(name, kind)] = {
                "ag_ok": bool(torch.equal(buf.param_full, want_ag)),
                "rs_ok": bool(torch.equal(buf.grad_shard.float(), want_rs)),
                "ag_ranks": dist.get_process_group_ranks(source.group(kind, "ag")),
                "rs_ranks": dist.get_process_group_ranks(source.group(kind, "rs")),
                "same_group": source.group(kind, "ag") is source.group(kind, "rs"),
            }
    return report


def membership_with_ag_layout(rank: int, world: int, layout_kwargs: dict, ag_layout_kwargs: dict,
                              names: tuple[str, ...]) -> dict[str, str | None]:
    """Per source: build its AG groups from another layout (the upstream bug), then check it
    alone; the check's error or None. Several sources share one set of processes."""
    layout = Layout(world_size=world, **layout_kwargs)
    ag_layout = Layout(world_size=world, **ag_layout_kwargs)
    found: dict[str, str | None] = {}
    for name, source in _sources(layout, rank, names, ag_layout=ag_layout).items():
        try:
            check_membership([source], layout, rank)
            found[name] = None
        except MembershipError as err:
            found[name] = str(err)
    return found
