"""Start and stop torch.distributed: pick the backend, create groups, never hang at exit."""

from __future__ import annotations

import datetime
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the launched job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str


def pick_backend(local_world_size: int) -> str:
    """nccl when every local rank can have its own GPU, gloo otherwise."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= local_world_size:
        return "nccl"
    return "gloo"


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def init(timeout_s: float, backend: str | None = None) -> DistInfo:
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    backend = backend or pick_backend(local_world_size)
    kwargs: dict[str, Any] = {}
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        kwargs["device_id"] = torch.device("cuda", local_rank)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, local_world_size, backend)


def group_maker(timeout_s: float, pg_options_for_role: Callable[[str], Any] | None = None
                ) -> Callable[[list[list[int]], int, str, str], Any]:
    """A `make_group(rank_lists, rank, role, desc)` for the group sources.

    `new_group` is collective over the whole world, so every rank creates every group, in the same
    order, and keeps the one it belongs to.
    """

    def make_group(rank_lists: list[list[int]], rank: int, role: str, desc: str) -> Any:
        mine = None
        options = pg_options_for_role(role) if pg_options_for_role else None
        for ranks in rank_lists:
            group = dist.new_group(ranks, timeout=datetime.timedelta(seconds=timeout_s),
                                   pg_options=options, group_desc=desc)
            if rank in ranks:
                mine = group
        return mine

    return make_group


def teardown(grace_s: float = 30.0) -> bool:
    """Destroy the process groups, giving up after `grace_s`.

    destroy_process_group() has been seen to hang for good in a process that captured NCCL
    collectives in CUDA graphs; a benchmark must not hold a runner forever for that. Returns False
    when it had to give up (the caller then exits without further cleanup).
    """
    if not dist.is_initialized():
        return True
    done = threading.Event()

    def destroy() -> None:
        try:
            dist.destroy_process_group()
        finally:
            done.set()

    threading.Thread(target=destroy, daemon=True, name="agrs-teardown").start()
    return done.wait(grace_s)
