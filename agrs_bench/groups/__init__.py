"""Process groups per group source, created once, with every AG group's membership checked.

Each source answers one question: which group does buffer kind K ("dense" or "expert") use for
all-gather ("ag") and which for reduce-scatter ("rs")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from agrs_bench.topology.layout import Layout
from agrs_bench.vocab import BUFFERS, RS_GROUP_KIND, SOURCES  # noqa: F401 (re-exported)


class GroupSource(Protocol):
    name: str

    def group(self, buffer: str, op: str) -> Any:
        """The process group that buffer kind `buffer` uses for op `op` ("ag" or "rs")."""


def build_source(
    name: str,
    layout: Layout,
    rank: int,
    *,
    make_group: Callable[[list[list[int]], int, str, str], Any],
    timeout_s: float = 600.0,
) -> GroupSource:
    """Create the groups of source `name` (collective: every rank, same order).

    `make_group(rank_lists, rank, role, desc)` creates one group per rank list and returns this
    rank's. `megatron_core` does not use it: megatron-core creates its own groups, with its own
    options, and `timeout_s` is its groups' timeout.
    """
    from agrs_bench.groups import global_state, pg_collection, single_comm

    if name == "megatron_core":
        from agrs_bench.groups import megatron_core

        return megatron_core.build(layout, rank, timeout_s)
    if name == "single_comm":
        return single_comm.build(layout, rank, make_group)
    if name == "global_state":
        global_state.initialize_model_parallel(
            layout, rank, make_group, create_all_gather_group=True)
        return global_state.GlobalStateSource()
    if name == "pg_collection":
        return pg_collection.build(layout, rank, make_group)
    raise ValueError(f"unknown group source {name!r}")


def ag_shares_rs_comm(source: GroupSource, buffer: str) -> bool:
    """Does the AG of `buffer` run on the very communicator of its RS (no overlap possible)?"""
    return source.group(buffer, "ag") is source.group(buffer, "rs")
