"""A cell's buffers under its registration lever: the comparison's shared buffers where the cell
registers nothing, else its own buffers of the same shape, registered (measure/registration.py)
on every communicator the cell runs them on, for as long as the comparison's `held` stack lives."""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from typing import Any

from agrs_bench.config.cell import Cell
from agrs_bench.config.nccl_options import NcclOptions, nccl_version, pair_label
from agrs_bench.measure import buffers as bufs
from agrs_bench.measure.registration import registered
from agrs_bench.vocab import MODE_ROLES


def options_of(cfg: Any, label: str) -> tuple[NcclOptions, NcclOptions]:
    """The (AG, RS) options behind a cell's nccl_options label."""
    for source in cfg.sources:
        for ag, rs in cfg.option_pairs(source):
            if pair_label(ag, rs) == label:
                return ag, rs
    return NcclOptions(), NcclOptions()


def build() -> str:
    import torch

    nccl = nccl_version()
    return f"torch {torch.__version__}, NCCL {'.'.join(map(str, nccl)) if nccl else 'none'}"


def wanted(cfg: Any, cell: Cell) -> dict[str, str]:
    """Role -> registration kind, for the roles the cell's mode runs (fsdp_step: both)."""
    ag, rs = options_of(cfg, cell.nccl_options)
    roles = ("ag", "rs") if cell.mode == "fsdp_step" else MODE_ROLES[cell.mode]
    return {role: opt.registration for role, opt in (("ag", ag), ("rs", rs))
            if role in roles and opt.registration != "none"}


def requested(cfg: Any, cell: Cell) -> dict[str, dict[str, str]]:
    """Role -> the levers the cell asked NCCL for (what trace_kinds.judge checks against the trace)."""
    ag, rs = options_of(cfg, cell.nccl_options)
    return {role: {"cta_policy": opt.cta_policy or "default", "registration": opt.registration}
            for role, opt in (("ag", ag), ("rs", rs))}


def cell_buffers(cfg: Any, cell: Cell, layers: list[dict[str, bufs.ShardedBuffer]],
                 groups: dict[str, tuple[Any, Any]], held: ExitStack, device: Any
                 ) -> tuple[list[dict[str, bufs.ShardedBuffer]], dict[str, Any]]:
    """The layers (one for ag/rs/ag_rs cells) the cell runs on, and its extra_info fields."""
    roles = wanted(cfg, cell)
    if not roles:
        return layers, {}
    own: list[dict[str, bufs.ShardedBuffer]] = []
    paths: dict[str, str] = {}
    for layer in layers:
        mine = {}
        for kind, buf in layer.items():
            copy = dataclasses.replace(buf)  # registered() gives its role tensors their own memory
            paths.update(held.enter_context(registered(copy, roles, groups[kind], device, build())))
            mine[kind] = copy
        own.append(mine)
    return own, {"registration": roles, "registration_path": paths}
