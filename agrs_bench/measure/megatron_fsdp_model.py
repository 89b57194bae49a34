"""The transformer-shaped module Megatron-FSDP's own step wraps: L blocks of one rank's share.

Each block holds the parameters of one layer as a rank of the layout holds them (config.models):
attention projections and a SwiGLU MLP (dense: sharded over dp_cp) and the rank's routed experts
(`experts.w_in`, `experts.w_out`: named with `.experts.` and marked `allreduce = False`, which is
how Megatron-FSDP tells expert parameters apart and shards them over the expert-DP group:
megatron_fsdp.py `MegatronFSDP._check_module_parameter_types`, `broadcast_params`). Attention's
softmax is left out: it has no parameters and changes no communication. Tokens are routed evenly:
each local expert computes tokens * top_k * ep / experts rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True, kw_only=True)
class BlockShape:
    """One rank's share of one layer, in elements."""

    hidden: int
    qkv_out: int
    """Output width of the fused q, k, v projection (per tp rank)."""
    attn_out: int
    """Input width of the output projection (heads * head_dim per tp rank)."""
    mlp_ffn: int
    """Dense SwiGLU width per tp rank (0: no dense MLP)."""
    local_experts: int
    expert_ffn: int
    """One expert's SwiGLU width per etp rank."""
    expert_tokens: int
    """Rows each local expert computes per step."""

    @property
    def dense_params(self) -> int:
        return self.hidden * (self.qkv_out + self.attn_out + 3 * self.mlp_ffn)

    @property
    def expert_params(self) -> int:
        return 3 * self.local_experts * self.hidden * self.expert_ffn


class Experts(nn.Module):
    """The rank's routed experts as grouped weights (Megatron's GroupedMLP keeps them so too)."""

    def __init__(self, shape: BlockShape, dtype: torch.dtype, device) -> None:
        super().__init__()
        e, h, f = shape.local_experts, shape.hidden, shape.expert_ffn
        self.w_in = nn.Parameter(torch.empty(e, h, 2 * f, dtype=dtype, device=device))
        self.w_out = nn.Parameter(torch.empty(e, f, h, dtype=dtype, device=device))
        for weight in (self.w_in, self.w_out):
            weight.allreduce = False  # Megatron's mark of an expert-parallel parameter
        self.rows = shape.expert_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x[: min(self.rows, x.shape[0])].unsqueeze(0).expand(self.w_in.shape[0], -1, -1)
        gate, up = torch.bmm(rows, self.w_in).chunk(2, dim=-1)
        out = torch.bmm(nn.functional.silu(gate) * up, self.w_out).sum(0)
        return nn.functional.pad(out, (0, 0, 0, x.shape[0] - out.shape[0]))


class Block(nn.Module):
    """One layer: Megatron-FSDP's unit module (fsdp_unit_modules), gathered and freed as one."""

    def __init__(self, shape: BlockShape, dtype: torch.dtype, device) -> None:
        super().__init__()
        kw = {"bias": False, "dtype": dtype, "device": device}
        self.qkv = nn.Linear(shape.hidden, shape.qkv_out, **kw)
        self.proj = nn.Linear(shape.attn_out, shape.hidden, **kw)
        self.attn_out = shape.attn_out
        self.mlp_in = nn.Linear(shape.hidden, 2 * shape.mlp_ffn, **kw) if shape.mlp_ffn else None
        self.mlp_out = nn.Linear(shape.mlp_ffn, shape.hidden, **kw) if shape.mlp_ffn else None
        self.experts = Experts(shape, dtype, device) if shape.local_experts else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.proj(self.qkv(x)[:, : self.attn_out])
        out = x
        if self.mlp_in is not None:
            gate, up = self.mlp_in(x).chunk(2, dim=-1)
            out = out + self.mlp_out(nn.functional.silu(gate) * up)
        if self.experts is not None:
            out = out + self.experts(x)
        return out


class Stack(nn.Module):
    def __init__(self, shape: BlockShape, num_layers: int, dtype: torch.dtype, device, seed: int = 0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Block(shape, dtype, device) for _ in range(num_layers))
        gen = torch.Generator(device="cpu").manual_seed(seed)
        with torch.no_grad():  # every rank and every copy starts from the same weights
            for param in self.parameters():  # GPT-style init: N(0, 0.02)
                param.copy_(torch.randn(param.shape, generator=gen) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def mark_experts(module: nn.Module) -> None:
    """Set the expert mark again (a deep copy of the module need not keep parameter attributes)."""
    for name, param in module.named_parameters():
        if ".experts." in name:
            param.allreduce = False


def expert_names(module: nn.Module) -> list[str]:
    """Parameters Megatron-FSDP treats as expert parameters: `.experts.` in the name, not allreduce."""
    return [name for name, p in module.named_parameters()
            if ".experts." in name and not getattr(p, "allreduce", True)]
