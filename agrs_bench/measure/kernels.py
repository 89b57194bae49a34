"""The operations of one measurement, issued on role streams, in the same order on every rank.

`ag`, `rs` and `ag_rs` issue one iteration each call: AG on the source's AG group from the AG
stream, RS on its RS group from the RS stream. With `ag_rs` the two are issued back to back; on
two communicators NCCL may run them at once, on one it runs them one after the other.

That is the `role_streams` issue style (`CollectiveKernel`). `MegatronFsdpKernel` is the
`megatron_fsdp` style: the same ops issued as Megatron-FSDP issues them (`make_kernel` picks one
by the cell's `issue` param).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
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

    rs_input_scale = 1
    """RS inputs as the check fills them: SUM of the plain pattern."""

    @property
    def roles(self) -> tuple[str, ...]:
        return MODE_ROLES[self.mode]

    def describe(self) -> dict[str, Any]:
        return {}

    def __call__(self, pending: list[Issued]) -> None:
        if self.mode in ("ag", "ag_rs"):
            pending.append(self.dev.issue("ag", all_gather, self.buf.param_full,
                                          self.buf.param_shard, group=self.ag_group))
        if self.mode in ("rs", "ag_rs"):
            pending.append(self.dev.issue("rs", reduce_scatter, self.buf.grad_shard,
                                          self.buf.grad_full, group=self.rs_group))


def rs_reduce_op(group: Any) -> str:
    """The reduce op Megatron-FSDP would use for gradients on `group`: "avg" where the backend
    has ReduceOp.AVG and the check pattern stays exact, else "sum" of pre-divided gradients (what
    Megatron does with average_in_collective off).

    NCCL implements AVG of floats as a pre-multiplication by 1/n, exact only when n is a power of
    two; gloo averages as sum-then-divide, exact for every n, and has AVG from torch 2.13 (checked
    there; earlier releases are not assumed to)."""
    backend = dist.get_backend(group)
    size = dist.get_world_size(group)
    if backend == "nccl":
        return "avg" if size & (size - 1) == 0 else "sum"
    if backend == "gloo":
        major, minor = (int(x) for x in torch.__version__.split(".")[:2])
        return "avg" if (major, minor) >= (2, 13) else "sum"
    return "sum"


@dataclass
class MegatronFsdpKernel:
    """One `ag`, `rs` or `ag_rs` iteration issued the way Megatron-FSDP issues its buckets
    (megatron_fsdp/param_and_grad_buffer.py): the AG as `all_gather_into_tensor(async_op=True)`
    inside `_coalescing_manager(group, async_ops=True)`, so it runs on the process group's own
    internal stream and hands back a work handle; the RS as `reduce_scatter_tensor` inside a
    (synchronous) coalescing manager, with ReduceOp.AVG or a SUM of pre-divided gradients.

    Both are issued from their role streams, which stand for Megatron-FSDP's all_gather_stream and
    reduce_scatter_stream. The AG's work handle travels in `Issued.work`: the device handle's
    `join` waits on it from the consumer stream (on CUDA `work.wait()` makes the current stream wait
    for the NCCL stream; on gloo it blocks until done). The synchronous coalescing manager already
    made the RS stream wait for its op when it closed."""

    dev: Any
    mode: str
    buf: ShardedBuffer
    ag_group: Any
    rs_group: Any
    reduce_op: str = field(init=False)

    def __post_init__(self) -> None:
        self.reduce_op = rs_reduce_op(self.rs_group)

    @property
    def roles(self) -> tuple[str, ...]:
        return MODE_ROLES[self.mode]

    @property
    def rs_input_scale(self) -> int:
        """Gradients under AVG are n times the pre-divided ones the SUM path reduces: the check
        fills RS inputs with n·b (b in {0, 1}), so the average is the exact count of ones."""
        return len(self.buf.group_ranks) if self.reduce_op == "avg" else 1

    def describe(self) -> dict[str, Any]:
        return {"issue": "megatron_fsdp", "rs_reduce_op": self.reduce_op}

    def __call__(self, pending: list[Issued]) -> None:
        if self.mode in ("ag", "ag_rs"):
            with self.dev.role("ag"):
                with dist._coalescing_manager(self.ag_group, async_ops=True) as handle:
                    all_gather(self.buf.param_full, self.buf.param_shard, group=self.ag_group, async_op=True)
            pending.append(Issued(None, handle, "ag"))
        if self.mode in ("rs", "ag_rs"):
            op = dist.ReduceOp.AVG if self.reduce_op == "avg" else dist.ReduceOp.SUM
            with self.dev.role("rs"):
                with dist._coalescing_manager(self.rs_group):
                    reduce_scatter(self.buf.grad_shard, self.buf.grad_full, op=op, group=self.rs_group)
            pending.append(Issued(None, None, "rs"))


def make_kernel(issue: str, dev: Any, mode: str, buf: ShardedBuffer, ag_group: Any, rs_group: Any
                ) -> CollectiveKernel | MegatronFsdpKernel | Any:
    """The kernel of a collective cell for its issue style (params.issue)."""
    if issue == "megatron_fsdp":
        return MegatronFsdpKernel(dev, mode, buf, ag_group, rs_group)
    if issue == "low_contention":
        from agrs_bench.measure.low_contention import LowContentionKernel
        return LowContentionKernel(dev, mode, buf, ag_group, rs_group)
    if issue != "role_streams":
        raise ValueError(f"unknown issue style {issue!r}")
    return CollectiveKernel(dev, mode, buf, ag_group, rs_group)
