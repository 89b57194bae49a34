"""The `low_contention` issue style: AG and RS through PyTorch's symmetric-memory collectives
`torch.ops.symm_mem._low_contention_all_gather` / `_low_contention_reduce_scatter`
(torch/distributed/_symmetric_memory/__init__.py), which move the data with copy-engine copies
between the ranks' symmetric buffers, to leave the SMs to compute.

As torch implements them (read in torch 2.11-2.13): inputs not allocated in symmetric memory are
first copied into a per-group symmetric workspace (AG: one SM copy; RS pushes its chunks with
copies, then reduces with an SM kernel); both run on one backend stream that torch keeps per
process (`_get_backend_stream()`), so an AG and an RS issued from different role streams still run
one after the other; each returns a new tensor, copied here into the bucket (a device-to-device
copy); RS supports sum and avg (sum is used: the check's pattern). CUDA only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from agrs_bench.measure.device import Issued
from agrs_bench.measure.kernels import CollectiveKernel


@dataclass
class LowContentionKernel(CollectiveKernel):
    """One `ag`, `rs` or `ag_rs` iteration through torch's low-contention collectives: the
    fields, roles and RS input scale of a role-streams kernel, issued another way."""

    def __post_init__(self) -> None:
        import torch.distributed._symmetric_memory as symm_mem

        enable = getattr(symm_mem, "enable_symm_mem_for_group", None)  # needed before torch 2.9 only
        for group in {id(g): g for g in (self.ag_group, self.rs_group)}.values():
            if enable is not None:
                enable(group.group_name)

    def describe(self) -> dict[str, Any]:
        return {"issue": "low_contention", "rs_reduce_op": "sum",
                "issue_note": "AG and RS share torch's one symmetric-memory backend stream"}

    def __call__(self, pending: list[Issued]) -> None:
        ops = torch.ops.symm_mem
        wait = torch.ops._c10d_functional.wait_tensor
        if self.mode in ("ag", "ag_rs"):
            with self.dev.role("ag"):
                gathered = wait(ops._low_contention_all_gather(self.buf.param_shard, self.ag_group.group_name))
                self.buf.param_full.copy_(gathered)
            pending.append(Issued(None, None, "ag"))
        if self.mode in ("rs", "ag_rs"):
            with self.dev.role("rs"):
                reduced = wait(ops._low_contention_reduce_scatter(self.buf.grad_full, "sum",
                                                                  self.rs_group.group_name))
                self.buf.grad_shard.copy_(reduced)
            pending.append(Issued(None, None, "rs"))
