"""`fsdp_step`: a backward-like schedule of L layers, the way FSDP overlaps it.

For layer i (from the last to the first): prefetch AG of layer i-1 on the AG stream, compute of
layer i on the compute stream (a GEMM that waits for layer i's AG), RS of layer i+1 on the RS
stream (waits for layer i+1's compute). Each layer has a dense bucket and, when asked, an expert
bucket. The same kernel runs in three variants so the step can be decomposed:
`step` (all of it), `compute_only` (GEMMs alone), `comm_only` (AG/RS with the same order, no GEMM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

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
class FsdpStepKernel:
    """One backward step per call; `compute_spans` keeps the GEMM timer pairs of every call."""

    dev: Any
    layers: list[dict[str, ShardedBuffer]]
    groups: dict[str, tuple[Any, Any]]  # buffer kind -> (ag_group, rs_group)
    gemm: Gemm
    variant: str = "step"
    time_compute: bool = True  # timing events cannot be recorded inside a CUDA graph capture
    compute_spans: list[list[tuple[Any, Any]]] = field(default_factory=list)

    @property
    def roles(self) -> tuple[str, ...]:
        """The role streams this variant uses: they fork from and join back to the caller's."""
        return {"step": ("ag", "rs", "compute"), "compute_only": ("compute",),
                "comm_only": ("ag", "rs")}[self.variant]

    def _all_gather(self, layer: int) -> list[Issued]:
        return [
            self.dev.issue("ag", all_gather, buf.param_full, buf.param_shard,
                           group=self.groups[kind][0], record_event=True)
            for kind, buf in self.layers[layer].items()
        ]

    def _reduce_scatter(self, layer: int, compute_done: Issued | None, pending: list[Issued]) -> None:
        if compute_done is not None:
            self.dev.wait("rs", compute_done)  # gradients exist only once the layer's compute ran
        for kind, buf in self.layers[layer].items():
            pending.append(self.dev.issue("rs", reduce_scatter, buf.grad_shard,
                                          buf.grad_full, group=self.groups[kind][1]))

    def __call__(self, pending: list[Issued]) -> None:
        comm = self.variant != "compute_only"
        compute = self.variant != "comm_only"
        num_layers = len(self.layers)
        gathered: dict[int, list[Issued]] = {}
        computed: dict[int, Issued | None] = {}
        spans = []
        if comm:
            gathered[num_layers - 1] = self._all_gather(num_layers - 1)
        for layer in reversed(range(num_layers)):
            if comm and layer > 0:
                gathered[layer - 1] = self._all_gather(layer - 1)  # prefetch, beside this compute
            if compute:
                for issued in gathered.get(layer, []):
                    self.dev.wait("compute", issued)  # parameters must be gathered first
                if self.time_compute:
                    start, end = self.dev.span("compute")
                    with self.dev.role("compute"):
                        start.record()
                        self.gemm()
                        end.record()
                    spans.append((start, end))
                else:
                    with self.dev.role("compute"):
                        self.gemm()
                computed[layer] = self.dev.mark("compute")
            if comm and layer + 1 < num_layers:
                self._reduce_scatter(layer + 1, computed.get(layer + 1), pending)
        if comm:
            self._reduce_scatter(0, computed.get(0), pending)
            pending.extend(issued for layer_ag in gathered.values() for issued in layer_ag)
        if compute:
            pending.append(Issued(None, None, "compute"))
        self.compute_spans.append(spans)

    def compute_s(self, last_calls: int) -> list[float]:
        """Summed GEMM time of each of the last `last_calls` calls (read after a synchronize)."""
        return [sum(start.elapsed_s(end) for start, end in spans)
                for spans in self.compute_spans[-last_calls:]]
