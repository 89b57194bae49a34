"""What a result was measured on: machine_info and commit_info of results.json."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from typing import Any

import torch

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


def commit_info(path: str | None = None) -> dict[str, Any]:
    """The git state of the agrs_bench checkout (fields as pytest-benchmark writes them)."""
    path = path or os.path.dirname(os.path.abspath(__file__))

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        return {
            "id": git("rev-parse", "HEAD"),
            "time": git("log", "-1", "--format=%cI"),
            "author_time": git("log", "-1", "--format=%aI"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "project": "agrs_bench",
            "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        }
    except Exception as err:  # not a checkout, no git, or no commit yet
        return {"id": None, "dirty": None, "project": "agrs_bench", "error": type(err).__name__}
