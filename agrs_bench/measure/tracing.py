"""`--trace`: a PyTorch profiler trace of a few samples of an ag_rs part, saved as Chrome-trace
JSON (opens in Perfetto), and the overlap read from its kernel timeline (analysis.trace_overlap).

Every rank traces the same samples in the same order (they are collectives) and writes its own
file: rank 0 RUN_DIR/traces/<cell>.json, rank r RUN_DIR/traces/<cell>.rank<r>.json. Each traced
sample sits in its own profiler range (trace_overlap.ROUND_MARK + index) and ends with a
synchronize, so its kernels fall inside the range's window.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch.distributed as dist
from torch.profiler import ProfilerActivity, profile, record_function

from agrs_bench.analysis import trace_kinds, trace_overlap
from agrs_bench.measure.timing import Sampler

TRACE_DIR = "traces"
TRACED_ROUNDS = 3


def trace_file(cell: str, rank: int) -> str:
    """The trace's path relative to the run directory."""
    return os.path.join(TRACE_DIR, f"{cell}.json" if rank == 0 else f"{cell}.rank{rank}.json")


def record(sampler: Sampler, part: str, path: str, *, rounds: int = TRACED_ROUNDS) -> list[dict[str, Any]]:
    """Trace `rounds` samples of `part` into `path`; its events."""
    activities = [ProfilerActivity.CPU]
    if sampler.dev.is_cuda:
        activities.append(ProfilerActivity.CUDA)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with profile(activities=activities) as prof:
        for index in range(rounds):
            with record_function(f"{trace_overlap.ROUND_MARK}{index}"):
                sampler.sample(part)
    prof.export_chrome_trace(path)
    with open(path, encoding="utf-8") as fh:
        return trace_overlap.trace_events(json.load(fh))


def overlap_info(sampler: Sampler, part: str, cell: str, run_dir: str, rank: int, *,
                 a: trace_overlap.Matcher = trace_overlap.ALL_GATHER,
                 b: trace_overlap.Matcher = trace_overlap.REDUCE_SCATTER,
                 rounds: int = TRACED_ROUNDS, levers: dict[str, Any] | None = None) -> trace_overlap.TraceFigures:
    """Collective: trace `part` on every rank; the trace file and the overlap it shows (the
    least-overlapped device's, median over traced rounds, with its interval), or why none."""
    relative = trace_file(cell, rank)
    events = record(sampler, part, os.path.join(run_dir, relative), rounds=rounds)
    mine = trace_overlap.per_round(events, a, b)
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    kinds = None
    if levers is not None and sampler.dev.is_cuda:  # this rank's view: what moved the bytes
        kinds = trace_kinds.cell_info(events, levers, ranks=dist.get_world_size())
    overlap = (trace_overlap.across_ranks(everyone, rounds) if sampler.dev.is_cuda else trace_overlap.OverlapFigures(
        fraction=None, rounds=rounds, reason="gloo on CPU: no device kernels to read overlap from"))
    return trace_overlap.TraceFigures(trace_file=trace_file(cell, 0), traced_rounds=rounds, overlap=overlap,
                                      kinds=kinds)
