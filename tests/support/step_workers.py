"""Gloo workers of tests/gloo/test_measure_step.py: the modelled step's gradient arithmetic on real ranks."""

from __future__ import annotations

import torch.distributed as dist

from agrs_bench.config.step_model import StepModel
from agrs_bench.measure import buffers as bufs
from agrs_bench.measure.device import CpuHandle
from agrs_bench.measure.step import FsdpStepKernel, Gemm


def step_gradients(rank: int, world: int, reduce_op: str, param_dtype: str, grad_dtype: str, issue: str,
                   steps: int) -> dict:
    """`steps` calls of the step on fixed gradients: every rank's reduced shard, main gradient
    and the expected mean, and the bytes the AG and the RS moved."""
    dev = CpuHandle()
    group = dist.new_group(list(range(world)))
    ag_group = dist.new_group(list(range(world)))
    dtype = bufs.DTYPES[param_dtype]
    layers = [{"dense": bufs.make_buffer("dense", 64 * world, dtype, list(range(world)), "cpu",
                                         grad_dtype=bufs.DTYPES[grad_dtype])} for _ in range(2)]
    model = StepModel(reduce_op=reduce_op, grad_dtype="param" if grad_dtype == param_dtype else "fp32")
    kernel = FsdpStepKernel(dev, layers, {"dense": (ag_group, group)}, Gemm.make(4, 4, 4, dtype, "cpu"),
                            model=model, issue=issue, time_compute=False)
    for layer in layers:  # gradient of rank r = r + 1 everywhere: the DP mean is (n + 1) / 2
        layer["dense"].grad_full.fill_(rank + 1)
        layer["dense"].param_shard.fill_(rank + 1)
    pending: list = []
    for _ in range(steps):
        kernel(pending)
    dev.join(pending)
    buf = layers[0]["dense"]
    return {"reduced": buf.grad_shard.float().tolist(), "main_grad": buf.main_grad.float().tolist(),
            "expected": (world + 1) / 2, "gathered": buf.param_full.float().tolist(),
            "ag_bytes": buf.param_full.numel() * buf.param_full.element_size(),
            "rs_bytes": buf.grad_full.numel() * buf.grad_full.element_size(),
            "op_run": kernel.describe()["rs_reduce_op_run"]}
