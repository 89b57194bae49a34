"""Whether the installed torch and NCCL can pull the levers a run asks for: CTA policy, buffer
registration, the low-contention issue style. Checked once, before any process group exists, so
a run that cannot do what it was asked stops with one line naming what was found and needed.

Reads the installed build (imports torch lazily); what only a live communicator can tell (e.g.
"NCCL mem allocator is not supported in this NCCL version") is detected by the ranks
(measure/registration.py), which fall back to a path that works or stop the same way.
"""

from __future__ import annotations

from typing import Any

from agrs_bench.config.nccl_options import NcclOptions, nccl_version, support_problem
from agrs_bench.errors import ConfigError

LOW_CONTENTION = "low_contention"
"""The issue style that moves AG and RS with torch's symmetric-memory copy-engine collectives."""


def _all_options(cfg: Any) -> list[NcclOptions]:
    return [o for source in cfg.sources for pair in cfg.option_pairs(source) for o in pair]


def check_levers_supported(cfg: Any) -> None:
    """Raise ConfigError (one line) when `cfg` asks for a lever this backend or build lacks."""
    if cfg.backend != "nccl":
        if LOW_CONTENTION in cfg.issues:
            raise ConfigError(f"issue style {LOW_CONTENTION} needs CUDA and NCCL (torch symmetric memory); "
                              "this run uses gloo on CPU")
        return  # RunConfig already refuses every NCCL option on gloo
    options = _all_options(cfg)
    kinds = {o.registration for o in options} - {"none"}
    if LOW_CONTENTION in cfg.issues and "symmetric" in kinds:
        raise ConfigError(f"issue style {LOW_CONTENTION} and registration=symmetric cannot share a launch: "
                          "torch gives a process one symmetric-memory backend (CUDA for the low-contention "
                          "workspace, NCCL for symmetric windows); measure them in separate launches")
    problem = support_problem(options)
    if problem:
        raise ConfigError(problem)
    if kinds:
        problem = registration_problem(kinds)
        if problem:
            raise ConfigError(problem)
    if LOW_CONTENTION in cfg.issues:
        problem = low_contention_problem()
        if problem:
            raise ConfigError(problem)


def _found() -> str:
    import torch

    nccl = nccl_version()
    return f"torch {torch.__version__}, NCCL {'.'.join(map(str, nccl)) if nccl else 'none'}"


def registration_problem(kinds: set[str]) -> str | None:
    """What the build lacks for these registrations (ub, symmetric), or None."""
    import torch.distributed as dist

    pg = getattr(dist, "ProcessGroupNCCL", None)
    if pg is None or not hasattr(pg, "register_mem_pool"):
        return (f"registration={'/'.join(sorted(kinds))} needs ProcessGroupNCCL.register_mem_pool "
                f"(torch >= 2.8 built with NCCL); found {_found()}")
    nccl = nccl_version()
    if "symmetric" in kinds and (nccl is None or nccl < (2, 27)):
        return f"registration=symmetric needs NCCL >= 2.27 (symmetric windows); found {_found()}"
    return None


def low_contention_problem() -> str | None:
    """What the build lacks for torch's low-contention collectives, or None."""
    try:
        import torch
        import torch.distributed._symmetric_memory  # noqa: F401  (registers torch.ops.symm_mem)

        torch.ops.symm_mem._low_contention_all_gather  # noqa: B018
        torch.ops.symm_mem._low_contention_reduce_scatter  # noqa: B018
    except (ImportError, AttributeError, RuntimeError) as err:
        return (f"issue style {LOW_CONTENTION} needs torch.ops.symm_mem._low_contention_all_gather/"
                f"_reduce_scatter (torch >= 2.6 with CUDA); found {_found()}: {err}")
    return None
