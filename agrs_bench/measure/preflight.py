"""Before anything is allocated or written: will the largest cell fit in this rank's free memory?

The estimate is deliberately simple and a little generous. A collective cell over a group of n
ranks holds a parameter shard, the gathered parameters, the full gradients and a gradient shard
(2·S + 2·S/n bytes); the output check builds its expected data from int64 index ramps (about three
of them over the full buffer). An fsdp_step cell holds that per layer and buffer kind (gradients in
the step model's dtype, with its scaled RS input and main-gradient shard), plus the GEMM.
"""

from __future__ import annotations

import os

import torch

from agrs_bench.config.run_config import RunConfig
from agrs_bench.errors import ConfigError
from agrs_bench.groups.distributed import DistInfo, raise_if_any_rank
from agrs_bench.measure import buffers as bufs
from agrs_bench.vocab import RS_GROUP_KIND, STEP_MODES, size_label

CHECK_RAMPS = 3  # int64 temporaries over the full buffer while the expected data is built


def _buffer_bytes(size_bytes: int, element_bytes: int, group_size: int) -> tuple[int, int]:
    """(bytes the four tensors of one buffer hold, elements of the full buffer)."""
    shard = bufs.shard_numel(size_bytes, element_bytes, group_size)
    return 2 * (shard + shard * group_size) * element_bytes, shard * group_size


def needed_bytes(cfg: RunConfig) -> list[tuple[int, str]]:
    """(bytes one rank needs, the flag and value that ask for it) for each size of the run."""
    element = bufs.DTYPES[cfg.dtype].itemsize
    group = {kind: len(cfg.layout.rank_lists(RS_GROUP_KIND[kind])[0]) for kind in cfg.buffers}
    n = min(group.values())
    check = (lambda numel: CHECK_RAMPS * 8 * numel) if cfg.check else (lambda numel: 0)
    needs = []
    if any(m not in STEP_MODES for m in cfg.modes):
        for size in cfg.sizes_bytes:
            held, numel = _buffer_bytes(size, element, n)
            needs.append((held + check(numel), f"--sizes {size_label(size)}"))
    if "fsdp_step" in cfg.modes:
        m, k, nn = cfg.gemm_mnk
        gemm = (m * k + k * nn + m * nn) * element
        needs.append((gemm, f"--gemm {m}x{k}x{nn}"))  # too large alone: name it, not --step-sizes
        # The step model's gradients: in their own dtype, plus the scaled RS input (scale_sum)
        # and the main-gradient shard (accumulation); bounded here by one more full gradient.
        grad_factor = bufs.DTYPES[cfg.step_model.grad_dtype_for(cfg.dtype)].itemsize / element
        extra = 1 + (cfg.step_model.accumulate or cfg.step_model.reduce_op != "sum")
        for size in cfg.step_sizes_bytes:
            layer_bytes = sum(_buffer_bytes(cfg.step_bytes(kind, size), element, n)[0] for kind in cfg.buffers)
            held = int(layer_bytes / 2 * (1 + grad_factor * extra))
            numel = _buffer_bytes(max(cfg.step_bytes(kind, size) for kind in cfg.buffers), element, n)[1]
            needs.append((cfg.step_layers * held + check(numel) + gemm,
                          f"--step-sizes {size_label(size)} with --layers {cfg.step_layers}"))
    return needs


def _host_available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def free_bytes(backend: str, local_rank: int, local_world_size: int) -> tuple[int, str]:
    """(bytes this rank may use, where): its GPU's free memory, or its share of the host's."""
    if backend == "nccl":
        free, _ = torch.cuda.mem_get_info(local_rank)
        return free, f"free on cuda:{local_rank}"
    share = _host_available_bytes() // max(1, local_world_size)
    return share, f"of available host memory per rank ({local_world_size} ranks on this host)"


def _gib(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB"


def check_memory(cfg: RunConfig, free: int, where: str) -> None:
    """ConfigError naming the first size whose cell does not fit in `free` bytes."""
    for need, asked in needed_bytes(cfg):
        if need > free:
            raise ConfigError(f"{asked} needs about {_gib(need)} per rank, more than the "
                              f"{_gib(free)} {where}")


def check_every_rank(cfg: RunConfig, info: DistInfo) -> None:
    """Collective: every rank checks that the largest cell fits its free memory, before anything
    is allocated or written; all ranks raise the first rank's problem."""
    free, where = free_bytes(info.backend, info.local_rank, info.local_world_size)
    mine = []
    try:
        check_memory(cfg, free, where)
    except ConfigError as err:
        mine.append(f"rank {info.rank}: {err}" if info.rank else str(err))
    raise_if_any_rank(mine, lambda problems: ConfigError(problems[0]))
