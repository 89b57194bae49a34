"""Sharded buffers (dense over dp_cp, expert over expt_dp) and the data patterns that check them.

A buffer of S full-buffer bytes over a group of n ranks has shards of ceil(S/n) bytes rounded up
to a multiple of 16 bytes: NCCL is much slower on shards that are not 16-byte aligned.

Patterns are exact in bf16: AG moves values without arithmetic, so any value compares exactly;
RS sums 0/1 values, exact while the group has at most 256 ranks. Each (buffer, source) has its
own pattern base, and each rank its own values, so cross-talk between communicators or a wrong
group member shows up as a wrong element.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch

from agrs_bench.config.run_config import SHARD_ALIGN_BYTES

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def shard_numel(size_bytes: int, element_bytes: int, group_size: int) -> int:
    """Elements per shard: ceil(S / n) bytes, rounded up to a multiple of 16 bytes."""
    shard_bytes = math.ceil(size_bytes / group_size)
    shard_bytes = math.ceil(shard_bytes / SHARD_ALIGN_BYTES) * SHARD_ALIGN_BYTES
    return shard_bytes // element_bytes


def pattern_base(buffer: str, source: str) -> int:
    """A small integer that differs between (buffer, source) pairs, stable across runs."""
    return zlib.crc32(f"{buffer}/{source}".encode()) % 97


def ag_pattern(global_rank: int, numel: int, base: int, dtype: torch.dtype, device) -> torch.Tensor:
    """AG input of `global_rank`: a rank signature (distinct for 252 consecutive ranks, exact in
    bf16) plus a short ramp, so a chunk from a wrong rank or at a wrong offset shows."""
    ramp = torch.arange(numel, device=device) % 4
    return (ramp + (global_rank + base) % 252 + 1).to(dtype)


def rs_pattern(global_rank: int, numel: int, base: int, dtype: torch.dtype, device) -> torch.Tensor:
    """RS input of `global_rank`: 0/1 values, so sums stay exact; one bit of a multiplicative
    hash of (index, rank), so every rank has its own sequence, however large the group."""
    mixed = (torch.arange(numel, device=device, dtype=torch.int64) + base
             + (global_rank + 1) * 0x9E3779B1) * 0x85EBCA6B  # int64 wraps the same on every device
    mixed = mixed ^ (mixed >> 16)  # murmur3-style finalizer: every input bit reaches bit 7
    mixed = (mixed * 0xC2B2AE35) ^ ((mixed * 0xC2B2AE35) >> 13)
    return ((mixed >> 7) & 1).to(dtype)


@dataclass
class ShardedBuffer:
    """One bucket's tensors. AG reads `param_shard` into `param_full`; RS reads `grad_full` into
    `grad_shard`. AG and RS never touch the same memory, so running them together is safe."""

    group_ranks: list[int]
    param_shard: torch.Tensor
    param_full: torch.Tensor
    grad_full: torch.Tensor
    grad_shard: torch.Tensor
    grad_comm: torch.Tensor | None = None
    """The step's scaled RS input (Megatron-FSDP's scale-then-SUM), when its reduce op scales."""
    main_grad: torch.Tensor | None = None
    """The step's main-gradient shard, which every reduced shard is added into."""

    @property
    def shard_numel(self) -> int:
        return self.param_shard.numel()


def make_buffer(kind: str, size_bytes: int, dtype: torch.dtype, group_ranks: list[int], device,
                grad_dtype: torch.dtype | None = None) -> ShardedBuffer:
    """`size_bytes` counts parameters; gradients in `grad_dtype` (default: the same) may be wider."""
    n = len(group_ranks)
    numel = shard_numel(size_bytes, torch.empty((), dtype=dtype).element_size(), n)
    grad_dtype = grad_dtype or dtype
    return ShardedBuffer(
        group_ranks=list(group_ranks),
        param_shard=torch.empty(numel, dtype=dtype, device=device),
        param_full=torch.empty(numel * n, dtype=dtype, device=device),
        grad_full=torch.empty(numel * n, dtype=grad_dtype, device=device),
        grad_shard=torch.empty(numel, dtype=grad_dtype, device=device),
    )


def fill_for_check(buf: ShardedBuffer, rank: int, base: int, rs_scale: int = 1) -> None:
    """Write this rank's inputs and poison the outputs, so an unwritten output is caught.

    `rs_scale` multiplies the RS inputs: with n (the group size) a ReduceOp.AVG gives exactly
    what a SUM of the plain pattern gives, so `expected_rs` serves both."""
    numel, dtype, device = buf.shard_numel, buf.param_shard.dtype, buf.param_shard.device
    buf.param_shard.copy_(ag_pattern(rank, numel, base, dtype, device))
    buf.grad_full.copy_(rs_pattern(rank, numel * len(buf.group_ranks), base, buf.grad_full.dtype, device) * rs_scale)
    buf.param_full.fill_(float("nan"))
    buf.grad_shard.fill_(float("nan"))
    if buf.main_grad is not None:
        buf.main_grad.fill_(float("nan"))  # the step zeroes it first: a step that does not shows


def expected_ag(buf: ShardedBuffer, base: int) -> torch.Tensor:
    numel, dtype, device = buf.shard_numel, buf.param_shard.dtype, buf.param_shard.device
    return torch.cat([ag_pattern(r, numel, base, dtype, device) for r in buf.group_ranks])


def expected_rs(buf: ShardedBuffer, rank: int, base: int) -> torch.Tensor:
    numel, dtype, device = buf.shard_numel, buf.grad_shard.dtype, buf.param_shard.device
    position = buf.group_ranks.index(rank)
    total = torch.zeros(numel, dtype=torch.float32, device=device)
    for member in buf.group_ranks:
        full = rs_pattern(member, numel * len(buf.group_ranks), base, torch.float32, device)
        total += full[position * numel:(position + 1) * numel]
    return total.to(dtype)


def first_mismatch(got: torch.Tensor, expected: torch.Tensor, rel_tol: float = 0.0
                   ) -> tuple[int, float, float] | None:
    """(index, got, expected) of the first wrong element, or None when all match (within
    `rel_tol` of max(1, |expected|): a scaled RS of a group whose size is not a power of two)."""
    if rel_tol:
        wrong = (got.float() - expected.float()).abs() > rel_tol * expected.float().abs().clamp_min(1.0)
        wrong |= torch.isnan(got)
    else:
        wrong = (got != expected) | torch.isnan(got)
    if not bool(wrong.any()):
        return None
    index = int(wrong.nonzero()[0].item())
    return index, float(got[index].item()), float(expected[index].item())
