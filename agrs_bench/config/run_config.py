"""Run configuration: frozen data, checked once at construction. Nothing else reads argv."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Literal

from agrs_bench.config.bounds import check_run_bounds
from agrs_bench.config.cell import Cell
from agrs_bench.config.models import LayerBytes, ModelShape, describe, layer_bytes
from agrs_bench.config.nccl_options import SWEEP_GRID, NcclOptions, pair_label
from agrs_bench.config.step_model import StepModel
from agrs_bench.errors import ConfigError
from agrs_bench.topology.layout import Layout
from agrs_bench.vocab import (
    ALL_MODES,
    BUFFERS,
    COLLECTIVE_MODES,
    DEFAULT_ISSUE,
    DEFAULT_SOURCES,
    ISSUE_STYLES,
    MODES,
    RS_GROUP_KIND,
    SOURCES,
    STEP_MODES,
)

UNITS = {"": 1, "B": 1, "K": 1024, "KIB": 1024, "M": 1024**2, "MIB": 1024**2, "G": 1024**3,
         "GIB": 1024**3, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
MAX_SIZE_BYTES = 1 << 40
DEFAULT_SAMPLE_MS = 2.0
"""--sample-ms: every timed sample of every part lasts at least this long (the one default)."""
_SIZE_RE = re.compile(r"^\s*([0-9]{1,15})\s*([A-Za-z]*)\s*$")  # ASCII digits: '٤' is no size


def parse_size(text: str) -> int:
    """'64MiB' -> 67108864. Binary units (KiB, MiB, GiB, or K/M/G); KB/MB/GB are decimal."""
    match = _SIZE_RE.match(text)
    unit = match.group(2).upper() if match else None
    if not match or unit not in UNITS:
        raise ConfigError(f"size {text!r} is not a number with an optional unit (B, KiB, MiB, GiB)")
    size = int(match.group(1)) * UNITS[unit]
    if size <= 0:
        raise ConfigError(f"size {text!r} must be positive")
    if size > MAX_SIZE_BYTES:
        raise ConfigError(f"size {text!r} is larger than 1 TiB")
    return size


def parse_sizes(text: str) -> tuple[int, ...]:
    """'1MiB,64MiB' or a geometric range 'START:END:xFACTOR' (END included when reached)."""
    sizes: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if ":" in part:
            pieces = part.split(":")
            if len(pieces) != 3 or not re.fullmatch(r"x[0-9]{1,6}", pieces[2].strip()):
                raise ConfigError(f"size range {part!r} is not START:END:xFACTOR, e.g. 1MiB:1GiB:x4")
            start, end, factor = parse_size(pieces[0]), parse_size(pieces[1]), int(pieces[2].strip()[1:])
            if factor < 2 or end < start:
                raise ConfigError(f"size range {part!r} needs END >= START and a factor >= 2")
            size = start
            while size <= end:
                sizes.append(size)
                size *= factor
        else:
            sizes.append(parse_size(part))
    if not sizes:
        raise ConfigError(f"sizes {text!r} name no size")
    return tuple(dict.fromkeys(sizes))


BACKEND_CHOICES = ("auto", "nccl", "gloo")
SHARD_ALIGN_BYTES = 16
"""Every rank's shard is padded to a multiple of this (measure/buffers.py): what NCCL needs."""


def decide_backend(requested: str, gpus: int, local_ranks: int) -> str:
    """The backend of a run with `local_ranks` ranks on this node and `gpus` GPUs visible here.
    A CUDA host measures its GPUs: too few of them is an error, never a silent CPU run."""
    if requested == "gloo":
        return "gloo"
    if requested not in ("auto", "nccl"):
        raise ConfigError(f"--backend {requested!r} is not one of {', '.join(BACKEND_CHOICES)}")
    if gpus >= local_ranks and gpus > 0:
        return "nccl"
    if gpus == 0 and requested == "auto":
        return "gloo"
    visible = f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}"
    if gpus == 0:
        raise ConfigError(f"--backend nccl: no GPU found on this node ({visible})")
    raise ConfigError(f"{local_ranks} ranks on this node but {gpus} GPU(s) found ({visible}): start "
                      f"at most {gpus} rank(s) per node, or pass --backend gloo to time CPU "
                      "processes instead")


