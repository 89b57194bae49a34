"""`pg_collection`: Megatron-LM PR #3249. The groups travel in an explicitly passed
ProcessGroupCollection with `dp_cp_ag` and, new, `expt_dp_ag`; an FSDPDistributedIndex picks the
group per parameter kind. No globals.

As in Megatron (`create_all_gather_groups(for_expert_parallelism=ep > 1)`, whose body creates the
expert AG group only `if for_expert_parallelism and ep_size > 1`), `expt_dp_ag` exists only when
ep > 1; otherwise it is None and expert AG falls back to the expert-DP (RS) communicator, as
Megatron-FSDP's buffer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agrs_bench.topology.layout import Layout


@dataclass(frozen=True, kw_only=True)
class ProcessGroupCollection:
    """The data-parallel slice of Megatron's ProcessGroupCollection."""

    dp_cp: Any
    """Dense data-parallel (with context-parallel) group: reduce-scatter of dense gradients."""
    dp_cp_ag: Any = None
    """Same ranks as dp_cp, own communicator: all-gather of dense parameters."""
    expt_dp: Any
    """Expert data-parallel group: reduce-scatter of expert gradients."""
    expt_dp_ag: Any = None
    """Same ranks as expt_dp, own communicator: all-gather of expert parameters (None when ep = 1)."""


class FSDPDistributedIndex:
    """In the role of Megatron-FSDP's FSDPDistributedIndex: the collection is passed in, not read."""

    def __init__(self, pg_collection: ProcessGroupCollection) -> None:
        self.fsdp_group = pg_collection.dp_cp
        self.fsdp_group_ag = pg_collection.dp_cp_ag
        self.expt_fsdp_group = pg_collection.expt_dp
        self.expt_fsdp_group_ag = pg_collection.expt_dp_ag

    def get_fsdp_group(self, is_expert_param: bool = False, independent_all_gather: bool = False) -> Any:
        if is_expert_param:
            if independent_all_gather and self.expt_fsdp_group_ag is not None:
                return self.expt_fsdp_group_ag
            return self.expt_fsdp_group
        if independent_all_gather and self.fsdp_group_ag is not None:
            return self.fsdp_group_ag
        return self.fsdp_group


class PgCollectionSource:
    name = "pg_collection"

    def __init__(self, pg_collection: ProcessGroupCollection) -> None:
        self.index = FSDPDistributedIndex(pg_collection)

    def group(self, buffer: str, op: str) -> Any:
        return self.index.get_fsdp_group(is_expert_param=(buffer == "expert"),
                                         independent_all_gather=(op == "ag"))


def build(layout: Layout, rank: int, make_group) -> PgCollectionSource:
    dp_cp = make_group(layout.dense("dp_cp"), rank, "rs", "pg_collection/dp_cp")
    dp_cp_ag = make_group(layout.dense("dp_cp"), rank, "ag", "pg_collection/dp_cp_ag")
    expt_dp = make_group(layout.expert("expt_dp"), rank, "rs", "pg_collection/expt_dp")
    expt_dp_ag = None
    if layout.ep > 1:  # Megatron: for_expert_parallelism = expert_model_parallel_size > 1
        expt_dp_ag = make_group(layout.expert("expt_dp"), rank, "ag", "pg_collection/expt_dp_ag")
    return PgCollectionSource(ProcessGroupCollection(
        dp_cp=dp_cp, dp_cp_ag=dp_cp_ag, expt_dp=expt_dp, expt_dp_ag=expt_dp_ag))
