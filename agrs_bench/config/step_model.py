"""How the modelled step (`fsdp_step`) issues its gradients and prefetches: Megatron-FSDP's way by
default, every choice with the alternatives Megatron-FSDP itself offers, and ours (the step as
agrs_bench modelled it before) kept as `--step-model ours`.

Each default below was read from megatron-fsdp 0.6.1 (file and function named at the field):

- reduce op: `param_and_grad_buffer.py::gradient_reduce_preprocessing`. With the default
  `average_in_collective=False` and `gradient_reduce_div_fusion=True`
  (`distributed_data_parallel_config.py::DistributedDataParallelConfig`), bf16 gradients are
  scaled in place (`grad_data.mul_(scaling_factor)`, one memory-bound kernel per bucket on the RS
  stream) and reduced with SUM; other dtypes use NCCL's PreMulSum
  (`torch.distributed._make_nccl_premul_sum(scaling_factor)`); AVG only with
  `average_in_collective=True`. The factor is 1/dp (`megatron_fsdp.py::
  MegatronFSDP._init_fsdp_param_and_grad_buffer`).
- gradient dtype: `mixed_precision.py::MixedPrecisionPolicy` `main_grads_dtype=None` and
  `grad_comm_dtype=None`: gradients move in the parameter dtype; fp32 is Megatron's option
  (`megatron_fsdp_main_grads_dtype` / `grad_comm_dtype`), and then RS moves twice AG's bytes.
- accumulation: `param_and_grad_buffer.py::GradReducePipeline._bucket_group_gradient_reduce`
  adds each reduced shard into the main gradient (`local_grad += reduced_grad`) on the RS stream,
  after the RS, in its coalescing manager's stream.
- stream gating: the same function calls `reduce_scatter_stream.wait_stream(current_stream)`,
  and `AllGatherPipeline.all_gather_params` calls `all_gather_stream.wait_stream(
  torch.cuda.current_stream())` before issuing: both wait for everything the compute stream
  has queued so far, not only for the layer they serve.
- prefetch: `megatron_fsdp.py::MegatronFSDP.__init__` sets `suggested_communication_unit_size` to
  twice the mean FSDP-unit parameter count (optim_grads_params), floored at 1e9 elements, and
  the AG prefetch to half of it; `AllGatherPipeline.all_gather_params` adds the next units'
  buckets while the elements already prefetched beyond the needed unit are below that limit, and
  with `fsdp_double_buffer` stops where more than two units would be held (`need_skip_prefetch`).

Not modelled: the RS queue (`suggested_RS_queue_capacity`: Megatron waits for older RSs once the
queued gradients pass the unit size, which bounds memory, not overlap, at these sizes);
coalescing several layers' buckets into one AG call (each layer and buffer kind is its own call
here); the forward pass and its AGs (the step is the backward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agrs_bench.errors import ConfigError

STEP_MODELS = ("megatron", "ours")
REDUCE_OPS = ("auto", "scale_sum", "premul_sum", "avg", "sum")
GRAD_DTYPES = ("param", "fp32")
PREFETCHES = ("size", "size_double_buffer", "one_layer")
MEGATRON_UNIT_FLOOR_ELEMENTS = 1_000_000_000
"""megatron_fsdp.py MegatronFSDP.__init__: max(1_000_000_000, suggested_communication_unit_size)."""


@dataclass(frozen=True, kw_only=True)
class StepModel:
    """The modelled step's choices (recorded in every fsdp_step cell's extra_info.step_model)."""

    name: Literal["megatron", "ours"] = "megatron"
    """megatron: Megatron-FSDP's defaults; ours: agrs_bench's earlier step (no scaling, no
    accumulation, no gating, one layer of prefetch)."""
    reduce_op: Literal["auto", "scale_sum", "premul_sum", "avg", "sum"] = "auto"
    """auto: Megatron's choice for the gradient dtype (bf16: scale_sum, else premul_sum)."""
    grad_dtype: Literal["param", "fp32"] = "param"
    """The dtype gradients are reduce-scattered in."""
    accumulate: bool = True
    """Add every reduced shard into a main-gradient shard after the RS."""
    wait_compute: bool = True
    """AG and RS wait for everything queued on the compute stream before issuing."""
    prefetch: Literal["size", "size_double_buffer", "one_layer"] = "size"
    """size: Megatron's size limit; size_double_buffer: and at most two layers held
    (fsdp_double_buffer, which nccl_ub turns on); one_layer: exactly the next layer."""

    def __post_init__(self) -> None:
        for what, value, allowed in (("step model", self.name, STEP_MODELS),
                                     ("reduce op", self.reduce_op, REDUCE_OPS),
                                     ("gradient dtype", self.grad_dtype, GRAD_DTYPES),
                                     ("prefetch", self.prefetch, PREFETCHES)):
            if value not in allowed:
                raise ConfigError(f"{what} {value!r} is not one of {', '.join(allowed)}")

    def resolved_reduce_op(self, grad_dtype: str) -> str:
        """The op the RS uses for gradients of `grad_dtype` ("bf16" or "fp32")."""
        if self.reduce_op != "auto":
            return self.reduce_op
        return "scale_sum" if grad_dtype == "bf16" else "premul_sum"

    def record(self, param_dtype: str) -> dict:
        grad = self.grad_dtype_for(param_dtype)
        return {"name": self.name, "reduce_op": self.resolved_reduce_op(grad), "grad_dtype": grad,
                "accumulate": self.accumulate, "wait_compute": self.wait_compute, "prefetch": self.prefetch}

    def grad_dtype_for(self, param_dtype: str) -> str:
        return param_dtype if self.grad_dtype == "param" else self.grad_dtype


OURS = StepModel(name="ours", reduce_op="sum", grad_dtype="param", accumulate=False, wait_compute=False,
                 prefetch="one_layer")


def from_flags(name: str, reduce_op: str | None, grad_dtype: str | None, prefetch: str | None,
               accumulate: bool | None = None, wait_compute: bool | None = None) -> StepModel:
    """--step-model with its overrides: a flag left out keeps the model's own choice."""
    if name not in STEP_MODELS:
        raise ConfigError(f"--step-model {name!r} is not one of {', '.join(STEP_MODELS)}")
    base = OURS if name == "ours" else StepModel()
    given = {"reduce_op": reduce_op, "grad_dtype": grad_dtype, "prefetch": prefetch,
             "accumulate": accumulate, "wait_compute": wait_compute}
    return StepModel(**{**{k: getattr(base, k) for k in ("name", *given)},
                        **{k: v for k, v in given.items() if v is not None}})


def prefetch_layers(needed: int, layer_elements: list[int], gathered: set[int], prefetch: str) -> list[int]:
    """The layers whose AG is issued when backward reaches layer `needed` (layers run from the
    last to the first), leaving out those already gathered: Megatron's
    `AllGatherPipeline.all_gather_params` loop for `size`, or just `needed - 1` for `one_layer`."""
    if prefetch == "one_layer":
        wanted = [needed, needed - 1] if needed > 0 else [needed]
    else:
        unit = max(MEGATRON_UNIT_FLOOR_ELEMENTS, 2 * sum(layer_elements) // len(layer_elements))
        limit = unit // 2
        wanted, ahead = [needed], 0
        held = {needed}
        for layer in range(needed - 1, -1, -1):
            if ahead >= limit:
                break
            if prefetch == "size_double_buffer" and len(held | {layer}) > 2:
                break
            wanted.append(layer)
            held.add(layer)
            ahead += layer_elements[layer]
    return [layer for layer in wanted if layer not in gathered]
