"""`fsdp_step`: a backward-like schedule of L layers, the way Megatron-FSDP overlaps it.

For layer i (from the last to the first): AG of layer i and of the layers prefetched with it on
the AG stream, compute of layer i on the compute stream (a GEMM that waits for layer i's AG), then
layer i's gradients: scaled, reduce-scattered and added into a main-gradient shard on the RS
stream. How each of those is done is the step model (config.step_model: Megatron-FSDP's defaults,
or `ours`, the schedule agrs_bench modelled first: prefetch exactly one layer, RS of layer i+1
issued beside compute of layer i, plain SUM, no accumulation). The collectives are issued on role
streams or, with issue `megatron_fsdp`, as Megatron-FSDP issues them (measure/kernels.py). Each
layer has a dense bucket and, when asked, an expert bucket. The same kernel runs in three
variants so the step can be decomposed: `step` (all of it), `compute_only` (GEMMs alone),
`comm_only` (AG/RS with the same order, no GEMM).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from agrs_bench.config.step_model import OURS, StepModel, prefetch_layers
from agrs_bench.measure.buffers import ShardedBuffer
from agrs_bench.measure.device import Issued
from agrs_bench.measure.kernels import all_gather, reduce_scatter

VARIANTS = ("step", "compute_only", "comm_only")


@dataclass
class Gemm:
    """The compute of one layer: out = a @ b, shape M x K @ K x N."""

    a: torch.Tensor
    b: torch.Tensor
    out: torch.Tensor

    @classmethod
    def make(cls, m: int, n: int, k: int, dtype: torch.dtype, device) -> Gemm:
        gen = torch.Generator(device="cpu").manual_seed(0)
        # Random operands: zeros run faster than real data on some GPUs.
        a = torch.randn(m, k, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)
        b = torch.randn(k, n, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)
        return cls(a, b, torch.empty(m, n, dtype=dtype, device=device))

    def __call__(self) -> None:
        torch.mm(self.a, self.b, out=self.out)


@dataclass
class SpanRing:
    """The GEMM timer pairs of the last calls, created once and reused: a call takes the oldest
    slot once `capacity()` calls are kept, so a long run neither creates two events per layer per
    call nor keeps them all. capacity None keeps every call."""

    make: Callable[[], tuple[Any, Any]]
    capacity: Callable[[], int] | None = None
    calls: deque = field(default_factory=deque)

    def take(self, pairs: int) -> list[tuple[Any, Any]]:
        keep = self.capacity() if self.capacity is not None else None
        if keep is not None and len(self.calls) >= max(1, keep):
            slot = self.calls.popleft()
        else:
            slot = [self.make() for _ in range(pairs)]
        self.calls.append(slot)
        return slot

    def last(self, count: int) -> list[list[tuple[Any, Any]]]:
        if count > len(self.calls):
            raise ValueError(f"{count} calls asked for, {len(self.calls)} kept")
        return list(self.calls)[len(self.calls) - count:]


def reduce_op(name: str, divisor: int, backend: str) -> tuple[Any, float | None, str]:
    """(the ReduceOp the RS passes, the factor its input is scaled by first or None, the op that
    ran). The factor is 1/divisor, Megatron's 1/dp for dense and expert gradients alike
    (megatron_fsdp.py `_init_fsdp_param_and_grad_buffer`); AVG divides by the RS group's size.
    PreMulSum is NCCL's; gloo has none, so there it runs as scale_sum (named so)."""
    scale = 1.0 / divisor
    if name == "premul_sum" and backend == "nccl":
        return dist._make_nccl_premul_sum(scale), None, "premul_sum"
    if name in ("premul_sum", "scale_sum"):
        return dist.ReduceOp.SUM, scale, "scale_sum"
    if name == "avg":
        return dist.ReduceOp.AVG, None, "avg"
    return dist.ReduceOp.SUM, None, "sum"


