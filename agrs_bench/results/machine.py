"""What a result was measured on: machine_info and commit_info of results.json."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from agrs_bench.groups.distributed import node_id

ENV_PREFIXES = ("NCCL_", "TORCH_NCCL_", "TORCH_DISTRIBUTED_", "CUDA_")
ENV_NAMES = ("CUDA_DEVICE_MAX_CONNECTIONS", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")


def relevant_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Every variable that changes how collectives run: NCCL_*, TORCH_NCCL_*, CUDA_* and a few."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in sorted(environ.items())
            if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def nccl_version() -> str | None:
    try:
        version = torch.cuda.nccl.version()
    except Exception:  # CPU builds have no NCCL
        return None
    return ".".join(str(v) for v in version) if isinstance(version, tuple) else str(version)


def machine_info(*, backend: str, world_size: int, hosts: list[str], layout: dict[str, Any],
                 devices: list[dict[str, Any]]) -> dict[str, Any]:
    uname = platform.uname()
    return {
        # The keys pytest-benchmark expects, so `pytest-benchmark compare` reads the file.
        "node": uname.node, "processor": uname.processor, "machine": uname.machine,
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_implementation_version": platform.python_version(),
        "python_version": platform.python_version(), "python_build": list(platform.python_build()),
        "release": uname.release, "system": uname.system,
        "cpu": {"count": os.cpu_count(), "brand_raw": uname.processor or uname.machine},
        # What the measurements depend on.
        "backend": backend,
        "torch_version": torch.__version__,
        "nccl_version": nccl_version(),
        "cuda_version": torch.version.cuda,
        "world_size": world_size,
        "hosts": hosts,
        "num_hosts": len(set(hosts)),
        "devices": devices,
        "gpu_name": devices[0]["name"] if devices else None,
        "layout": layout,
        "env": relevant_env(),
    }


def local_device(backend: str, local_rank: int) -> dict[str, Any]:
    if backend != "nccl":
        return {"name": "cpu", "host": socket.gethostname()}
    props = torch.cuda.get_device_properties(local_rank)
    return {"name": props.name, "host": socket.gethostname(), "local_rank": local_rank,
            "total_memory_bytes": props.total_memory, "multiprocessors": props.multi_processor_count,
            "uuid": str(getattr(props, "uuid", "")) or None}


COMMIT_ENV = "AGRS_BENCH_COMMIT"
"""Names the code when the checkout has no .git (the device and nightly scripts set it)."""
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _git_commit(root: str) -> dict[str, Any] | None:
    """The git state of the checkout at `root`, or None when `root` is not the top of one."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        # A tree copied without .git into some other repository must not take that one's commit.
        if os.path.realpath(git("rev-parse", "--show-toplevel")) != os.path.realpath(root):
            return None
        return {
            "id": git("rev-parse", "HEAD"),
            "time": git("log", "-1", "--format=%cI"),
            "author_time": git("log", "-1", "--format=%aI"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "project": "agrs_bench",
            "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        }
    except (OSError, subprocess.SubprocessError):  # no git, not a checkout, or no commit yet
        return None


def commit_info(root: str | None = None, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Which code measured: fields as pytest-benchmark writes them, plus `source`, in this order:
    "git" (the checkout that holds the agrs_bench package: id, dirty, branch), "env" (the
    AGRS_BENCH_COMMIT variable), "package" (the installed agrs_bench version), "unknown".

    A tree copied to a GPU host can carry a stale .git (seen on the device hosts: a copy of
    b58193c reported the session's first commit, dirty). When AGRS_BENCH_COMMIT is set and names
    another commit than the checkout's, whoever copied the tree said which code it is: the
    variable wins, and the checkout's own answer is kept beside it as `git_checkout`."""
    environ = os.environ if environ is None else environ
    # What goes into report.md verbatim: one line of at most 100 characters, whatever was set.
    named = " ".join(environ.get(COMMIT_ENV, "").split())[:100]
    found = _git_commit(root or PACKAGE_ROOT)
    if found and (not named or found["id"].startswith(named) or named.startswith(found["id"])):
        return {**found, "source": "git"}
    if named:
        info: dict[str, Any] = {"id": named, "dirty": None, "project": "agrs_bench", "branch": None,
                                "source": "env"}
        if found:
            info["git_checkout"] = {"id": found["id"], "dirty": found.get("dirty")}
        return info
    try:
        from importlib.metadata import version

        package_version = version("agrs_bench")
    except Exception:  # not installed: run from a bare tree on PYTHONPATH
        return {"id": None, "dirty": None, "project": "agrs_bench", "source": "unknown"}
    return {"id": f"agrs_bench {package_version}", "dirty": None, "project": "agrs_bench",
            "version": package_version, "source": "package"}


@dataclass(frozen=True)
class Ranks:
    """Who is where, one entry per rank, gathered once at start-up."""

    hosts: list[str]
    nodes: list[str]
    """distributed.node_id() of each rank: ranks of one node share it."""
    pids: list[int]
    devices: list[dict[str, Any]]
    """local_device() of each rank, with its NVML identity under "nvml"."""

    def peers_here(self) -> list[int]:
        """pids of the other ranks on this node (to wake one that was stopped)."""
        here = node_id()
        return [pid for node, pid in zip(self.nodes, self.pids) if node == here and pid != os.getpid()]


def gather_ranks(world_size: int, device: dict[str, Any]) -> Ranks:
    """Collective: every rank's host, node, pid and `device` description."""
    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, (socket.gethostname(), node_id(), os.getpid(), device))
    hosts, nodes, pids, devices = (list(column) for column in zip(*gathered))
    return Ranks(hosts=hosts, nodes=nodes, pids=pids, devices=devices)
