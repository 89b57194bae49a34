"""Flags of `agrs_bench.run` -> RunConfig. The only place that reads the run's argv."""

from __future__ import annotations

import argparse
import datetime
import os

from agrs_bench.config import toml_file as config_file
from agrs_bench.config.run_config import RunConfig, parse_choices, parse_gemm, parse_sizes
from agrs_bench.errors import ArgumentParser, ConfigError
from agrs_bench.vocab import BUFFERS, MODES, SOURCES
from agrs_bench.config.nccl_options import parse_nccl_options
from agrs_bench.topology.cli import add_layout_flags, layout_from_args

# Defaults that serve: a full sweep on GPUs; on CPU, small enough to end in about a minute.
DEFAULTS = {
    "nccl": {"sizes": "1MiB:1GiB:x4", "step_sizes": "64MiB", "gemm": "8192x8192x3072",
             "warmup": 5, "samples": 20, "target_sample_ms": 2.0, "timeout": 600.0},
    "gloo": {"sizes": "16KiB,256KiB", "step_sizes": "64KiB", "gemm": "64x64x64",
             "warmup": 2, "samples": 5, "target_sample_ms": 5.0, "timeout": 120.0},
}
DEFAULT_MODES = "ag,rs,ag_rs,fsdp_step"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="agrs_bench.run", description="Measure AG/RS overlap per group source.")
    add_layout_flags(parser, world_size_required=False)
    parser.add_argument("--sizes", help="full-buffer sizes: 1MiB,64MiB or 1MiB:1GiB:x4 "
                        f"(default: {DEFAULTS['nccl']['sizes']} on GPU, {DEFAULTS['gloo']['sizes']} on CPU)")
    parser.add_argument("--dtype", default="bf16", help="bf16 or fp32 (default: %(default)s)")
    parser.add_argument("--modes", default=DEFAULT_MODES,
                        help=f"comma list of {', '.join(MODES)} (default: %(default)s)")
    parser.add_argument("--buffers", default=",".join(BUFFERS), help="dense, expert or both (default: %(default)s)")
    parser.add_argument("--sources", default=",".join(SOURCES),
                        help=f"comma list of {', '.join(SOURCES)} (default: %(default)s)")
    parser.add_argument("--warmup", type=int, help="untimed iterations per cell "
                        f"(default: {DEFAULTS['nccl']['warmup']} on GPU, {DEFAULTS['gloo']['warmup']} on CPU)")
    parser.add_argument("--iters", type=int, help="timed samples per cell "
                        f"(default: {DEFAULTS['nccl']['samples']} on GPU, {DEFAULTS['gloo']['samples']} on CPU)")
    parser.add_argument("--ops-per-sample", type=int, default=0,
                        help="back-to-back iterations per timed sample (0: from --sample-ms; default: %(default)s)")
    parser.add_argument("--sample-ms", type=float,
                        help="with --ops-per-sample 0, aim for samples this long (default: "
                        f"{DEFAULTS['nccl']['target_sample_ms']:g} on GPU, "
                        f"{DEFAULTS['gloo']['target_sample_ms']:g} on CPU)")
    parser.add_argument("--layers", type=int, default=8, help="fsdp_step: layers per step (default: %(default)s)")
    parser.add_argument("--step-sizes", help="fsdp_step: bucket bytes per layer and buffer kind "
                        f"(default: {DEFAULTS['nccl']['step_sizes']} on GPU, {DEFAULTS['gloo']['step_sizes']} on CPU)")
    parser.add_argument("--gemm", help="fsdp_step: per-layer GEMM MxNxK "
                        f"(default: {DEFAULTS['nccl']['gemm']} on GPU, {DEFAULTS['gloo']['gemm']} on CPU)")
    parser.add_argument("--timeout", type=float, help="seconds before a stuck collective fails the run "
                        f"(default: {DEFAULTS['nccl']['timeout']:g} on GPU, {DEFAULTS['gloo']['timeout']:g} on CPU)")
    parser.add_argument("--no-check", action="store_true", help="skip verifying AG/RS outputs")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the nccl-tests-style back-to-back reference of ag and rs")
    parser.add_argument("--launch-bound", action="store_true",
                        help="do not hold the GPU while samples are queued (times include host launch gaps)")
    parser.add_argument("--no-telemetry", action="store_true", help="do not sample NVML during cells")
    parser.add_argument("--graph", action="store_true",
                        help="also measure every cell captured in a CUDA graph (NCCL only)")
    parser.add_argument("--ag-nccl-options", default="default",
                        help="AG groups' NCCL options: high_priority,min_ctas=N,max_ctas=N,cga_cluster_size=N "
                        "(default: %(default)s)")
    parser.add_argument("--rs-nccl-options", default="default",
                        help="RS groups' NCCL options (same keys; default: %(default)s)")
    parser.add_argument("--sweep-nccl-options", action="store_true",
                        help="measure pg_collection under a grid of AG/RS NCCL options")
    parser.add_argument("--out", help="run directory (default results/runs/<UTC timestamp>)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="finish this incomplete run (same flags as the run): skip its finished cells")
    parser.add_argument("--config", metavar="FILE.toml",
                        help="flag values from a TOML file (keys: flag names without --); flags override it")
    return parser


def default_ep(world_size: int, tp: int, etp: int | None, pp: int) -> int:
    """ep=2 when it leaves expert groups of at least 2 ranks, so that the expert group differs
    from the dense one; else 1 (then expert buffers shard over the same ranks as dense ones)."""
    per_expert_grid = (etp or tp) * pp * 2
    return 2 if world_size % per_expert_grid == 0 and world_size // per_expert_grid >= 2 else 1


def parse_run_args(argv: list[str], *, world_size: int, backend: str) -> RunConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        parser.set_defaults(**config_file.load(args.config, parser))
        args = parser.parse_args(argv)
    defaults = DEFAULTS[backend]
    if args.world_size is not None and args.world_size != world_size:
        raise ConfigError(f"--world-size {args.world_size} does not match the {world_size} launched ranks")
    if args.rank_offset:
        raise ConfigError(f"--rank-offset {args.rank_offset}: a run's layout covers every launched "
                          "rank, so the offset must be 0 (use agrs_bench.topology to explore offsets)")
    layout = layout_from_args(args, world_size, default_ep=default_ep(world_size, args.tp, args.etp, args.pp))
    if args.resume and args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
        raise ConfigError(f"--out {args.out!r} and --resume {args.resume!r} name different run directories")
    out = args.resume or args.out or os.path.join(
        "results", "runs", datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    return RunConfig(
        layout=layout, backend=backend,
        sizes_bytes=parse_sizes(args.sizes or defaults["sizes"]),
        dtype=args.dtype,
        modes=parse_choices(args.modes, MODES, "mode"),
        buffers=parse_choices(args.buffers, BUFFERS, "buffer"),
        sources=parse_choices(args.sources, SOURCES, "source"),
        num_warmup=defaults["warmup"] if args.warmup is None else args.warmup,
        num_samples=defaults["samples"] if args.iters is None else args.iters,
        ops_per_sample=args.ops_per_sample,
        target_sample_ms=defaults["target_sample_ms"] if args.sample_ms is None else args.sample_ms,
        step_layers=args.layers,
        step_sizes_bytes=parse_sizes(args.step_sizes or defaults["step_sizes"]),
        gemm_mnk=parse_gemm(args.gemm or defaults["gemm"]),
        out_dir=out,
        timeout_s=defaults["timeout"] if args.timeout is None else args.timeout,
        check=not args.no_check,
        reference=not args.no_reference,
        telemetry=not args.no_telemetry,
        hide_launch=not args.launch_bound,
        graph=args.graph,
        ag_options=parse_nccl_options(args.ag_nccl_options),
        rs_options=parse_nccl_options(args.rs_nccl_options),
        sweep_nccl_options=args.sweep_nccl_options,
        resume=bool(args.resume),
        extra={"argv": list(argv)},
    )
