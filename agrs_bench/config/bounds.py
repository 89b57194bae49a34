"""What a run can finish, decided before any work: counts and times that no watchdog phase can
hold are bad input (exit 2), not a run that the watchdog ends an hour later with exit 1.

A comparison is one watchdog phase of at most --timeout (plus a margin). It takes at least
(--iters) rounds, each at least one sample of --sample-ms; with a fixed --ops-per-sample each
sample is at least that many collectives, and no collective ends in under MIN_OP_S.
"""

from __future__ import annotations

from typing import Any

from agrs_bench.errors import ConfigError

MIN_OP_S = 1e-6
"""A floor on one collective's time on any backend (NCCL's own launch takes a few us)."""
MAX_SAMPLES = 100_000
"""Timed samples per cell: each is kept in results.json."""
MAX_WARMUP = 1_000_000
MAX_OPS_PER_SAMPLE = 100_000
"""measure.timing's own cap on ops per sample."""
MAX_LAYERS = 4096
MAX_SIZES = 1000
"""Sizes per list (--sizes, --step-sizes): every one is a row of cells; the default sweep has 6."""


def check_run_bounds(cfg: Any) -> None:
    """ConfigError naming the flags whose values a run cannot finish (cfg: a RunConfig)."""
    for flag, value, most in (("--iters", cfg.num_samples, MAX_SAMPLES), ("--warmup", cfg.num_warmup, MAX_WARMUP),
                              ("--ops-per-sample", cfg.ops_per_sample, MAX_OPS_PER_SAMPLE),
                              ("--layers", cfg.step_layers, MAX_LAYERS)):
        if value > most:
            raise ConfigError(f"{flag} {value} is more than a run can hold (at most {most})")
    for flag, sizes in (("--sizes", cfg.sizes_bytes), ("--step-sizes", cfg.step_sizes_bytes)):
        if len(sizes) > MAX_SIZES:
            raise ConfigError(f"{flag} names {len(sizes)} sizes, more than a run can hold (at most {MAX_SIZES})")
    sample_s = cfg.target_sample_ms / 1e3 if cfg.ops_per_sample == 0 else cfg.ops_per_sample * MIN_OP_S
    if cfg.ops_per_sample == 0 and sample_s >= cfg.timeout_s:
        raise ConfigError(f"--sample-ms {cfg.target_sample_ms:g}: one sample would outlast --timeout "
                          f"{cfg.timeout_s:g} s; choose a shorter sample or a longer timeout")
    least_s = cfg.num_samples * sample_s + cfg.num_warmup * MIN_OP_S
    if least_s >= cfg.timeout_s:
        how = (f"--sample-ms {cfg.target_sample_ms:g}" if cfg.ops_per_sample == 0
               else f"--ops-per-sample {cfg.ops_per_sample}")
        raise ConfigError(f"--iters {cfg.num_samples} with {how} and --warmup {cfg.num_warmup} takes at "
                          f"least {least_s:.3g} s per cell, more than --timeout {cfg.timeout_s:g} s")
