"""The operations of one measurement, issued on role streams, in the same order on every rank.

`ag`, `rs` and `ag_rs` issue one iteration each call: AG on the source's AG group from the AG
stream, RS on its RS group from the RS stream. With `ag_rs` the two are issued back to back; on
two communicators NCCL may run them at once, on one it runs them one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.distributed as dist

from agrs_bench.measure.buffers import ShardedBuffer
from agrs_bench.measure.device import Issued
from agrs_bench.vocab import MODE_ROLES

# PyTorch 2.13 renamed the tensor collectives (the old names warn); 2.11 has only the old ones.
all_gather = getattr(dist, "all_gather_single", dist.all_gather_into_tensor)
reduce_scatter = getattr(dist, "reduce_scatter_single", dist.reduce_scatter_tensor)



@dataclass
class CollectiveKernel:
    """One `ag`, `rs` or `ag_rs` iteration over one buffer and the groups of one source."""

    dev: Any
    mode: str
    buf: ShardedBuffer
    ag_group: Any
    rs_group: Any

    @property
    def roles(self) -> tuple[str, ...]:
        return MODE_ROLES[self.mode]

    def __call__(self, pending: list[Issued]) -> None:
        if self.mode in ("ag", "ag_rs"):
            pending.append(self.dev.issue("ag", all_gather, self.buf.param_full,
                                          self.buf.param_shard, group=self.ag_group))
        if self.mode in ("rs", "ag_rs"):
            pending.append(self.dev.issue("rs", reduce_scatter, self.buf.grad_shard,
                                          self.buf.grad_full, group=self.rs_group))
