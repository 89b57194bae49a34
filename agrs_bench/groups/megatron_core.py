"""`megatron_core`: the groups built by the installed megatron-core itself, from the run's layout.

Two generations of megatron-core exist, told apart by what the module has, never by its version:

- `global_state` API (0.16.1 and 0.17.x): `initialize_model_parallel(..., create_all_gather_group=True)`
  creates the dense AG group beside dp_cp; it is read with `get_data_parallel_group(
  with_context_parallel=True, independent_all_gather=True)`. There is no expert AG group: expert
  AG runs on the expert-DP communicator, as Megatron-FSDP 0.16.1 does.
- `create_all_gather_groups` API (first shipped in 0.18.0; 0.19.2 has it): `initialize_model_parallel(...)`, then, as
  Megatron's training loop (`megatron/training/training.py:get_model`) does,
  `create_all_gather_groups(for_expert_parallelism=ep > 1)` into
  `ProcessGroupCollection.use_mpu_process_groups()` as `dp_cp_ag` / `expt_dp_ag`. A None AG group
  falls back to the RS group, as Megatron-FSDP's buffer does.

megatron-core keeps its groups in module globals, so one layout can be live per process; `close()`
tears them down (its `destroy_model_parallel()` resets the globals but leaves every group it made
registered in torch.distributed, so those are destroyed here too).

`create_all_gather_groups()` rebuilds the groups with order tp-cp-ep-dp-pp and rank offset 0 whatever
the run used (NVIDIA/Megatron-LM#4261, open; fix PR #5754): `mismatches()` finds that before a
single op is timed.
"""

from __future__ import annotations

import datetime
import inspect
from dataclasses import dataclass
from typing import Any

import torch.distributed as dist

from agrs_bench.errors import ConfigError
from agrs_bench.topology.layout import Layout
from agrs_bench.vocab import BUFFERS, RS_GROUP_KIND

UPSTREAM = "NVIDIA/Megatron-LM#4261 (fix PR #5754)"
API_GLOBAL_STATE = "global_state"
API_CREATE_ALL_GATHER_GROUPS = "create_all_gather_groups"


def version() -> str:
    """The version of the megatron-core tree that `megatron.core` resolves to."""
    try:
        from megatron.core.package_info import __version__

        return str(__version__)
    except Exception:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            return dist_version("megatron-core")
        except PackageNotFoundError:
            return "unknown"


def megatron_notation(layout: Layout) -> str:
    """The layout as the arguments megatron-core's initialize_model_parallel receives."""
    return (f"tensor_model_parallel_size={layout.tp}, context_parallel_size={layout.cp}, "
            f"expert_model_parallel_size={layout.ep}, expert_tensor_parallel_size={layout.etp}, "
            f"pipeline_model_parallel_size={layout.pp}, order='{layout.order}' "
            f"(world {layout.world_size}, dp {layout.dp}, expert dp {layout.expert_dp})")


def _api(ps: Any) -> str:
    if hasattr(ps, "create_all_gather_groups"):
        return API_CREATE_ALL_GATHER_GROUPS
    if "create_all_gather_group" in inspect.signature(ps.initialize_model_parallel).parameters:
        return API_GLOBAL_STATE
    raise RuntimeError(f"megatron-core {version()} has neither create_all_gather_groups() nor "
                       "initialize_model_parallel(create_all_gather_group=...)")


@dataclass
class MegatronCoreSource:
    """This rank's groups as megatron-core built them."""

    dp_cp: Any
    dp_cp_ag: Any
    expt_dp: Any
    expt_dp_ag: Any
    api: str
    version: str
    name: str = "megatron_core"

    def group(self, buffer: str, op: str) -> Any:
        if buffer == "expert":
            return self.expt_dp_ag if op == "ag" else self.expt_dp
        return self.dp_cp_ag if op == "ag" else self.dp_cp

    def describe(self) -> dict[str, str]:
        """What results.json records at its top level (`agrs_bench.megatron_core`)."""
        return {"version": self.version, "api": self.api}

    def close(self) -> None:
        """Collective: reset megatron-core's globals and destroy every group it created."""
        teardown()


def teardown() -> None:
    """Undo `build` so that the process (or a next layout) starts clean."""
    from megatron.core import parallel_state as ps

    made = [g for g in (getattr(ps, "_global_process_group_list", None) or []) if g is not None]
    ps.destroy_model_parallel()
    if made and dist.is_initialized():
        dist.barrier()  # no rank destroys a group another rank is still using
        pg_map = dist.distributed_c10d._world.pg_map
        for group in made:
            if pg_map.get(group) is not None:
                dist.destroy_process_group(group)
    if hasattr(ps, "_global_process_group_list"):
        ps._global_process_group_list = None


