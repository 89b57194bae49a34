"""Flags of `agrs_bench.run` -> RunConfig. The only place that reads the run's argv."""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import re
import secrets
from collections.abc import Callable
from typing import Any

from agrs_bench.config import models, step_model
from agrs_bench.config import toml_file as config_file
from agrs_bench.config.levers import check_levers_supported
from agrs_bench.config.nccl_options import parse_nccl_options
from agrs_bench.config.run_config import (
    BACKEND_CHOICES,
    DEFAULT_SAMPLE_MS,
    RunConfig,
    decide_backend,
    moved_bytes,
    parse_choices,
    parse_gemm,
    parse_sizes,
)
from agrs_bench.errors import ArgumentParser, ConfigError, integer, number
from agrs_bench.topology.cli import add_layout_flags, layout_from_args
from agrs_bench.vocab import (
    ALL_MODES,
    BUFFERS,
    DEFAULT_ISSUE,
    DEFAULT_SOURCES,
    ISSUE_STYLES,
    MEGATRON_FSDP_INSTALL,
    MEGATRON_INSTALL,
    RS_GROUP_KIND,
    SOURCES,
    STEP_MODES,
)

# Defaults that serve: a full sweep on GPUs; on CPU, small enough to end in about a minute.
DEFAULTS = {
    "nccl": {"sizes": "1MiB:1GiB:x4", "step_sizes": "64MiB", "gemm": "8192x8192x3072",
             "warmup": 5, "samples": 20, "timeout": 600.0},
    "gloo": {"sizes": "16KiB,256KiB", "step_sizes": "64KiB", "gemm": "64x64x64",
             "warmup": 2, "samples": 6, "timeout": 120.0},
}
DEFAULT_MODES = "ag,rs,ag_rs,fsdp_step"
EXIT_STATUSES = (
    "exit status of each rank: 0 done; 1 failed (finished cells kept); 2 bad input; 3 a rank hung "
    "past --timeout and its watchdog ended it; 5 megatron-core built AG groups whose ranks differ "
    "from its DP groups (NVIDIA/Megatron-LM#4261): megatron_core was not timed, the other sources "
    "were; 130/143 ended by SIGINT/SIGTERM. torchrun itself exits 1 when any rank exits non-zero; "
    "python -m agrs_bench.run passes 5 on.")


def require_megatron_core() -> None:
    """--sources megatron_core without megatron-core installed is bad input, found before launch."""
    try:
        found = importlib.util.find_spec("megatron.core") is not None
    except ModuleNotFoundError:  # no `megatron` package at all
        found = False
    if not found:
        raise ConfigError(f"--sources megatron_core needs megatron-core, which is not installed: "
                          f"{MEGATRON_INSTALL}")


