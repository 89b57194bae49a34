"""Before anything is timed: every AG group must hold exactly the ranks of its RS group."""

from __future__ import annotations

import torch.distributed as dist

from agrs_bench.groups import BUFFERS, RS_GROUP_KIND, GroupSource
from agrs_bench.groups.distributed import raise_if_any_rank
from agrs_bench.topology.layout import Layout


class MembershipError(RuntimeError):
    """An AG group whose members differ from its RS group (or from the layout)."""


def membership_problems(sources: list[GroupSource], layout: Layout, rank: int) -> list[str]:
    """What is wrong on this rank, one message per (source, buffer); empty when all is well."""
    problems = []
    for source in sources:
        for buffer in BUFFERS:
            expected = layout.group_of(RS_GROUP_KIND[buffer], rank)
            rs_ranks = sorted(dist.get_process_group_ranks(source.group(buffer, "rs")))
            ag_ranks = sorted(dist.get_process_group_ranks(source.group(buffer, "ag")))
            if ag_ranks != rs_ranks or rs_ranks != expected:
                problems.append(
                    f"rank {rank}: source {source.name} buffer {buffer}: AG group ranks {ag_ranks} "
                    f"!= RS group ranks {rs_ranks} (layout {RS_GROUP_KIND[buffer]} group {expected})")
    return problems


def check_membership(sources: list[GroupSource], layout: Layout, rank: int) -> None:
    """Collective: every rank checks its own groups, then all ranks raise if any rank failed."""
    raise_if_any_rank(membership_problems(sources, layout, rank),
                      lambda problems: MembershipError("; ".join(problems)))