def build(layout: Layout, rank: int, timeout_s: float) -> MegatronCoreSource:
    """Collective: initialize megatron-core's parallel state for `layout`, return this rank's groups.

    A layout megatron-core refuses raises its own AssertionError/RuntimeError, after its partial
    state is torn down (Layout refuses those layouts first, with the same words).
    """
    from megatron.core import parallel_state as ps

    if layout.rank_offset:
        raise ConfigError(f"megatron_core: megatron-core lays out ranks from 0, not from rank offset "
                          f"{layout.rank_offset}")
    if layout.world_size != dist.get_world_size():
        raise ConfigError(f"megatron_core: layout of {layout.world_size} ranks in a world of "
                          f"{dist.get_world_size()}")
    if ps.is_initialized():
        raise RuntimeError("megatron-core's parallel state is already initialized in this process")
    api = _api(ps)
    timeout = datetime.timedelta(seconds=timeout_s)
    kwargs: dict[str, Any] = dict(
        tensor_model_parallel_size=layout.tp, pipeline_model_parallel_size=layout.pp,
        context_parallel_size=layout.cp, expert_model_parallel_size=layout.ep,
        expert_tensor_parallel_size=layout.etp, order=layout.order,
        # initialize_model_parallel makes timedelta(minutes=...) of it; a float is fine.
        distributed_timeout_minutes=timeout_s / 60.0,
        # The *_GLOO duplicates of the DP groups serve Megatron's optimizer, not FSDP's AG/RS.
        create_gloo_process_groups=False,
    )
    if api == API_GLOBAL_STATE:
        kwargs["create_all_gather_group"] = True
    try:
        ps.initialize_model_parallel(**kwargs)
        if api == API_GLOBAL_STATE:
            dp_cp = ps.get_data_parallel_group(with_context_parallel=True)
            dp_cp_ag = ps.get_data_parallel_group(with_context_parallel=True, independent_all_gather=True)
            expt_dp = ps.get_expert_data_parallel_group()
            expt_dp_ag = None  # 0.16.1 has no expert AG group
        else:
            from megatron.core.process_groups_config import ProcessGroupCollection

            pg_collection = ProcessGroupCollection.use_mpu_process_groups(required_pgs=["dp_cp", "expt_dp"])
            dp_cp_ag, expt_dp_ag = ps.create_all_gather_groups(
                for_expert_parallelism=layout.ep > 1, timeout=timeout)
            pg_collection.dp_cp_ag, pg_collection.expt_dp_ag = dp_cp_ag, expt_dp_ag
            dp_cp, expt_dp = pg_collection.dp_cp, pg_collection.expt_dp
            dp_cp_ag, expt_dp_ag = pg_collection.dp_cp_ag, pg_collection.expt_dp_ag
    except BaseException:
        try:
            teardown()
        except Exception:
            pass
        raise
    # Megatron-FSDP: get_fsdp_group(..., independent_all_gather=True) or, when None, the RS group.
    return MegatronCoreSource(
        dp_cp=dp_cp, dp_cp_ag=dp_cp_ag if dp_cp_ag is not None else dp_cp,
        expt_dp=expt_dp, expt_dp_ag=expt_dp_ag if expt_dp_ag is not None else expt_dp,
        api=api, version=version())


def mismatches(source: MegatronCoreSource, layout: Layout, rank: int) -> list[dict[str, Any]]:
    """Collective: where megatron-core's AG group holds other ranks than its DP group. One entry
    per buffer kind, from the lowest rank that sees it (both rank lists on that one rank); empty
    when the groups agree. A DP group that differs from our own layout is our bug, not Megatron's:
    that raises."""
    mine = []
    for buffer in BUFFERS:
        rs_ranks = sorted(dist.get_process_group_ranks(source.group(buffer, "rs")))
        ag_ranks = sorted(dist.get_process_group_ranks(source.group(buffer, "ag")))
        expected = layout.group_of(RS_GROUP_KIND[buffer], rank)
        mine.append((buffer, rs_ranks, ag_ranks, expected))
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    found: dict[str, dict[str, Any]] = {}
    for where, seen in enumerate(everyone):
        for buffer, rs_ranks, ag_ranks, expected in seen:
            if rs_ranks != expected:
                raise RuntimeError(
                    f"megatron_core: rank {where} buffer {buffer}: megatron-core's "
                    f"{RS_GROUP_KIND[buffer]} group {rs_ranks} differs from agrs_bench's layout "
                    f"{expected} for {megatron_notation(layout)}")
            if ag_ranks != rs_ranks and buffer not in found:
                found[buffer] = {"layout": megatron_notation(layout), "rank": where, "buffer": buffer,
                                 "rs_ranks": rs_ranks, "ag_ranks": ag_ranks,
                                 "version": source.version, "upstream": UPSTREAM}
    return [found[b] for b in BUFFERS if b in found]


def describe_mismatch(finding: dict[str, Any]) -> str:
    """One line for stderr and for the top of report.md."""
    return (f"megatron-core {finding['version']} built {finding['buffer']} AG groups whose ranks "
            f"differ from its DP groups for {finding['layout']}: on rank {finding['rank']} the RS "
            f"(DP) group is {finding['rs_ranks']} but the AG group is {finding['ag_ranks']}; "
            f"upstream issue {finding['upstream']}. megatron_core was not timed.")