def require_megatron_fsdp() -> None:
    """--modes mfsdp_step without megatron-fsdp (or its einops) installed: bad input, before launch."""
    missing = [name for name in ("megatron_fsdp", "einops") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"--modes mfsdp_step needs {' and '.join(missing)}, not installed: "
                          f"{MEGATRON_FSDP_INSTALL}")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="agrs-bench run", description="Measure AG/RS overlap per group source.",
                            epilog=EXIT_STATUSES)
    add_layout_flags(parser, world_size_required=False)
    parser.add_argument("--sizes", help="full-buffer sizes: 1MiB,64MiB or 1MiB:1GiB:x4 "
                        f"(default: {DEFAULTS['nccl']['sizes']} on GPU, {DEFAULTS['gloo']['sizes']} on CPU); "
                        "each is rounded up to the bytes actually moved (16-byte shards on every rank of "
                        "every group), and results record that size")
    parser.add_argument("--dtype", default="bf16", help="bf16 or fp32 (default: %(default)s)")
    parser.add_argument("--modes", default=DEFAULT_MODES,
                        help=f"comma list of {', '.join(ALL_MODES)} (default: %(default)s; mfsdp_step, "
                        f"Megatron-FSDP's own step, needs CUDA and {MEGATRON_FSDP_INSTALL})")
    parser.add_argument("--buffers", default=",".join(BUFFERS), help="dense, expert or both (default: %(default)s)")
    parser.add_argument("--sources", default=",".join(DEFAULT_SOURCES),
                        help=f"comma list of {', '.join(SOURCES)} (default: %(default)s; megatron_core needs "
                        "pip install -e '.[megatron]')")
    parser.add_argument("--issue", default=DEFAULT_ISSUE,
                        help=f"how ag/rs/ag_rs cells issue collectives, comma list of {', '.join(ISSUE_STYLES)} "
                        "(megatron_fsdp: async AG and RS in coalescing managers, as Megatron-FSDP; "
                        "default: %(default)s)")
    parser.add_argument("--warmup", type=integer, help="untimed iterations per cell "
                        f"(default: {DEFAULTS['nccl']['warmup']} on GPU, {DEFAULTS['gloo']['warmup']} on CPU)")
    parser.add_argument("--iters", type=integer, help="timed samples per cell "
                        f"(default: {DEFAULTS['nccl']['samples']} on GPU, {DEFAULTS['gloo']['samples']} on CPU)")
    parser.add_argument("--ops-per-sample", type=integer, default=0,
                        help="back-to-back iterations per timed sample (0: from --sample-ms; default: %(default)s)")
    parser.add_argument("--sample-ms", type=number,
                        help=f"with --ops-per-sample 0, every sample lasts at least this long (default: "
                        f"{DEFAULT_SAMPLE_MS:g}, GPU and CPU)")
    parser.add_argument("--layers", type=integer, default=8, help="fsdp_step: layers per step (default: %(default)s)")
    parser.add_argument("--step-sizes", help="fsdp_step: bucket bytes per layer and buffer kind "
                        f"(default: {DEFAULTS['nccl']['step_sizes']} on GPU, {DEFAULTS['gloo']['step_sizes']} on CPU)")
    parser.add_argument("--gemm", help="fsdp_step: per-layer GEMM MxNxK "
                        f"(default: {DEFAULTS['nccl']['gemm']} on GPU, {DEFAULTS['gloo']['gemm']} on CPU)")
    parser.add_argument("--model", help="steps: per-layer dense and expert bytes of a model preset "
                        f"({', '.join(models.PRESETS)}) or a .toml file of its shape, per rank of the layout "
                        "(replaces --step-sizes)")
    parser.add_argument("--step-model", default="megatron", choices=step_model.STEP_MODELS,
                        help="fsdp_step: megatron (Megatron-FSDP's defaults: scale+SUM or PreMulSum, "
                        "main-gradient accumulation, AG/RS wait for compute, size-based prefetch) or ours "
                        "(one layer of prefetch, plain SUM; default: %(default)s)")
    parser.add_argument("--reduce-op", choices=step_model.REDUCE_OPS,
                        help="fsdp_step: the gradients' reduce op (default: the step model's; megatron: "
                        "scale_sum for bf16 gradients, premul_sum otherwise; avg = average_in_collective)")
    parser.add_argument("--grad-dtype", choices=step_model.GRAD_DTYPES,
                        help="fsdp_step: dtype of the reduce-scattered gradients (param: the --dtype; fp32: "
                        "Megatron's main_grads_dtype / grad_comm_dtype fp32, RS moves 2x AG's bytes with bf16)")
    parser.add_argument("--prefetch", choices=step_model.PREFETCHES,
                        help="fsdp_step: AG prefetch (size: Megatron's unit-size limit; size_double_buffer: "
                        "and at most 2 layers, as fsdp_double_buffer; one_layer: ours)")
    parser.add_argument("--tokens", type=integer, default=4096,
                        help="mfsdp_step: tokens per rank and step (default: %(default)s)")
    parser.add_argument("--timeout", type=number, help="seconds before a stuck collective fails the run "
                        f"(default: {DEFAULTS['nccl']['timeout']:g} on GPU, {DEFAULTS['gloo']['timeout']:g} on CPU)")
    parser.add_argument("--no-check", action="store_true", help="skip verifying AG/RS outputs")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the nccl-tests-style back-to-back reference of ag and rs")
    parser.add_argument("--launch-bound", action="store_true",
                        help="do not hold the GPU while samples are queued (times include host launch gaps)")
    parser.add_argument("--no-telemetry", action="store_true", help="do not sample NVML during cells")
    parser.add_argument("--graph", action="store_true",
                        help="also measure every cell captured in a CUDA graph (NCCL only)")
    parser.add_argument("--trace", action="store_true",
                        help="record a profiler trace of a few samples of every ag_rs cell (RUN_DIR/traces/, "
                             "Perfetto) and the overlap read from its kernel timeline")
    parser.add_argument("--ag-nccl-options", default="default",
                        help="AG groups' NCCL options: high_priority,min_ctas=N,max_ctas=N,cga_cluster_size=N,"
                        "cta_policy=default|efficiency|zero,registration=none|ub|symmetric "
                        "(default: %(default)s)")
    parser.add_argument("--rs-nccl-options", default="default",
                        help="RS groups' NCCL options (same keys; default: %(default)s)")
    parser.add_argument("--sweep-nccl-options", action="store_true",
                        help="measure pg_collection under a grid of AG/RS NCCL options")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="auto (default): nccl on a CUDA host, which must have a GPU for every "
                        "rank of a node, gloo on a host without GPUs; gloo: CPU timings even on a "
                        "GPU host; nccl: refuse to run without a GPU per rank")
    parser.add_argument("--out", help="run directory, new or empty (default "
                        "results/runs/<UTC timestamp>-<launch id>); a run owns it until it ends")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="finish this incomplete run with its own configuration: skip its "
                        "finished cells (flags given must match the run's)")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="flag values from a TOML file (keys: flag names without --); flags override it")
    return parser