@dataclass
class FsdpStepKernel:
    """One backward step per call; `compute_s` reads the GEMM times of the last calls."""

    dev: Any
    layers: list[dict[str, ShardedBuffer]]
    groups: dict[str, tuple[Any, Any]]  # buffer kind -> (ag_group, rs_group)
    gemm: Gemm
    variant: str = "step"
    time_compute: bool = True  # timing events cannot be recorded inside a CUDA graph capture
    model: StepModel = OURS
    issue: str = "role_streams"
    """role_streams, or megatron_fsdp: AG async in a coalescing manager (its work handle is what
    compute waits on), RS in a synchronous coalescing manager, as Megatron-FSDP issues them."""
    keep_calls: Callable[[], int] | None = None
    """How many calls' GEMM timers to keep (None: all); see SpanRing."""
    dp_size: int | None = None
    """The dense data-parallel (dp_cp) size: Megatron scales dense and expert gradients by 1/dp.
    None: each buffer's own group size."""
    spans: SpanRing = field(init=False)

    def __post_init__(self) -> None:
        self.spans = SpanRing(lambda: self.dev.span("compute"), self.keep_calls)
        for layer in self.layers:  # scratch the gradient path needs, shared by every kernel of the layers
            for buf in layer.values():
                if self._scale(buf) is not None and buf.grad_comm is None:
                    buf.grad_comm = torch.empty_like(buf.grad_full)
                if self.model.accumulate and buf.main_grad is None:
                    buf.main_grad = torch.zeros_like(buf.grad_shard)

    @property
    def roles(self) -> tuple[str, ...]:
        """The role streams this variant uses: they fork from and join back to the caller's."""
        return {"step": ("ag", "rs", "compute"), "compute_only": ("compute",),
                "comm_only": ("ag", "rs")}[self.variant]

    def _divisor(self, buf: ShardedBuffer) -> int:
        return self.dp_size or len(buf.group_ranks)

    def _op(self, buf: ShardedBuffer) -> tuple[Any, float | None, str]:
        grad = "bf16" if buf.grad_full.dtype == torch.bfloat16 else "fp32"
        return reduce_op(self.model.resolved_reduce_op(grad), self._divisor(buf),
                         "nccl" if self.dev.is_cuda else "gloo")

    def _scale(self, buf: ShardedBuffer) -> float | None:
        return self._op(buf)[1]

    def _input_scale(self, buf: ShardedBuffer) -> int:
        op = self._op(buf)[2]
        return 1 if op == "sum" else len(buf.group_ranks) if op == "avg" else self._divisor(buf)

    @property
    def rs_input_scale(self) -> dict[str, int]:
        """Per buffer kind: the check fills RS inputs with d * b where the op divides by d (the
        group size under AVG, dp when scaling), so the reduced values stay exact counts."""
        return {kind: self._input_scale(buf) for kind, buf in self.layers[0].items()}

    @property
    def rs_tolerance(self) -> float:
        """Relative tolerance of the RS check: 1/d is inexact when d is not a power of two."""
        tolerance = 0.0
        for buf in self.layers[0].values():
            d = self._input_scale(buf)
            if d & (d - 1):
                tolerance = max(tolerance, d * (2.0**-7 if buf.grad_full.dtype == torch.bfloat16 else 2.0**-22))
        return tolerance

    def describe(self) -> dict[str, Any]:
        buf = next(iter(self.layers[0].values()))
        elements = [sum(b.param_full.numel() for b in layer.values()) for layer in self.layers]
        return {"step_model": self.model.record("bf16" if buf.param_full.dtype == torch.bfloat16 else "fp32"),
                "rs_reduce_op_run": self._op(buf)[2], "issue": self.issue,
                "rs_bytes_per_ag_byte": buf.grad_full.element_size() / buf.param_full.element_size(),
                "ag_issued_at_layer": self._ag_schedule(elements)}

    def _ag_schedule(self, elements: list[int]) -> dict[int, list[int]]:
        """Layer backward reaches -> the layers whose AG it issues (the megatron schedule)."""
        if self.model.name == "ours":
            return {i: ([i, i - 1] if i == len(elements) - 1 else [i - 1]) if i else [] for i in
                    reversed(range(len(elements)))}
        issued: dict[int, list[int]] = {}
        for layer in reversed(range(len(elements))):
            issued[layer] = prefetch_layers(layer, elements, {g for v in issued.values() for g in v},
                                            self.model.prefetch)
        return issued

    def _all_gather(self, layer: int) -> list[Issued]:
        issued = []
        for kind, buf in self.layers[layer].items():
            group = self.groups[kind][0]
            if self.issue == "megatron_fsdp":
                with self.dev.role("ag"):
                    with dist._coalescing_manager(group, async_ops=True) as handle:
                        all_gather(buf.param_full, buf.param_shard, group=group, async_op=True)
                issued.append(Issued(None, handle, "ag"))
            else:
                issued.append(self.dev.issue("ag", all_gather, buf.param_full, buf.param_shard, group=group,
                                             record_event=True))
        return issued

    def _wait_gathered(self, issued: Issued) -> None:
        """Compute waits for a layer's AG: its event, or (megatron_fsdp on CUDA) its work handle."""
        if issued.work is not None and self.dev.is_cuda:
            with self.dev.role("compute"):
                issued.work.wait()
        else:
            self.dev.wait("compute", issued)

    def _reduce_scatter(self, layer: int, compute_done: Issued | None, pending: list[Issued]) -> None:
        if self.model.wait_compute:  # Megatron: rs_stream.wait_stream(current_stream)
            self.dev.wait("rs", self.dev.mark("compute"))
        elif compute_done is not None:
            self.dev.wait("rs", compute_done)  # gradients exist only once the layer's compute ran
        for kind, buf in self.layers[layer].items():
            group = self.groups[kind][1]
            op, scale, _ = self._op(buf)
            source = buf.grad_full
            if scale is not None:  # Megatron scales the bucket in place; ours reads it, writes the RS input
                with self.dev.role("rs"):
                    torch.mul(buf.grad_full, scale, out=buf.grad_comm)
                source = buf.grad_comm
            if self.issue == "megatron_fsdp":
                with self.dev.role("rs"):
                    with dist._coalescing_manager(group):
                        reduce_scatter(buf.grad_shard, source, op=op, group=group)
                issued = Issued(None, None, "rs")
            else:
                issued = self.dev.issue("rs", reduce_scatter, buf.grad_shard, source, op=op, group=group)
            pending.append(issued)
            if self.model.accumulate:
                if issued.work is not None and not self.dev.is_cuda:
                    issued.work.wait()  # gloo: the async RS must have written the shard
                with self.dev.role("rs"):
                    buf.main_grad.add_(buf.grad_shard)

    def _compute(self, spans: list[tuple[Any, Any]], index: int) -> None:
        with self.dev.role("compute"):
            if self.time_compute:
                start, end = spans[index]
                start.record()
                self.gemm()
                end.record()
            else:
                self.gemm()

    def __call__(self, pending: list[Issued]) -> None:
        comm = self.variant != "compute_only"
        compute = self.variant != "comm_only"
        spans = self.spans.take(len(self.layers)) if compute and self.time_compute else []
        if comm and self.model.accumulate:
            with self.dev.role("rs"):  # Megatron's zero_grad_buffer: each step accumulates afresh
                for layer in self.layers:
                    for buf in layer.values():
                        buf.main_grad.zero_()
        schedule = self._ours if self.model.name == "ours" else self._megatron
        gathered = schedule(comm, compute, spans, pending)
        if comm:
            pending.extend(issued for layer_ag in gathered.values() for issued in layer_ag)
        if compute:
            pending.append(Issued(None, None, "compute"))

    def _megatron(self, comm: bool, compute: bool, spans: list, pending: list[Issued]) -> dict[int, list[Issued]]:
        """Backward reaches layer i: AG of i and what the prefetch limit adds (after the compute
        queued so far, with wait_compute), compute of i, then i's gradients."""
        num_layers = len(self.layers)
        elements = [sum(b.param_full.numel() for b in layer.values()) for layer in self.layers]
        gathered: dict[int, list[Issued]] = {}
        for position, layer in enumerate(reversed(range(num_layers))):
            if comm:
                todo = prefetch_layers(layer, elements, set(gathered), self.model.prefetch)
                if todo and self.model.wait_compute:  # all_gather_stream.wait_stream(current_stream)
                    self.dev.wait("ag", self.dev.mark("compute"))
                for wanted in todo:
                    gathered[wanted] = self._all_gather(wanted)
            done = None
            if compute:
                for issued in gathered.get(layer, []):
                    self._wait_gathered(issued)
                self._compute(spans, position)
                done = self.dev.mark("compute")
            if comm:
                self._reduce_scatter(layer, done, pending)
        return gathered

    def _ours(self, comm: bool, compute: bool, spans: list, pending: list[Issued]) -> dict[int, list[Issued]]:
        """The schedule agrs_bench modelled first: prefetch AG of layer i-1 beside compute of
        layer i, RS of layer i+1 issued after compute of layer i."""
        num_layers = len(self.layers)
        gathered: dict[int, list[Issued]] = {}
        computed: dict[int, Issued | None] = {}
        if comm:
            gathered[num_layers - 1] = self._all_gather(num_layers - 1)
        for position, layer in enumerate(reversed(range(num_layers))):
            if comm and layer > 0:
                gathered[layer - 1] = self._all_gather(layer - 1)  # prefetch, beside this compute
            if compute:
                for issued in gathered.get(layer, []):
                    self._wait_gathered(issued)  # parameters must be gathered first
                self._compute(spans, position)
                computed[layer] = self.dev.mark("compute")
            if comm and layer + 1 < num_layers:
                self._reduce_scatter(layer + 1, computed.get(layer + 1), pending)
        if comm:
            self._reduce_scatter(0, computed.get(0), pending)
        return gathered

    def compute_s(self, last_calls: int) -> list[float]:
        """Summed GEMM time of each of the last `last_calls` calls (read after a synchronize)."""
        return [sum(start.elapsed_s(end) for start, end in spans) for spans in self.spans.last(last_calls)]
