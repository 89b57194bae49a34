"""`mfsdp_step`: Megatron-FSDP's own step, timed beside a compute-only reference.

The module of megatron_fsdp_model (L blocks of the run's shape) is wrapped with
`megatron_fsdp.fully_shard_model` once per group source, always over the same device meshes (their
fsdp dimension is the layout's dp_cp groups, for experts its expt_dp groups: Megatron-FSDP's RS
groups). What differs between sources is only the AG group handed to Megatron-FSDP:
`fsdp_group_ag` / `expt_fsdp_group_ag` = the source's AG group of that buffer kind, or None where
the source's AG shares its RS communicator (single_comm; global_state's experts; ep = 1), so that
Megatron-FSDP then gathers on its RS group, as it does without an AG group.

A step is what a training iteration runs: `zero_grad_buffer()`, forward, backward; with
`sync_model_each_microbatch` (the default) Megatron-FSDP's root post-backward hook reduce-scatters
the gradients and waits for them (megatron_fsdp.py `_root_post_backward` -> `finish_grad_sync`).
The compute-only part runs forward and backward of the same module unsharded (a copy taken
before wrapping), no communication. Every step part and the compute-only part are sampled in the
same rounds (timing.Sampler), so exposed time (step - compute only) gets a paired interval. Before
timing, each source's gradients after one step must equal the unsharded module's (relative
error of the norm within the dtype's tolerance), on every rank.
"""

from __future__ import annotations

import copy
import importlib.metadata
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from agrs_bench.config.cell import Cell
from agrs_bench.config.models import ModelShape
from agrs_bench.config.run_config import RunConfig
from agrs_bench.groups import ag_shares_rs_comm
from agrs_bench.measure import buffers as bufs
from agrs_bench.measure.cells import Context, _common, agree_on_check, plan_of
from agrs_bench.measure.megatron_fsdp_model import Block, BlockShape, Stack, mark_experts
from agrs_bench.measure.timing import Part, Sampler
from agrs_bench.results.measured import Measured, StepParts
from agrs_bench.vocab import RS_GROUP_KIND

# Every argument agrs_bench passes to fully_shard_model: Megatron-FSDP 0.6.1's defaults
# (megatron_fsdp/fully_shard.py fully_shard_model) except where a comment says why.
SETTINGS: dict[str, Any] = {
    "zero_dp_strategy": "optim_grads_params",  # ZeRO-3: the parameter AG this benchmark is about
    "overlap_grad_reduce": True,
    "overlap_param_gather": True,
    "sync_model_each_microbatch": True,
    "average_in_collective": False,
    "disable_bucketing": False,
    "nccl_ub": False,
    "fsdp_double_buffer": False,
    "disable_symmetric_registration": False,
    "cuda_graph_mode": False,
    "calculate_per_token_loss": False,
    "preproc_state_dict_for_dcp_ckpt": False,  # no checkpoint is written
}
MIXED_PRECISION = "MixedPrecisionPolicy() defaults: main_params_dtype float32, main_grads_dtype and " \
                  "grad_comm_dtype None (the parameter dtype)"
GRAD_TOLERANCE = {"bf16": 1e-2, "fp32": 1e-4}
"""Relative error of a gradient's norm against the unsharded module's: bf16 keeps 8 bits."""


def version() -> str:
    return importlib.metadata.version("megatron-fsdp")