def default_ep(world_size: int, tp: int, etp: int | None, pp: int) -> int:
    """ep=2 when it leaves expert groups of at least 2 ranks, so that the expert group differs
    from the dense one; else 1 (then expert buffers shard over the same ranks as dense ones)."""
    per_expert_grid = (etp or tp) * pp * 2
    return 2 if world_size % per_expert_grid == 0 and world_size // per_expert_grid >= 2 else 1


LAYOUT_FLAGS = ("tp", "cp", "ep", "etp", "pp")


def defaults_from_record(record: dict[str, Any]) -> dict[str, Any]:
    """A run's recorded configuration (RunConfig.record(), checked by schema.validate_config)
    as argparse defaults: `--resume RUN_DIR` alone runs with the run's own flags."""
    layout = record["layout"]
    return {
        "sizes": ",".join(str(s) for s in record["sizes_bytes"]), "dtype": record["dtype"],
        "modes": ",".join(record["modes"]), "buffers": ",".join(record["buffers"]),
        "sources": ",".join(record["sources"]), "warmup": record["num_warmup"],
        "iters": record["num_samples"], "ops_per_sample": record["ops_per_sample"],
        "sample_ms": record["target_sample_ms"], "layers": record["step_layers"],
        "step_sizes": ",".join(str(s) for s in record["step_sizes_bytes"]),
        "gemm": "x".join(str(g) for g in record["gemm_mnk"]), "timeout": record["timeout_s"],
        "no_check": not record["check"], "no_reference": not record["reference"],
        "launch_bound": not record["hide_launch"], "no_telemetry": not record["telemetry"],
        "graph": record["graph"], "ag_nccl_options": record["ag_options"].replace("+", ","),
        "rs_nccl_options": record["rs_options"].replace("+", ","),
        "sweep_nccl_options": record["sweep_nccl_options"], "backend": record["backend"],
        # Fields newer than some recorded runs: a run recorded without them used the defaults.
        "trace": record.get("trace", False), "issue": ",".join(record.get("issues", [DEFAULT_ISSUE])),
        **_step_model_defaults(record.get("step_model")),
        # --model derived the step sizes: restore the model, not its sizes (the two exclude each other).
        **({"model": record["model"]["name"], "tokens": record["tokens"], "step_sizes": None}
           if record.get("model") else {}),
        **{axis: layout.get(axis) for axis in LAYOUT_FLAGS}, "order": layout["order"],
    }


def _step_model_defaults(recorded: dict[str, Any] | None) -> dict[str, Any]:
    """A run recorded before the step model existed ran `ours`' schedule with plain SUM."""
    if not recorded:
        return {"step_model": "ours"}
    return {"step_model": recorded["name"], "reduce_op": recorded["reduce_op"],
            "grad_dtype": "fp32" if recorded["grad_dtype"] == "fp32" else "param", "prefetch": recorded["prefetch"]}


