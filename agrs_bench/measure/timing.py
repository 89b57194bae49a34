"""Timing: warm up, agree on the loop, take raw per-sample times, max over ranks.

A sample spans `ops_per_sample` back-to-back iterations between one pair of timers, which
amortises the host's launch overhead the way nccl-tests does; the sample's time is divided by
that count, so every sample is seconds per iteration. Every rank runs the same loop: the count is
computed from the slowest rank's estimate, which all ranks receive through one all-reduce.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist

from agrs_bench.measure.device import Issued


@dataclass(frozen=True, kw_only=True)
class TimingPlan:
    """How one cell is timed."""

    num_warmup: int
    """Untimed iterations before the estimate (communicator set-up, caches, clocks)."""
    num_samples: int
    """Timed samples kept as raw data."""
    ops_per_sample: int = 0
    """Back-to-back iterations per sample; 0 picks it from `target_sample_s`."""
    target_sample_s: float = 1e-3
    """With ops_per_sample=0: aim for samples this long."""
    max_ops_per_sample: int = 100
    """With ops_per_sample=0: never more iterations per sample than this."""
    hide_launch: bool = True
    """Hold the device while the host queues each sample (CUDA only), so samples time the
    device rather than the host's launch rate."""


@dataclass(frozen=True)
class Samples:
    """Raw seconds per iteration, one per sample, each the max over ranks."""

    per_iter_s: tuple[float, ...]
    ops_per_sample: int


def _run(dev: Any, iteration: Callable[[list[Issued]], None], roles: tuple[str, ...], count: int) -> None:
    pending: list[Issued] = []
    dev.fork(roles)
    for _ in range(count):
        iteration(pending)
    dev.join(pending)


def _max_over_ranks(values: list[float], device) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.cpu().tolist()


def choose_ops_per_sample(plan: TimingPlan, estimate_s: float) -> int:
    if plan.ops_per_sample:
        return plan.ops_per_sample
    if estimate_s <= 0:
        return plan.max_ops_per_sample
    return max(1, min(plan.max_ops_per_sample, math.ceil(plan.target_sample_s / estimate_s)))


def time_one(dev: Any, iteration: Callable[[list[Issued]], None], roles: tuple[str, ...],
             count: int, hold_s: float = 0.0) -> tuple[float, float]:
    """(device, host) seconds per iteration of `count` back-to-back iterations on this rank."""
    start, end = dev.timer(), dev.timer()
    dev.sample_start(hold_s)
    start.record()
    host_start_s = time.perf_counter()
    _run(dev, iteration, roles, count)
    host_s = time.perf_counter() - host_start_s
    end.record()
    dev.synchronize()
    return start.elapsed_s(end) / count, host_s / count


def hold_for(plan: TimingPlan, host_s_per_iter: float, ops: int) -> float:
    """How long to hold the device before a sample: the host's time to queue it, with margin."""
    return 1.5 * host_s_per_iter * ops + 100e-6 if plan.hide_launch else 0.0


def estimate(dev: Any, iteration: Callable[[list[Issued]], None], roles: tuple[str, ...],
             plan: TimingPlan) -> tuple[float, float]:
    """(device, host) seconds per iteration, the slowest rank's, identical on every rank.

    A first short run measures the host's issue time; unheld, small ops are launch-bound, so the
    device time is then taken from a second run held the way samples will be.
    """
    device_s, host_s = _max_over_ranks(list(time_one(dev, iteration, roles, 2)), dev.device)
    if plan.hide_launch:
        probe = 4
        held_s = time_one(dev, iteration, roles, probe, hold_for(plan, host_s, probe))[0]
        device_s = _max_over_ranks([held_s], dev.device)[0]
    return device_s, host_s


def measure(dev: Any, iteration: Callable[[list[Issued]], None], roles: tuple[str, ...],
            plan: TimingPlan) -> Samples:
    """Warm up, estimate, then time `plan.num_samples` samples; synchronizes once at the end."""
    _run(dev, iteration, roles, plan.num_warmup)
    dev.synchronize()
    estimate_s, host_s = estimate(dev, iteration, roles, plan)
    ops = choose_ops_per_sample(plan, estimate_s)
    hold_s = hold_for(plan, host_s, ops)
    timers = []
    for _ in range(plan.num_samples):
        start, end = dev.timer(), dev.timer()
        dev.sample_start(hold_s)
        start.record()
        _run(dev, iteration, roles, ops)
        end.record()
        timers.append((start, end))
    dev.synchronize()
    mine = [start.elapsed_s(end) / ops for start, end in timers]
    return Samples(tuple(_max_over_ranks(mine, dev.device)), ops)


class GraphReplay:
    """`count` iterations captured once in a CUDA graph; each call replays all of them.

    The kernel runs once eagerly first, so communicators and allocations exist before capture.
    Inside the capture the role streams fork from and join back to the capture stream.
    """

    roles: tuple[str, ...] = ()

    def __init__(self, dev: Any, iteration: Callable[[list[Issued]], None], roles: tuple[str, ...],
                 count: int) -> None:
        self.count = count
        _run(dev, iteration, roles, 1)
        dev.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            _run(dev, iteration, roles, count)
        dev.synchronize()

    def __call__(self, pending: list[Issued]) -> None:
        self.graph.replay()


def measure_graph(dev: Any, iteration: Callable[[list[Issued]], None], roles: tuple[str, ...],
                  plan: TimingPlan) -> Samples:
    """Like `measure`, with each sample one replay of a graph holding ops_per_sample iterations."""
    _run(dev, iteration, roles, max(1, plan.num_warmup))
    dev.synchronize()
    estimate_s, _ = estimate(dev, iteration, roles, plan)
    count = choose_ops_per_sample(plan, estimate_s)
    replay = GraphReplay(dev, iteration, roles, count)
    whole = measure(dev, replay, (), TimingPlan(num_warmup=2, num_samples=plan.num_samples, ops_per_sample=1,
                                                hide_launch=plan.hide_launch))
    return Samples(tuple(t / count for t in whole.per_iter_s), count)


def time_back_to_back(dev: Any, launch: Callable[[], None], *, num_ops: int = 20, repeats: int = 5,
                      num_warmup: int = 5) -> list[float]:
    """The nccl-tests way: `num_ops` launches on the current stream between one event pair,
    `repeats` times; seconds per op of each repeat, max over ranks."""
    for _ in range(num_warmup):
        launch()
    dev.synchronize()
    pairs = []
    for _ in range(repeats):
        start, end = dev.timer(), dev.timer()
        dev.sample_start()
        start.record()
        for _ in range(num_ops):
            launch()
        end.record()
        pairs.append((start, end))
    dev.synchronize()
    return _max_over_ranks([start.elapsed_s(end) / num_ops for start, end in pairs], dev.device)
