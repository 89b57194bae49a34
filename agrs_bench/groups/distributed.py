"""Start and stop torch.distributed: pick the backend, create groups, never hang at exit."""

from __future__ import annotations

import datetime
import os
import re
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from agrs_bench.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the launched job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str
    nccl_env_set: dict[str, str] = field(default_factory=dict)
    """The NCCL fault-handling variables this process set (nccl only; the user's own are kept)."""


@dataclass(frozen=True)
class LaunchEnv:
    """What torchrun told this process through the environment, checked."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


def _env_int(environ: dict[str, str] | os._Environ, name: str, default: int | None = None) -> int:
    text = environ.get(name)
    if text is None:
        if default is None:
            raise ConfigError(f"{name} is not set, but {_launch_markers(environ)} is: start the run "
                              "with torchrun, or unset those variables to let it launch itself")
        return default
    if not re.fullmatch(r"[+-]?[0-9]{1,9}", text.strip()):  # int() takes '٤' and 4300 digits
        raise ConfigError(f"environment variable {name}={text[:40]!r} is not an integer")
    return int(text.strip())


def _launch_markers(environ) -> str:
    return " and ".join(n for n in ("TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE") if n in environ) or "nothing"


def launch_env(environ: dict[str, str] | os._Environ) -> LaunchEnv | None:
    """None when torchrun did not start this process (then it launches itself); ConfigError
    naming the variable when the launch variables are half there or not numbers."""
    if not any(n in environ for n in ("TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE")):
        return None
    rank, world = _env_int(environ, "RANK"), _env_int(environ, "WORLD_SIZE")
    local_world = _env_int(environ, "LOCAL_WORLD_SIZE", world)
    local_rank = _env_int(environ, "LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} and WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE")
    if not 1 <= local_world <= world or not 0 <= local_rank < local_world:
        raise ConfigError(f"LOCAL_RANK={local_rank} and LOCAL_WORLD_SIZE={local_world} do not fit "
                          f"WORLD_SIZE={world}")
    # torch's env:// rendezvous reads these two; without them it fails inside the run (exit 1).
    if not environ.get("MASTER_ADDR", "").strip():
        raise ConfigError(f"MASTER_ADDR is not set, but {_launch_markers(environ)} is: start the run "
                          "with torchrun, or set MASTER_ADDR and MASTER_PORT")
    port = _env_int(environ, "MASTER_PORT")
    if not 1 <= port <= 65535:
        raise ConfigError(f"environment variable MASTER_PORT={port} is not a port (1-65535)")
    return LaunchEnv(rank, world, local_rank, local_world)


def launched_by_torchrun() -> bool:
    """Whether torchrun's variables are there at all (benchmarks/ uses it to skip); launch_env()
    is the checked reading."""
    return "TORCHELASTIC_RUN_ID" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def visible_gpus() -> int:
    """CUDA devices this process can use (0 without CUDA, or with CUDA_VISIBLE_DEVICES="")."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def pick_backend(local_world_size: int) -> str:
    """nccl when every local rank can have its own GPU, gloo otherwise."""
    if torch.cuda.is_available() and torch.cuda.device_count() >= local_world_size:
        return "nccl"
    return "gloo"


def node_id() -> str:
    """Which node this process runs on. torchrun's GROUP_RANK (one per agent) tells apart two
    agents that share a host, as they do when a multi-node launch is rehearsed on one machine."""
    return f"{socket.gethostname()}:{os.environ.get('GROUP_RANK', '0')}"


def nccl_fault_env(run_dir: str, environ: dict[str, str]) -> dict[str, str]:
    """The variables that make PyTorch's NCCL flight recorder dump into `run_dir` on a timeout,
    less those already in `environ` (the user's settings win). Both names of the dump path are
    set: TORCH_FR_DUMP_TEMP_FILE, and TORCH_NCCL_DEBUG_INFO_TEMP_FILE that older PyTorch reads.

    TORCH_NCCL_ASYNC_ERROR_HANDLING=2 (abort the communicators, keep the process): by default
    PyTorch's NCCL watchdog kills the whole process on a timeout, before rank 0 can write the
    finished cells to results.json; with 2 the rank goes on to fail the cell (or our watchdog
    ends it) after saving."""
    prefix = os.path.join(os.path.abspath(run_dir), "flight_recorder", "rank_")
    # NCCL_NVLS_ENABLE=0: NVLink multicast can put every GPU of a shared host out of service.
    wanted = {"NCCL_NVLS_ENABLE": "0",
              "TORCH_NCCL_TRACE_BUFFER_SIZE": "2000", "TORCH_NCCL_DUMP_ON_TIMEOUT": "1",
              "TORCH_FR_DUMP_TEMP_FILE": prefix, "TORCH_NCCL_DEBUG_INFO_TEMP_FILE": prefix,
              "TORCH_NCCL_ASYNC_ERROR_HANDLING": "2"}
    return {k: v for k, v in wanted.items() if k not in environ}


def init(timeout_s: float, backend: str | None = None, run_dir: str | None = None) -> DistInfo:
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    backend = backend or pick_backend(local_world_size)
    kwargs: dict[str, Any] = {}
    nccl_env: dict[str, str] = {}
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        kwargs["device_id"] = torch.device("cuda", local_rank)
        if run_dir:
            nccl_env = nccl_fault_env(run_dir, dict(os.environ))
            os.environ.update(nccl_env)  # read by the NCCL process group when it is created
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, local_world_size, backend,
                    nccl_env)


def make_flight_recorder_dir(info: DistInfo) -> None:
    """Create the folder the dumps go to; the dump itself does not create it. Called once the
    run directory may be written (after the preflight checks), on every node."""
    path = info.nccl_env_set.get("TORCH_FR_DUMP_TEMP_FILE")
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)


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


def wake_stopped(pids: list[int]) -> None:
    """SIGCONT the other ranks of this node when the run fails. A stopped rank (SIGSTOP, job
    control, a debugger) cannot take the SIGTERM torchrun sends when a rank fails, and torchrun
    waits 30 s before its SIGKILL; woken, it takes the SIGTERM at once. A running rank ignores
    SIGCONT."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass  # already gone


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


def raise_if_any_rank(mine: list[str], error: Callable[[list[str]], Exception]) -> None:
    """Collective: every rank's problems gathered; if any rank has one, every rank raises
    `error(problems)` (all ranks' problems, in rank order), so that all stop together and none
    waits in a collective for a rank that left."""
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, list(mine))
    problems = [p for found in everyone for p in (found or [])]
    if problems:
        raise error(problems)