def moved_bytes(size_bytes: int, group_sizes: tuple[int, ...]) -> int:
    """The full-buffer bytes a size really moves: every group's shards padded to 16 bytes."""
    quantum = SHARD_ALIGN_BYTES
    for n in group_sizes:
        quantum = math.lcm(quantum, SHARD_ALIGN_BYTES * n)
    return -(-size_bytes // quantum) * quantum


def parse_choices(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    for item in chosen:
        if item not in allowed:
            raise ConfigError(f"unknown {what} {item!r} (choose from {', '.join(allowed)})")
    if not chosen:
        raise ConfigError(f"{what}s {text!r} name nothing")
    return chosen


def parse_gemm(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"\s*([0-9]{1,9})x([0-9]{1,9})x([0-9]{1,9})\s*", text)
    if not match or min(int(g) for g in match.groups()) < 1:
        raise ConfigError(f"gemm shape {text!r} is not MxNxK with positive sizes, e.g. 4096x4096x4096")
    return tuple(int(g) for g in match.groups())  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything one run measures and how."""

    layout: Layout
    """The parallel layout; its world size is the launched world."""
    backend: Literal["nccl", "gloo"]
    """nccl on GPUs, gloo on CPU."""
    sizes_bytes: tuple[int, ...]
    """Full (unsharded) buffer sizes of the ag/rs/ag_rs cells."""
    dtype: Literal["bf16", "fp32"] = "bf16"
    """Element type of every buffer."""
    modes: tuple[str, ...] = MODES
    """Which kernels to time."""
    buffers: tuple[str, ...] = BUFFERS
    """Dense (sharded over dp_cp) and/or expert (sharded over expt_dp) buffers."""
    sources: tuple[str, ...] = DEFAULT_SOURCES
    """Where the AG groups come from (megatron_core: built by the installed megatron-core)."""
    issues: tuple[str, ...] = (DEFAULT_ISSUE,)
    """How eager ag/rs/ag_rs and fsdp_step cells issue their collectives: role_streams and/or
    megatron_fsdp (CUDA-graph cells always use role_streams)."""
    num_warmup: int = 5
    """Untimed iterations per cell."""
    num_samples: int = 20
    """Timed samples per cell."""
    ops_per_sample: int = 0
    """Back-to-back iterations per sample; 0 picks it from target_sample_ms."""
    target_sample_ms: float = DEFAULT_SAMPLE_MS
    """With ops_per_sample=0: every sample of every part lasts at least this long."""
    step_layers: int = 8
    """fsdp_step: number of layers."""
    step_sizes_bytes: tuple[int, ...] = (64 * 1024**2,)
    """fsdp_step: bucket bytes per layer and buffer kind."""
    gemm_mnk: tuple[int, int, int] = (8192, 8192, 3072)
    """fsdp_step: the per-layer GEMM shape M x N x K."""
    out_dir: str = ""
    """Run directory (results.json, results.csv, report.md)."""
    timeout_s: float = 600.0
    """Process-group timeout: a stuck collective fails the run after this long."""
    check: bool = True
    """Verify AG and RS outputs of every cell against the expected data."""
    hide_launch: bool = True
    """GPU: hold the device while the host queues each sample (see timing.TimingPlan)."""
    telemetry: bool = True
    """Sample GPU clocks, throttle reasons, power and temperature during every cell (NVML)."""
    reference: bool = True
    """Also time ag and rs the way nccl-tests does (N ops between one event pair, one stream)."""
    graph: bool = False
    """Also measure every cell with its timed iterations captured in one CUDA graph."""
    trace: bool = False
    """Record a profiler trace of a few samples of every ag_rs cell (RUN_DIR/traces/)."""
    ag_options: NcclOptions = NcclOptions()
    """NCCL options of the AG groups."""
    rs_options: NcclOptions = NcclOptions()
    """NCCL options of the RS (DP) groups."""
    sweep_nccl_options: bool = False
    """Measure pg_collection under every (AG, RS) options pair of nccl_options.SWEEP_GRID."""
    resume: bool = False
    """Finish the incomplete run in out_dir: keep its finished cells, measure the missing ones."""
    extra: dict = field(default_factory=dict)
    """Free-form notes recorded in results (e.g. the command line)."""
    model: ModelShape | None = None
    """--model: the transformer shape whose per-rank layer bytes the steps use (config.models)."""
    tokens: int = 4096
    """mfsdp_step: tokens per rank and step (the rows of every block's GEMMs)."""
    step_model: StepModel = StepModel()
    """fsdp_step: how its gradients are reduced and its AG prefetched (Megatron-FSDP's defaults)."""

    def __post_init__(self) -> None:
        if self.backend not in ("nccl", "gloo"):
            raise ConfigError(f"backend {self.backend!r} is not nccl or gloo")
        if self.dtype not in ("bf16", "fp32"):
            raise ConfigError(f"dtype {self.dtype!r} is not bf16 or fp32")
        for what, chosen, allowed in (("mode", self.modes, ALL_MODES), ("buffer", self.buffers, BUFFERS),
                                      ("source", self.sources, SOURCES),
                                      ("issue style", self.issues, ISSUE_STYLES)):
            for item in chosen:
                if item not in allowed:
                    raise ConfigError(f"unknown {what} {item!r} (choose from {', '.join(allowed)})")
        for name, flag in (("num_samples", "--iters"), ("step_layers", "--layers")):
            if getattr(self, name) < 1:
                raise ConfigError(f"{flag} must be >= 1, got {getattr(self, name)}")
        if self.num_warmup < 0 or self.ops_per_sample < 0:
            raise ConfigError("--warmup and --ops-per-sample must be >= 0, "
                              f"got {self.num_warmup}, {self.ops_per_sample}")
        if not (math.isfinite(self.target_sample_ms) and self.target_sample_ms > 0):
            raise ConfigError(f"target sample time must be a finite number > 0 ms, got {self.target_sample_ms}")
        if not (math.isfinite(self.timeout_s) and 0 < self.timeout_s <= 86400):
            raise ConfigError(f"timeout must be > 0 s and at most a day, got {self.timeout_s}")
        for buffer in self.buffers:
            kind = RS_GROUP_KIND[buffer]
            size = len(self.layout.rank_lists(kind)[0])
            # A step of one rank still runs its library's code path (NCCL copies locally), the
            # one thing a one-GPU host can show; collectives of one rank measure nothing.
            if size < 2 and not (self.backend == "nccl" and set(self.modes) <= set(STEP_MODES)):
                raise ConfigError(f"buffer {buffer!r}: its {kind} group has {size} rank with this layout "
                                  f"({self.layout.describe()}); AG/RS need at least 2 "
                                  "(change the layout or leave the buffer out with --buffers)")
        if self.backend != "nccl":
            if self.graph:
                raise ConfigError("--graph needs CUDA and NCCL; this run uses gloo on CPU")
            if self.sweep_nccl_options or not (self.ag_options.is_default and self.rs_options.is_default):
                raise ConfigError("NCCL options need the nccl backend; this run uses gloo on CPU "
                                  f"(ag: {self.ag_options.label()}, rs: {self.rs_options.label()})")
        if "mfsdp_step" in self.modes and self.backend != "nccl":
            raise ConfigError("--modes mfsdp_step needs CUDA: Megatron-FSDP creates CUDA streams; "
                              "this run uses gloo on CPU")
        if self.tokens < 1:
            raise ConfigError(f"tokens must be >= 1, got {self.tokens}")
        if self.sweep_nccl_options and "pg_collection" not in self.sources:
            raise ConfigError("--sweep-nccl-options sweeps pg_collection, which --sources leaves out")
        check_run_bounds(self)

    def step_bytes(self, kind: str, size_bytes: int) -> int:
        """A step layer's bucket bytes of buffer `kind`: the cell's size, or with --model the
        model's per-rank expert bytes for expert buckets (padded like every size)."""
        if self.model is None or kind != "expert":
            return size_bytes
        derived = self.model_bytes()
        group = len(self.layout.rank_lists(RS_GROUP_KIND[kind])[0])
        return moved_bytes(derived.expert_bytes or size_bytes, (group,))

    def model_bytes(self) -> LayerBytes:
        """--model's per-rank layer bytes under this layout (config.models.layer_bytes)."""
        return layer_bytes(self.model, tp=self.layout.tp, ep=self.layout.ep, etp=self.layout.etp,
                           element_bytes=2 if self.dtype == "bf16" else 4)

    def model_record(self) -> dict | None:
        """What the run says about --model: the preset and the bytes it derived (results)."""
        if self.model is None:
            return None
        lay = self.layout
        return describe(self.model, self.model_bytes(), tp=lay.tp, ep=lay.ep, etp=lay.etp, layers=self.step_layers)

    def option_pairs(self, source: str) -> list[tuple[NcclOptions, NcclOptions]]:
        """The (AG, RS) options each source is measured under."""
        if self.sweep_nccl_options and source == "pg_collection":
            return list(SWEEP_GRID)
        if source == "megatron_core":  # megatron-core creates its groups with its own options
            return [(NcclOptions(), NcclOptions())]
        return [(self.ag_options, self.rs_options)]

    def record(self) -> dict:
        """The configuration as plain data, as results.json and config.json store it."""
        return {
            "sizes_bytes": list(self.sizes_bytes), "dtype": self.dtype, "modes": list(self.modes),
            "buffers": list(self.buffers), "sources": list(self.sources), "num_warmup": self.num_warmup,
            "num_samples": self.num_samples, "ops_per_sample": self.ops_per_sample,
            "target_sample_ms": self.target_sample_ms, "step_layers": self.step_layers,
            "step_sizes_bytes": list(self.step_sizes_bytes), "gemm_mnk": list(self.gemm_mnk),
            "timeout_s": self.timeout_s, "check": self.check, "layout": self.layout.describe(),
            "backend": self.backend, "reference": self.reference, "hide_launch": self.hide_launch,
            "telemetry": self.telemetry, "graph": self.graph, "trace": self.trace,
            "ag_options": self.ag_options.label(),
            "rs_options": self.rs_options.label(), "sweep_nccl_options": self.sweep_nccl_options,
            "issues": list(self.issues), "argv": self.extra.get("argv", []),
            **({"model": self.model_record(), "tokens": self.tokens} if self.model else {}),
            "step_model": self.step_model.record(self.dtype),
        }

    def cells(self) -> list[Cell]:
        """Every cell, in measuring order: size, buffer, source, options, exec, mode."""
        execs = ("eager", "graph") if self.graph else ("eager",)
        collective_modes = [m for m in self.modes if m not in STEP_MODES]
        plan = [(size, buffer, collective_modes) for size in self.sizes_bytes for buffer in self.buffers]
        if "fsdp_step" in self.modes:
            plan += [(size, "+".join(self.buffers), ["fsdp_step"]) for size in self.step_sizes_bytes]
        if "mfsdp_step" in self.modes:
            plan += [(size, "+".join(self.buffers), ["mfsdp_step"]) for size in self.step_sizes_bytes]
        cells = []
        for size, buffer, modes in plan:
            for source in self.sources:
                for ag, rs in self.option_pairs(source):
                    for exec_mode in execs:
                        for mode in modes:
                            # megatron_fsdp: eager ag/rs/ag_rs and fsdp_step cells. Graph cells issue
                            # on role streams: the async coalesced AG hands back a work handle whose
                            # wait() ties the capture stream to NCCL's internal stream, a capture we
                            # have not verified (Megatron-FSDP itself waits on the handle eagerly).
                            styled = mode in (*COLLECTIVE_MODES, "fsdp_step") and exec_mode == "eager"
                            for issue in (self.issues if styled else (DEFAULT_ISSUE,)):
                                cells.append(Cell(mode=mode, buffer=buffer, source=source,
                                                  size_bytes=size, dtype=self.dtype, exec=exec_mode,
                                                  nccl_options=pair_label(ag, rs), issue=issue))
        return cells
