"""`--model`: transformer shapes users recognise, and the per-rank bytes a layer moves.

A preset is the shape printed in a public model card's config (each number's source below). The
step (`fsdp_step`, `mfsdp_step`) takes from it, per layer, the dense parameters (attention and, where
the model has one, the dense or shared-expert MLP) and the expert parameters (the routed experts),
as one rank of the layout holds them before FSDP shards them over its data-parallel group:

    dense  = (q + k + v + o + dense MLP) / tp        (attention heads and MLP width split over tp;
                                                      k and v replicated where tp > kv_heads)
    expert = (experts / ep) * expert MLP / etp        (experts over ep, each expert over etp)

q and o are hidden x heads*head_dim, k and v hidden x kv_heads*head_dim; a SwiGLU MLP of width F is
3 * hidden * F. Norms, biases, router and embeddings are left out (well under 1% of a layer).
Pure arithmetic: no torch.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from typing import Any

from agrs_bench.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    """One transformer's layer shape (Hugging Face config names in the comments)."""

    name: str
    """The preset's name, or the TOML file's `name`."""
    hidden: int
    """hidden_size."""
    layers: int
    """num_hidden_layers."""
    heads: int
    """num_attention_heads."""
    kv_heads: int
    """num_key_value_heads (grouped-query attention)."""
    ffn: int = 0
    """intermediate_size of the dense SwiGLU MLP; 0 where every layer's MLP is the routed experts."""
    head_dim: int = 0
    """head_dim; 0: hidden // heads."""
    experts: int = 0
    """Routed experts per layer (num_local_experts / num_experts); 0: a dense model."""
    top_k: int = 0
    """Experts each token is routed to (num_experts_per_tok)."""
    moe_ffn: int = 0
    """Width of one routed expert's SwiGLU MLP (moe_intermediate_size)."""
    shared_ffn: int = 0
    """Width of the always-on shared expert(s) MLP, counted as dense."""
    source: str = ""
    """Where the numbers come from."""

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "heads", "kv_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model {self.name!r}: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("ffn", "head_dim", "experts", "top_k", "moe_ffn", "shared_ffn"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model {self.name!r}: {name} must be >= 0, got {getattr(self, name)}")
        if self.heads % self.kv_heads:
            raise ConfigError(f"model {self.name!r}: heads {self.heads} is not a multiple of kv_heads "
                              f"{self.kv_heads}")
        if bool(self.experts) != bool(self.moe_ffn) or (self.experts and not 1 <= self.top_k <= self.experts):
            raise ConfigError(f"model {self.name!r}: experts {self.experts}, moe_ffn {self.moe_ffn} and "
                              f"top_k {self.top_k} must be all zero or experts, moe_ffn >= 1 and "
                              "1 <= top_k <= experts")

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden // self.heads

    def kv_heads_per_rank(self, tp: int) -> int:
        """Key/value heads one tp rank holds: split over tp, or one replicated where tp > kv_heads."""
        return max(1, self.kv_heads // tp)

    def attention_params(self, tp: int = 1) -> int:
        """q, k, v and o projections of one layer, one tp rank's share."""
        return self.hidden * self.head_size * (2 * self.heads // tp + 2 * self.kv_heads_per_rank(tp))

    @property
    def dense_mlp_params(self) -> int:
        return 3 * self.hidden * (self.ffn + self.shared_ffn)

    @property
    def expert_params(self) -> int:
        """One routed expert's SwiGLU MLP."""
        return 3 * self.hidden * self.moe_ffn


# Every number from the model's config.json on the Hugging Face Hub (the URL of each preset).
PRESETS: dict[str, ModelShape] = {shape.name: shape for shape in (
    # https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json
    ModelShape(name="llama3-8b", hidden=4096, ffn=14336, layers=32, heads=32, kv_heads=8,
               source="https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json"),
    # https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json
    ModelShape(name="llama3-70b", hidden=8192, ffn=28672, layers=80, heads=64, kv_heads=8,
               source="https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json"),
    # https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json
    # (intermediate_size 14336 is each expert's; num_local_experts 8, num_experts_per_tok 2)
    ModelShape(name="mixtral-8x7b", hidden=4096, layers=32, heads=32, kv_heads=8, experts=8, top_k=2,
               moe_ffn=14336, source="https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json"),
    # https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json
    # (head_dim 128, num_experts 128, num_experts_per_tok 8, moe_intermediate_size 768, no shared expert)
    ModelShape(name="qwen3-30b-a3b", hidden=2048, layers=48, heads=32, kv_heads=4, head_dim=128,
               experts=128, top_k=8, moe_ffn=768,
               source="https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json"),
)}


def load_toml(path: str) -> ModelShape:
    """A custom shape: a TOML file whose keys are ModelShape's fields (name, hidden, layers, ...)."""
    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh)
    except OSError as err:
        raise ConfigError(f"--model {path}: cannot read ({err.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"--model {path}: not valid TOML ({err})") from None
    known = {f.name: f.type for f in fields(ModelShape)}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"--model {path}: unknown key {key!r} (keys: {', '.join(known)})")
        want = str if key in ("name", "source") else int
        if not isinstance(value, want) or isinstance(value, bool):
            raise ConfigError(f"--model {path}: {key} = {value!r} is not a{'n' if want is int else ''} "
                              f"{want.__name__}")
    missing = [k for k in ("hidden", "layers", "heads", "kv_heads") if k not in table]
    if missing:
        raise ConfigError(f"--model {path}: missing key(s) {', '.join(missing)}")
    return ModelShape(**{"name": path, "source": path, **table})


def resolve(text: str) -> ModelShape:
    """A preset name or a TOML file (anything ending in .toml)."""
    if text.endswith(".toml"):
        return load_toml(text)
    if text not in PRESETS:
        raise ConfigError(f"--model {text!r} is not a preset ({', '.join(PRESETS)}) or a .toml file")
    return PRESETS[text]


@dataclass(frozen=True, kw_only=True)
class LayerBytes:
    """What one rank holds of one layer before FSDP shards it over its data-parallel group."""

    dense_params: int
    expert_params: int
    local_experts: int
    element_bytes: int

    @property
    def dense_bytes(self) -> int:
        return self.dense_params * self.element_bytes

    @property
    def expert_bytes(self) -> int:
        return self.expert_params * self.element_bytes


def layer_bytes(shape: ModelShape, *, tp: int, ep: int, etp: int, element_bytes: int) -> LayerBytes:
    """Per-rank parameters of one layer under tensor (tp), expert (ep) and expert-tensor (etp)
    parallelism; a size that does not divide is an error naming it."""
    for what, total, parts in (("heads", shape.heads, tp), ("ffn", shape.ffn + shape.shared_ffn, tp),
                               ("experts", shape.experts, ep if shape.experts else 1),
                               ("moe_ffn", shape.moe_ffn, etp if shape.experts else 1)):
        if total % parts:
            raise ConfigError(f"model {shape.name!r}: {what} {total} does not split over {parts} ranks")
    local = shape.experts // ep if shape.experts else 0
    return LayerBytes(dense_params=shape.attention_params(tp) + shape.dense_mlp_params // tp,
                      expert_params=local * shape.expert_params // etp, local_experts=local,
                      element_bytes=element_bytes)


def describe(shape: ModelShape, derived: LayerBytes, *, tp: int, ep: int, etp: int,
             layers: int) -> dict[str, Any]:
    """What a run records (results: config.model) and prints about the shape it used."""
    return {"name": shape.name, "source": shape.source, "hidden": shape.hidden, "ffn": shape.ffn,
            "heads": shape.heads, "kv_heads": shape.kv_heads, "head_dim": shape.head_size,
            "experts": shape.experts, "top_k": shape.top_k, "moe_ffn": shape.moe_ffn,
            "shared_ffn": shape.shared_ffn, "model_layers": shape.layers, "step_layers": layers,
            "tp": tp, "ep": ep, "etp": etp, "local_experts": derived.local_experts,
            "dense_bytes_per_layer": derived.dense_bytes, "expert_bytes_per_layer": derived.expert_bytes}


def summary_line(record: dict[str, Any]) -> str:
    mib = 1024**2
    return (f"model {record['name']} (tp {record['tp']}, ep {record['ep']}, etp {record['etp']}): "
            f"per rank and layer {record['dense_bytes_per_layer'] / mib:.1f} MiB dense, "
            f"{record['expert_bytes_per_layer'] / mib:.1f} MiB expert ({record['local_experts']} local "
            f"experts); {record['step_layers']} of {record['model_layers']} layers per step")