def _parse(argv: list[str], stored: Callable[[str], dict[str, Any]] | None
           ) -> tuple[argparse.Namespace, dict[str, Any] | None]:
    """Flags over the TOML file over (with --resume) the run's recorded configuration."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag in ("out", "resume"):
        bad = next((c for c in getattr(args, flag) or "" if ord(c) < 32 or ord(c) == 127), None)
        if bad is not None:  # printed on one line and written into the report
            raise ConfigError(f"--{flag} {getattr(args, flag)[:60]!r} holds the control character {bad!r}")
    record = stored(args.resume) if args.resume and stored else None
    if record is not None:
        parser.set_defaults(**defaults_from_record(record))
    if args.config:
        parser.set_defaults(**config_file.load(args.config, parser))
    if record is not None or args.config:
        args = parser.parse_args(argv)
    for flag in ("out", "resume"):
        if getattr(args, flag) is not None and not getattr(args, flag).strip():
            raise ConfigError(f"--{flag} {getattr(args, flag)!r} names no directory")
    for axis in LAYOUT_FLAGS:
        value = getattr(args, axis)
        if value is not None and value < 1:
            raise ConfigError(f"--{axis} {value}: parallel sizes must be >= 1")
    return args, record


MAX_SELF_LAUNCH_RANKS = 64
"""`python -m agrs_bench.run` starts every rank on this host: no host has more GPUs than this."""


def launch_request(argv: list[str], stored: Callable[[str], dict[str, Any]] | None = None
                   ) -> tuple[str, int | None]:
    """For the self-launch parent, before it knows the world: the backend asked for and, when
    resuming, the run's world size."""
    args, record = _parse(argv, stored)
    world = record["layout"]["world_size"] if record is not None else None
    if world is not None and world > MAX_SELF_LAUNCH_RANKS:  # one process per rank on this host
        raise ConfigError(f"--resume {args.resume!r}: the run had {world} ranks; a launch without "
                          f"torchrun starts at most {MAX_SELF_LAUNCH_RANKS} on this host (resume it "
                          "under torchrun on the hosts it ran on)")
    return args.backend, world


