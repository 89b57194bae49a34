"""--model presets: per-rank layer bytes from public model cards, worked by hand; and what a run
refuses about them and about Megatron-FSDP's own step (exit 2, one line, nothing written)."""

import pytest

from agrs_bench import __main__ as entry
from agrs_bench.config import models
from agrs_bench.config.cli import parse_run_args
from agrs_bench.errors import ConfigError
from tests.support.launch import FAST


def test_llama3_8b_layer_worked_by_hand():
    # q, o: 4096 x 32*128; k, v: 4096 x 8*128 -> 4096*128*(64+16) = 41,943,040
    # SwiGLU 14336: 3*4096*14336 = 176,160,768; the layer 218,103,808 params, 436,207,616 bf16 bytes
    # (32 layers = 6.98B + 1.05B of embeddings and head = the card's 8.0B).
    shape = models.PRESETS["llama3-8b"]
    assert shape.attention_params() == 41_943_040
    got = models.layer_bytes(shape, tp=1, ep=1, etp=1, element_bytes=2)
    assert (got.dense_params, got.expert_params, got.dense_bytes) == (218_103_808, 0, 436_207_616)
    # tp 2: q, o and the MLP halve; 8 kv heads split 4 per rank: 4096*128*(32+8) + 176,160,768/2
    assert models.layer_bytes(shape, tp=2, ep=1, etp=2, element_bytes=2).dense_params == 20_971_520 + 88_080_384


def test_mixtral_experts_split_over_ep_and_etp():
    # One expert: 3*4096*14336 = 176,160,768; 8 experts = 1,409,286,144 (+ attention 41.9M: 32 layers
    # give 46.4B, the card's 46.7B with embeddings). ep 2: 4 local experts; etp 2 halves each.
    shape = models.PRESETS["mixtral-8x7b"]
    assert models.layer_bytes(shape, tp=1, ep=1, etp=1, element_bytes=2).expert_params == 1_409_286_144
    got = models.layer_bytes(shape, tp=1, ep=2, etp=2, element_bytes=4)
    assert (got.local_experts, got.expert_params, got.expert_bytes) == (4, 352_321_536, 1_409_286_144)
    assert got.dense_params == 41_943_040  # no dense MLP: every layer's MLP is the experts


def test_qwen3_moe_layer_worked_by_hand():
    # head_dim 128 (not 2048/32): attention 2048*128*(64+8) = 18,874,368; 128 experts of
    # 3*2048*768 = 4,718,592 -> 603,979,776; 48 layers = 29.9B + 0.6B embeddings = the card's 30.5B.
    got = models.layer_bytes(models.PRESETS["qwen3-30b-a3b"], tp=1, ep=8, etp=1, element_bytes=2)
    assert (got.dense_params, got.local_experts, got.expert_params) == (18_874_368, 16, 75_497_472)


def test_every_preset_names_its_source():
    for shape in models.PRESETS.values():
        assert shape.source.startswith("https://huggingface.co/")


def test_toml_shape_and_its_errors(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "tiny"\nhidden = 256\nlayers = 2\nheads = 4\nkv_heads = 2\nffn = 512\n')
    shape = models.resolve(str(path))
    assert models.layer_bytes(shape, tp=1, ep=1, etp=1, element_bytes=2).dense_params == \
        256 * 64 * (8 + 4) + 3 * 256 * 512
    path.write_text('hidden = 256\nlayers = 2\nheads = 4\nkv_heads = 3\n')
    with pytest.raises(ConfigError, match="kv_heads 3"):
        models.resolve(str(path))
    path.write_text('hidden = "big"\nlayers = 2\nheads = 4\nkv_heads = 2\n')
    with pytest.raises(ConfigError, match="hidden = 'big'"):
        models.resolve(str(path))


def test_split_that_does_not_divide_is_named():
    with pytest.raises(ConfigError, match="experts 8 does not split over 3"):
        models.layer_bytes(models.PRESETS["mixtral-8x7b"], tp=1, ep=3, etp=1, element_bytes=2)


def test_run_derives_step_bytes_from_the_model_and_records_them():
    cfg = parse_run_args(["--modes", "fsdp_step", "--model", "mixtral-8x7b", "--ep", "2", "--layers", "2"],
                         world_size=4, backend="gloo")
    record = cfg.record()["model"]
    assert cfg.step_sizes_bytes == (41_943_040 * 2,)  # dense: attention only, bf16
    assert record["expert_bytes_per_layer"] == 4 * 176_160_768 * 2 and record["local_experts"] == 4
    assert cfg.step_bytes("expert", cfg.step_sizes_bytes[0]) == 4 * 176_160_768 * 2
    assert "mixtral-8x7b" in models.summary_line(record)


def test_model_and_step_sizes_together_is_refused():
    with pytest.raises(ConfigError, match="--model and --step-sizes"):
        parse_run_args(["--model", "llama3-8b", "--step-sizes", "1MiB"], world_size=2, backend="gloo")


@pytest.mark.parametrize("argv, needle", [
    (["--modes", "mfsdp_step"], "mfsdp_step needs CUDA"),
    (["--model", "llama9"], "'llama9'"),
])
def test_refused_before_launch_with_one_line(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as info:
        entry.main(["run", *FAST, "--backend", "gloo", *argv])
    lines = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(lines) == 1 and needle in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_missing_megatron_fsdp_is_named(monkeypatch):
    import importlib.util

    from agrs_bench.config import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "megatron_fsdp" else real(name, *a))
    with pytest.raises(ConfigError, match="needs megatron_fsdp"):
        cli.require_megatron_fsdp()


def test_megatron_fsdp_module_has_the_presets_bytes_and_marks_its_experts():
    import copy

    import torch

    from agrs_bench.measure.megatron_fsdp_model import Stack, expert_names, mark_experts
    from agrs_bench.measure.megatron_fsdp_step import block_shape

    cfg = parse_run_args(["--modes", "fsdp_step", "--model", "qwen3-30b-a3b", "--ep", "2"], world_size=4,
                         backend="gloo")
    shape = block_shape(cfg, cfg.step_sizes_bytes[0], tokens=4096)
    derived = cfg.model_bytes()
    assert (shape.dense_params, shape.expert_params) == (derived.dense_params, derived.expert_params)
    assert shape.expert_tokens == 4096 * 8 * 2 // 128  # even routing: tokens * top_k * ep / experts
    tiny = parse_run_args(["--modes", "fsdp_step", "--step-sizes", "64KiB"], world_size=2, backend="gloo")
    small = block_shape(tiny, tiny.step_sizes_bytes[0], tokens=8)
    module = Stack(small, 2, torch.float32, "cpu")
    twin = copy.deepcopy(module)
    mark_experts(twin)
    assert expert_names(twin) == ["layers.0.experts.w_in", "layers.0.experts.w_out",
                                  "layers.1.experts.w_in", "layers.1.experts.w_out"]
    twin(torch.randn(8, small.hidden)).mean().backward()
    assert all(p.grad is not None for p in twin.parameters())


def test_resume_restores_the_model_and_the_step_model():
    cfg = parse_run_args(["--model", "mixtral-8x7b", "--modes", "fsdp_step", "--tokens", "1024",
                          "--step-model", "ours"], world_size=2, backend="gloo")
    again = parse_run_args(["--resume", "old"], world_size=2, backend="gloo", stored=lambda _: cfg.record())
    assert (again.model, again.tokens, again.step_model) == (cfg.model, 1024, cfg.step_model)
    assert again.step_sizes_bytes == cfg.step_sizes_bytes
