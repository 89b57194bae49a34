"""`global_state`: Megatron-LM's legacy design (PR #2663), reproduced on purpose.

The groups live in module globals set by `initialize_model_parallel()` and are read through
`has_separate_all_gather_group()` and `get_data_parallel_group(...)`. There is no expert AG group:
expert AG and RS share the expert-DP communicator. The AG group is created in the same loop as
dp_cp and with dp_cp's options (`get_nccl_options("dp_cp", ...)` in PR #2663 and megatron-core
0.16.1), so it takes the RS role's NCCL options here. This module is the only global state in the
package; nothing else may import its globals.
"""

from __future__ import annotations

from typing import Any

from agrs_bench.topology.layout import Layout

_DATA_PARALLEL_GROUP_WITH_CP: Any = None
_DATA_PARALLEL_GROUP_WITH_CP_AG: Any = None
_EXPERT_DATA_PARALLEL_GROUP: Any = None


def initialize_model_parallel(layout: Layout, rank: int, make_group, *,
                              create_all_gather_group: bool) -> None:
    """Create the DP groups (and the dense AG group) into the module globals."""
    global _DATA_PARALLEL_GROUP_WITH_CP, _DATA_PARALLEL_GROUP_WITH_CP_AG, _EXPERT_DATA_PARALLEL_GROUP
    _DATA_PARALLEL_GROUP_WITH_CP = make_group(layout.dense("dp_cp"), rank, "rs", "global_state/dp_cp")
    _DATA_PARALLEL_GROUP_WITH_CP_AG = None
    if create_all_gather_group:
        # role "rs": Megatron gives this group the dp_cp options, not options of its own.
        _DATA_PARALLEL_GROUP_WITH_CP_AG = make_group(
            layout.dense("dp_cp"), rank, "rs", "global_state/dp_cp_ag")
    _EXPERT_DATA_PARALLEL_GROUP = make_group(layout.expert("expt_dp"), rank, "rs", "global_state/expt_dp")


def has_separate_all_gather_group() -> bool:
    """Megatron-FSDP 0.16.1 asks this before it takes the AG group (FSDPDistributedIndex), and
    falls back to dp_cp when it is False, i.e. when initialize_model_parallel ran with
    create_all_gather_group=False. The benchmark always asks for the group, but the source keeps
    the call so that it reads the globals along the same path Megatron-FSDP does."""
    return _DATA_PARALLEL_GROUP_WITH_CP_AG is not None


def get_data_parallel_group(with_context_parallel: bool = False, independent_all_gather: bool = False) -> Any:
    if not with_context_parallel:
        raise NotImplementedError("agrs_bench shards over dp_cp only, as Megatron-FSDP does")
    if independent_all_gather:
        if _DATA_PARALLEL_GROUP_WITH_CP_AG is None:
            raise RuntimeError("the separate all-gather group was not created")
        return _DATA_PARALLEL_GROUP_WITH_CP_AG
    if _DATA_PARALLEL_GROUP_WITH_CP is None:
        raise RuntimeError("data parallel group is not initialized")
    return _DATA_PARALLEL_GROUP_WITH_CP


def get_expert_data_parallel_group() -> Any:
    if _EXPERT_DATA_PARALLEL_GROUP is None:
        raise RuntimeError("expert data parallel group is not initialized")
    return _EXPERT_DATA_PARALLEL_GROUP


class GlobalStateSource:
    """Reads the globals the way Megatron-FSDP did before explicit process-group passing."""

    name = "global_state"

    def group(self, buffer: str, op: str) -> Any:
        if buffer == "expert":
            return get_expert_data_parallel_group()  # no expert AG group in this design
        return get_data_parallel_group(
            with_context_parallel=True,
            independent_all_gather=(op == "ag" and has_separate_all_gather_group()),
        )