def block_shape(cfg: RunConfig, size_bytes: int, tokens: int) -> BlockShape:
    """One rank's block: from --model (config.models) when given, else a generic layer whose
    dense parameters fill `size_bytes` (attention 4h^2 + SwiGLU of 4h: 16h^2) and whose experts
    (8 per ep rank, SwiGLU of 2h/3, top-2) hold about the same bytes again."""
    element = bufs.DTYPES[cfg.dtype].itemsize
    lay = cfg.layout
    experts_on = "expert" in cfg.buffers
    shape: ModelShape | None = cfg.model
    if shape is None:
        hidden = max(128, int((size_bytes / element / 16) ** 0.5) // 128 * 128)
        shape = ModelShape(name="generic", hidden=hidden, ffn=4 * hidden, layers=cfg.step_layers,
                           heads=hidden // 128, kv_heads=hidden // 128, experts=8 * lay.ep, top_k=2,
                           moe_ffn=max(1, 2 * hidden // 3))
    tp, ep, etp = lay.tp, lay.ep, lay.etp
    head = shape.head_size
    local = shape.experts // ep if experts_on and shape.experts else 0
    return BlockShape(hidden=shape.hidden, qkv_out=(shape.heads // tp + 2 * shape.kv_heads_per_rank(tp)) * head,
                      attn_out=shape.heads * head // tp,
                      mlp_ffn=(shape.ffn + shape.shared_ffn) // tp if "dense" in cfg.buffers else 0,
                      local_experts=local, expert_ffn=shape.moe_ffn // etp if local else 0,
                      expert_tokens=max(1, tokens * max(1, shape.top_k) * ep // max(1, shape.experts)))


def _mesh(rank_lists: list[list[int]], device_type: str) -> Any:
    """A (groups, group size, 1) mesh named (dp_other, fsdp, tp): its fsdp dimension's groups are
    exactly the layout's groups (ranks sorted, the order torch's new_group gives them)."""
    from torch.distributed.device_mesh import DeviceMesh

    rows = sorted(sorted(ranks) for ranks in rank_lists)
    return DeviceMesh(device_type, torch.tensor(rows, dtype=torch.int64).unsqueeze(-1),
                      mesh_dim_names=("dp_other", "fsdp", "tp"))


@dataclass
class MfsdpStep:
    """One training step of the wrapped module per call, on the current stream (Megatron-FSDP
    forks its own AG and RS side streams from it and joins them back)."""

    model: Any
    tokens: torch.Tensor

    roles = ()

    def __call__(self, pending: list) -> None:
        self.model.zero_grad_buffer()
        out = self.model(self.tokens)
        out.float().mean().backward()


@dataclass
class ComputeOnly:
    """The same step of the unsharded module: no communication at all."""

    module: torch.nn.Module
    tokens: torch.Tensor

    roles = ()

    def __call__(self, pending: list) -> None:
        self.module.zero_grad(set_to_none=False)
        self.module(self.tokens).float().mean().backward()


def _full_grad(grad: Any) -> torch.Tensor:
    from megatron_fsdp.uneven_dtensor import uneven_dtensor_to_full_tensor
    from torch.distributed.tensor import DTensor

    return uneven_dtensor_to_full_tensor(grad) if isinstance(grad, DTensor) else grad


def grad_problems(model: Any, expected: dict[str, torch.Tensor], tolerance: float) -> list[str]:
    """Collective (gathers sharded gradients): names whose gradient differs from the unsharded one."""
    found = []
    for name, param in model.module.named_parameters():
        if param.grad is None:
            found.append(f"{name}: no gradient after the step")
            continue
        got = _full_grad(param.grad).float().reshape(expected[name].shape)
        want = expected[name].float()
        error = float((got - want).norm() / want.norm().clamp_min(1e-30))
        if not error <= tolerance:
            found.append(f"{name}: gradient norm error {error:.3g} > {tolerance:g}")
    return found


def _wrap(module: torch.nn.Module, cfg: RunConfig, ctx: Context, source: Any, meshes: dict[str, Any]) -> Any:
    from megatron_fsdp import fully_shard_model

    ag = {kind: None if ag_shares_rs_comm(source, kind) else source.group(kind, "ag") for kind in cfg.buffers}
    return fully_shard_model(module, device_mesh=meshes["dense"], dp_shard_dim="fsdp", tp_dim="tp",
                             expt_device_mesh=meshes.get("expert"), fsdp_group_ag=ag.get("dense"),
                             expt_fsdp_group_ag=ag.get("expert"), fsdp_unit_modules=[Block],
                             device=ctx.dev.device, **SETTINGS), ag


def measure(ctx: Context, comparison: str, cells: list[Cell]) -> list[Measured]:
    """Megatron-FSDP's step under every source of one shape, with the compute-only part."""
    cfg, first = ctx.cfg, cells[0]
    dtype, device = bufs.DTYPES[cfg.dtype], ctx.dev.device
    shape = block_shape(cfg, first.size_bytes, cfg.tokens)
    kinds = [k for k in cfg.buffers if k == "dense" or shape.local_experts]
    meshes = {kind: _mesh(cfg.layout.rank_lists(RS_GROUP_KIND[kind]), device.type) for kind in kinds}
    reference = Stack(shape, cfg.step_layers, dtype, device)
    gen = torch.Generator(device="cpu").manual_seed(1)  # the same tokens on every rank: the DP mean
    tokens = (torch.randn(cfg.tokens, shape.hidden, generator=gen) * 0.5).to(device=device, dtype=dtype)
    compute = ComputeOnly(reference, tokens)
    compute(None)
    expected = {name: p.grad.detach().clone() for name, p in reference.named_parameters()}
    reference.zero_grad(set_to_none=True)
    parts, ag_groups = [Part(f"compute_only:{comparison}", ctx.dev, compute, ())], {}
    for cell in cells:
        source = ctx.sources[(cell.source, cell.nccl_options)]
        module = copy.deepcopy(reference)
        mark_experts(module)
        model, ag_groups[cell.name] = _wrap(module, cfg, ctx, source, meshes)
        name = cell.name

        def check(run_sample, model=model, name=name) -> None:
            run_sample()
            ctx.dev.synchronize()
            agree_on_check(name, ctx.rank, grad_problems(model, expected, GRAD_TOLERANCE[cfg.dtype]))
        parts.append(Part(f"step:{name}", ctx.dev, MfsdpStep(model, tokens), (), check if cfg.check else None))
    samples = Sampler(parts, plan_of(cfg, "eager")).run()
    settings = {"megatron_fsdp_version": version(), "megatron_fsdp_settings": dict(SETTINGS),
                "megatron_fsdp_mixed_precision": MIXED_PRECISION, "fsdp_unit_modules": ["Block"],
                "layers": cfg.step_layers, "tokens": cfg.tokens, "block_shape": vars(shape),
                "dense_params_per_layer": shape.dense_params, "expert_params_per_layer": shape.expert_params,
                "grads_checked": cfg.check, "grad_tolerance": GRAD_TOLERANCE[cfg.dtype],
                "compute_only_method": "forward+backward of the same module unsharded, no communication",
                "group_sizes": {kind: len(r) for kind, r in ctx.group_ranks.items()},
                "group_ranks": dict(ctx.group_ranks)}
    if cfg.model is not None:
        settings["model"] = cfg.model.name
    compute_only = StepParts(compute_only=samples.per_iter_s[f"compute_only:{comparison}"], comm_only=None)
    measured = []
    for cell in cells:
        name = cell.name
        measured.append(Measured(
            cell=cell, group_size=len(ctx.group_ranks[cfg.buffers[0]]), data=samples.per_iter_s[f"step:{name}"],
            settings={**_common(ctx, cell, comparison), **settings,
                      "megatron_fsdp_ag_groups": {k: g is not None for k, g in ag_groups[name].items()}},
            samples=samples.sample_figures(f"step:{name}"), parts=compute_only,
            warnings=tuple(samples.short_warnings(f"step:{name}"))))
    if dist.is_initialized():
        dist.barrier()
    return measured