def default_out_dir(launch_id: str | None = None) -> str:
    """results/runs/<UTC timestamp>-<launch id>: two runs started in the same second differ.
    Under torchrun every rank must name the same folder, so the id is torchrun's run id."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = launch_id or f"{os.getpid()}-{secrets.token_hex(3)}"
    return os.path.join("results", "runs", f"{stamp}-{suffix}")


COMMIT_ENV = "AGRS_BENCH_COMMIT"
"""Names the code when the checkout has no .git (results.machine.commit_info reads it)."""
_COMMIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,99}")


def check_environment(environ: Any = os.environ) -> None:
    """Variables a run records verbatim: refused before the launch when they cannot be a name
    (a newline in AGRS_BENCH_COMMIT would write a Markdown heading into report.md)."""
    named = environ.get(COMMIT_ENV)
    if named is not None and named.strip() and not _COMMIT_NAME.fullmatch(named.strip()):
        raise ConfigError(f"environment variable {COMMIT_ENV}={named[:40]!r}{'...' if len(named) > 40 else ''} "
                          "is not a commit name (letters, digits, . _ / + -, at most 100)")


def parse_run_args(argv: list[str], *, world_size: int, backend: str | None = None, gpus: int = 0,
                   local_world_size: int | None = None,
                   stored: Callable[[str], dict[str, Any]] | None = None) -> RunConfig:
    """`backend` forces the backend (tests, and ranks whose parent decided); otherwise --backend
    is decided against the `gpus` visible and the `local_world_size` ranks of this node.
    `stored(run_dir)` returns the recorded configuration of a run to resume."""
    args, _ = _parse(argv, stored)
    check_environment()
    if backend is None or args.backend != "auto":
        backend = decide_backend(args.backend, gpus,
                                 world_size if local_world_size is None else local_world_size)
    defaults = DEFAULTS[backend]
    if args.world_size is not None and args.world_size != world_size:
        raise ConfigError(f"--world-size {args.world_size} does not match the {world_size} launched ranks")
    if args.rank_offset:
        raise ConfigError(f"--rank-offset {args.rank_offset}: a run's layout covers every launched "
                          "rank, so the offset must be 0 (use agrs_bench.topology to explore offsets)")
    layout = layout_from_args(args, world_size, default_ep=default_ep(world_size, args.tp, args.etp, args.pp))
    if args.resume and args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
        raise ConfigError(f"--out {args.out!r} and --resume {args.resume!r} name different run directories")
    out = args.resume or args.out or default_out_dir(os.environ.get("TORCHELASTIC_RUN_ID"))
    buffers = parse_choices(args.buffers, BUFFERS, "buffer")
    groups = tuple(len(layout.rank_lists(RS_GROUP_KIND[b])[0]) for b in buffers)

    def sizes(text: str) -> tuple[int, ...]:
        return tuple(dict.fromkeys(moved_bytes(s, groups) for s in parse_sizes(text)))

    if "megatron_core" in parse_choices(args.sources, SOURCES, "source"):
        require_megatron_core()
    modes = parse_choices(args.modes, ALL_MODES, "mode")
    model = models.resolve(args.model) if args.model else None
    step_sizes = defaults["step_sizes"] if args.step_sizes is None else args.step_sizes
    if model is not None:
        if args.step_sizes is not None:
            raise ConfigError("--model and --step-sizes both set the step's bytes: give one")
        derived = models.layer_bytes(model, tp=layout.tp, ep=layout.ep, etp=layout.etp,
                                     element_bytes=2 if args.dtype == "bf16" else 4)
        step_sizes = str(derived.dense_bytes or derived.expert_bytes)
    if "mfsdp_step" in modes and backend == "nccl":
        require_megatron_fsdp()
    cfg = RunConfig(
        layout=layout, backend=backend,
        sizes_bytes=sizes(defaults["sizes"] if args.sizes is None else args.sizes),
        dtype=args.dtype,
        modes=modes,
        buffers=buffers,
        sources=parse_choices(args.sources, SOURCES, "source"),
        issues=parse_choices(args.issue, ISSUE_STYLES, "issue style"),
        num_warmup=defaults["warmup"] if args.warmup is None else args.warmup,
        num_samples=defaults["samples"] if args.iters is None else args.iters,
        ops_per_sample=args.ops_per_sample,
        target_sample_ms=DEFAULT_SAMPLE_MS if args.sample_ms is None else args.sample_ms,
        step_layers=args.layers,
        step_sizes_bytes=sizes(step_sizes),
        gemm_mnk=parse_gemm(defaults["gemm"] if args.gemm is None else args.gemm),
        out_dir=out,
        timeout_s=defaults["timeout"] if args.timeout is None else args.timeout,
        check=not args.no_check,
        reference=not args.no_reference,
        telemetry=not args.no_telemetry,
        hide_launch=not args.launch_bound,
        graph=args.graph,
        trace=args.trace,
        ag_options=parse_nccl_options(args.ag_nccl_options),
        rs_options=parse_nccl_options(args.rs_nccl_options),
        sweep_nccl_options=args.sweep_nccl_options,
        resume=bool(args.resume),
        extra={"argv": list(argv)},
        model=model,
        tokens=args.tokens,
        step_model=step_model.from_flags(args.step_model, args.reduce_op, args.grad_dtype, args.prefetch),
    )
    check_levers_supported(cfg)
    return cfg


def parse_rank_args(argv: list[str], *, world_size: int, gpus: int, local_world_size: int,
                    stored: Callable[[str], dict[str, Any]] | None = None) -> RunConfig:
    """A rank's configuration under torchrun. One rank is refused (AG/RS overlap needs two),
    except for step modes alone on NCCL, where a group of one still runs the step's code path;
    a lone rank hears that first, whatever else its flags get wrong."""
    try:
        cfg = parse_run_args(argv, world_size=world_size, gpus=gpus, local_world_size=local_world_size,
                             stored=stored)
    except ConfigError:
        if world_size >= 2:
            raise
        cfg = None
    if cfg is None or world_size < 2 and not (cfg.backend == "nccl" and set(cfg.modes) <= set(STEP_MODES)):
        raise ConfigError(f"world size {world_size}: AG/RS overlap needs at least 2 ranks "
                          "(use --nproc-per-node=2 or more; a step mode alone runs on one GPU)")
    return cfg
