"""The modelled step (fsdp_step) as Megatron-FSDP runs it: the defaults read from its source, the
prefetch schedule, expert gradient scaling and the preflight's gradient bytes. (The gradient
arithmetic on gloo ranks: tests/gloo/test_measure_step.py.)"""

import pytest

from agrs_bench.config import step_model
from agrs_bench.config.cli import parse_run_args
from agrs_bench.errors import ConfigError


def test_megatron_defaults_match_megatron_fsdp_0_6_1():
    # gradient_reduce_preprocessing: bf16 -> grad.mul_(1/dp) + SUM; other dtypes -> PreMulSum
    model = step_model.StepModel()
    assert model.resolved_reduce_op("bf16") == "scale_sum"
    assert model.resolved_reduce_op("fp32") == "premul_sum"
    assert (model.grad_dtype, model.accumulate, model.wait_compute, model.prefetch) == ("param", True, True, "size")
    assert step_model.MEGATRON_UNIT_FLOOR_ELEMENTS == 1_000_000_000
    cfg = parse_run_args(["--modes", "fsdp_step"], world_size=2, backend="gloo")
    assert cfg.record()["step_model"] == {"name": "megatron", "reduce_op": "scale_sum", "grad_dtype": "bf16",
                                          "accumulate": True, "wait_compute": True, "prefetch": "size"}


def test_ours_is_kept_and_flags_override_one_choice():
    ours = parse_run_args(["--step-model", "ours"], world_size=2, backend="gloo").step_model
    assert ours == step_model.OURS and ours.resolved_reduce_op("bf16") == "sum"
    mixed = parse_run_args(["--reduce-op", "avg", "--grad-dtype", "fp32"], world_size=2, backend="gloo")
    assert mixed.step_model.record("bf16")["reduce_op"] == "avg"
    assert mixed.step_model.record("bf16")["grad_dtype"] == "fp32"
    with pytest.raises(ConfigError, match="'max'"):
        step_model.from_flags("megatron", "max", None, None)


def test_prefetch_by_size_reaches_as_far_as_the_unit_allows():
    # 8 layers of 64 MiB bf16 (33.5M elements): unit = max(1e9, 2 * mean) = 1e9, limit 5e8 elements,
    # so the first AG brings every layer (7 * 33.5M = 235M < 5e8).
    layers = [33_554_432] * 8
    assert step_model.prefetch_layers(7, layers, set(), "size") == [7, 6, 5, 4, 3, 2, 1, 0]
    # 200M-element layers: prefetch stops once 5e8 elements beyond the needed layer are in flight
    # (200M, 400M, then 600M >= 5e8): three layers ahead.
    assert step_model.prefetch_layers(7, [200_000_000] * 8, set(), "size") == [7, 6, 5, 4]
    assert step_model.prefetch_layers(4, [200_000_000] * 8, {7, 6, 5, 4}, "size") == [3, 2, 1]
    # double buffer: at most two layers held; ours: exactly the next one
    assert step_model.prefetch_layers(7, layers, set(), "size_double_buffer") == [7, 6]
    assert step_model.prefetch_layers(7, layers, set(), "one_layer") == [7, 6]
    assert step_model.prefetch_layers(6, layers, {7, 6}, "one_layer") == [5]


def test_expert_gradients_are_scaled_by_the_dense_dp_size_as_megatron_does():
    # megatron_fsdp.py _init_fsdp_param_and_grad_buffer: gradient_scaling_factor and
    # expert_gradient_scaling_factor are both 1 / dp (the dense dp_cp size) without average_in_collective.
    import torch

    from agrs_bench.measure import buffers as bufs
    from agrs_bench.measure.device import CpuHandle
    from agrs_bench.measure.step import FsdpStepKernel, Gemm

    layers = [{"dense": bufs.make_buffer("dense", 256, torch.bfloat16, [0, 1, 2, 3], "cpu"),
               "expert": bufs.make_buffer("expert", 256, torch.bfloat16, [0, 2], "cpu")}]
    gemm = Gemm.make(2, 2, 2, torch.bfloat16, "cpu")
    scaled = FsdpStepKernel(CpuHandle(), layers, {}, gemm, model=step_model.StepModel(), dp_size=4)
    assert scaled._op(layers[0]["expert"])[1] == 0.25 and scaled.rs_input_scale == {"dense": 4, "expert": 4}
    averaged = FsdpStepKernel(CpuHandle(), layers, {}, gemm, model=step_model.StepModel(reduce_op="avg"), dp_size=4)
    assert averaged.rs_input_scale == {"dense": 4, "expert": 2}  # AVG divides by the RS group's size
    assert FsdpStepKernel(CpuHandle(), layers, {}, gemm).rs_input_scale == {"dense": 1, "expert": 1}  # ours: SUM


def test_preflight_counts_the_step_models_gradients():
    from agrs_bench.measure import preflight

    args = ["--modes", "fsdp_step", "--step-sizes", "1GiB", "--layers", "1", "--buffers", "dense", "--no-check",
            "--gemm", "1x1x1"]
    ours = preflight.needed_bytes(parse_run_args([*args, "--step-model", "ours"], world_size=2, backend="gloo"))
    megatron = preflight.needed_bytes(parse_run_args(args, world_size=2, backend="gloo"))
    fp32 = preflight.needed_bytes(parse_run_args([*args, "--grad-dtype", "fp32"], world_size=2, backend="gloo"))
    gib = 1024**3
    # [-1]: the step buckets' need; the GEMM alone is named first (an over-large --gemm is blamed on --gemm)
    assert round(ours[-1][0] / gib, 2) == 3.0  # params 1.5 GiB + gradients 1.5 GiB (2 ranks)
    assert round(megatron[-1][0] / gib, 2) == 4.5  # + the scaled RS input and the main-gradient shard
    assert round(fp32[-1][0] / gib, 2) == 7.5  # fp32 gradients: twice those bytes
