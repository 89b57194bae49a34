"""The timing engine: the parts of one comparison sampled interleaved, round by round.

A part is one thing to time (an ag, rs or ag_rs iteration of one cell, a step variant, the
nccl-tests-style reference). Every part is warmed up, then estimated (held, see below), then all
parts get the same ops per sample: enough that the fastest part's sample lasts the budget, so
every part's does. A calibration round checks the achieved durations and raises the count where
one fell short. Then each round times one sample of every part, in an order rotated each round
(analysis.paired.rotation): drift between rounds hits every part of a round alike, and figures
that compare parts are paired per round.

A sample spans `ops` back-to-back iterations between one pair of timers; its time is divided by
`ops`, so samples are seconds per iteration, the max over ranks. Every rank runs the same loop in
the same order: counts derive from estimates all ranks receive through one all-reduce, and the
rotation depends on the round index alone (concurrent communicators must see their ops in the
same order on every rank). On CUDA the stream is held by a sleep kernel while the host queues a
sample, so samples time the device, not Python's launch rate; with `graph`, each part's `ops`
iterations are captured once in a CUDA graph and a sample is one replay.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from agrs_bench.analysis.paired import rotation
from agrs_bench.analysis.sampling import SampleFigures
from agrs_bench.measure.device import Issued

Iteration = Callable[[list[Issued]], None]

MAX_OPS_PER_SAMPLE = 100_000
"""A guard against a broken estimate only: a count this high never cuts a sample short of the
budget on real collectives (1 us per op gives 100 ms). Where it does bind, the cell says so."""
CALIBRATION_TRIES = 3
HOLD_MARGIN_S = 100e-6
BUDGET_MARGIN = 1.2
"""Ops per sample aim this far past the budget, so round-to-round jitter stays above it."""


@dataclass(frozen=True, kw_only=True)
class TimingPlan:
    """How one comparison is timed."""

    num_warmup: int
    """Untimed iterations of every part before the estimate (communicators, caches, clocks)."""
    num_rounds: int
    """Timed rounds; each holds one sample of every part."""
    target_sample_s: float
    """Every sample should last at least this long (--sample-ms)."""
    ops_per_sample: int = 0
    """Fixed iterations per sample; 0 picks them from target_sample_s."""
    hide_launch: bool = True
    """Hold the device while the host queues each sample (CUDA only)."""
    graph: bool = False
    """Capture each part's iterations of a sample in a CUDA graph; a sample is one replay."""

    def __post_init__(self) -> None:
        if self.num_rounds < 1 or self.num_warmup < 0 or self.ops_per_sample < 0:
            raise ValueError(f"rounds must be >= 1 and warm-up, ops >= 0: {self}")
        if not self.target_sample_s > 0:
            raise ValueError(f"target sample time must be > 0 s, got {self.target_sample_s}")


@dataclass(frozen=True)
class Part:
    """One thing a comparison times, on its own device handle and role streams."""

    name: str
    dev: Any
    iteration: Iteration
    roles: tuple[str, ...]
    """The role streams `iteration` uses; empty: it runs on the current stream (the reference)."""
    check: Callable[[Callable[[], None]], None] | None = None
    """Collective: given a function that runs one sample, fill, run it, verify on every rank and
    agree. Runs once per part, after warm-up and capture, before anything is timed."""


@dataclass(frozen=True)
class PairedSamples:
    """What a comparison measured: per part, one sample per round (seconds per iteration, max
    over ranks), all with the same ops per sample."""

    names: tuple[str, ...]
    per_iter_s: dict[str, tuple[float, ...]]
    ops_per_sample: int
    target_sample_s: float
    order: tuple[tuple[int, ...], ...]
    """Round r sampled parts in the order order[r] (indices into names)."""
    estimate_s: dict[str, tuple[float, float]]
    """Per part: (device, host) seconds per iteration from the held estimate, max over ranks."""
    capped: bool = False
    """The count hit MAX_OPS_PER_SAMPLE (or a fixed --ops-per-sample) before the budget."""

    def sample_s_min(self, name: str) -> float:
        """The shortest whole sample of `name`, in seconds."""
        return min(self.per_iter_s[name]) * self.ops_per_sample

    def short(self, name: str) -> bool:
        return self.sample_s_min(name) < self.target_sample_s

    def position(self, name: str) -> list[int]:
        """Where in each round `name` was sampled (0 = first)."""
        index = self.names.index(name)
        return [order.index(index) for order in self.order]

    def sample_figures(self, name: str) -> SampleFigures:
        """What `name`'s samples were (extra_info: rounds, ops_per_sample, sample_s_min, ...)."""
        return SampleFigures(rounds=len(self.per_iter_s[name]), ops_per_sample=self.ops_per_sample,
                             sample_s_min=self.sample_s_min(name), sample_s_target=self.target_sample_s,
                             sampling_position=tuple(self.position(name)),
                             estimate_device_s=self.estimate_s[name][0], estimate_host_s=self.estimate_s[name][1])

    def short_warnings(self, name: str) -> list[str]:
        """Why `name`'s samples fell short of the budget, when they did."""
        if not self.short(name):
            return []
        why = (f"ops per sample fixed or capped at {self.ops_per_sample}" if self.capped
               else "this part ran faster in some rounds than in the calibration round")
        return [f"samples fell short of the {self.target_sample_s * 1e3:g} ms budget: "
                f"shortest {self.sample_s_min(name) * 1e3:.3g} ms ({self.ops_per_sample} ops per sample; {why})"]


def max_over_ranks(values: list[float], device) -> list[float]:
    """Collective: every rank's `values`, element by element the largest (the slowest rank's)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.cpu().tolist()


def run_iterations(dev: Any, iteration: Iteration, roles: tuple[str, ...], count: int) -> None:
    """Queue `count` iterations: role streams fork from the current stream and join back."""
    pending: list[Issued] = []
    dev.fork(roles)
    for _ in range(count):
        iteration(pending)
    dev.join(pending)


def held_sample(dev: Any, run: Callable[[], None], hold_s: float) -> tuple[Any, Any, float]:
    """Queue one sample of `run` behind a hold of `hold_s`: (start, end) timers, read after a
    synchronize, and the host's seconds to queue it."""
    start, end = dev.timer(), dev.timer()
    dev.sample_start(hold_s)
    start.record()
    issued_at = time.perf_counter()
    run()
    host_s = time.perf_counter() - issued_at
    end.record()
    return start, end, host_s


def hold_for(plan: TimingPlan, host_s: float) -> float:
    """How long to hold the device before a sample: the host's time to queue it, with margin."""
    return 1.5 * host_s + HOLD_MARGIN_S if plan.hide_launch else 0.0


def choose_ops_per_sample(target_s: float, fastest_s: float) -> tuple[int, bool]:
    """(ops, capped): the count that makes the fastest part's sample last target_s."""
    if fastest_s <= 0 or not math.isfinite(fastest_s):
        return MAX_OPS_PER_SAMPLE, True
    ops = max(1, math.ceil(BUDGET_MARGIN * target_s / fastest_s))
    return (MAX_OPS_PER_SAMPLE, True) if ops > MAX_OPS_PER_SAMPLE else (ops, False)


class GraphReplay:
    """`count` iterations captured once in a CUDA graph; each call replays all of them.

    The part runs once eagerly first, so communicators and allocations exist before capture.
    Inside the capture the role streams fork from and join back to the capture stream.
    """

    def __init__(self, part: Part, count: int) -> None:
        run_iterations(part.dev, part.iteration, part.roles, 1)
        part.dev.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            run_iterations(part.dev, part.iteration, part.roles, count)
        part.dev.synchronize()

    def __call__(self) -> None:
        self.graph.replay()


@dataclass
class Sampler:
    """Times the parts of one comparison (see the module docstring); `run` returns the samples,
    after which `sample` can run more samples of a part (tracing)."""

    parts: list[Part]
    plan: TimingPlan
    _runs: list[Callable[[], None]] = field(default_factory=list)
    _host_s: list[float] = field(default_factory=list)
    ops: int = 0

    def __post_init__(self) -> None:
        if not self.parts or len({p.name for p in self.parts}) != len(self.parts):
            raise ValueError(f"a comparison needs parts with distinct names: {[p.name for p in self.parts]}")
        self.dev = self.parts[0].dev  # every part runs on this rank's one device

    def _time(self, index: int) -> tuple[Any, Any]:
        """Queue one sample of part `index`, held; (start, end) timers, read after a synchronize."""
        start, end, self._host_s[index] = held_sample(
            self.parts[index].dev, self._runs[index], hold_for(self.plan, self._host_s[index]))
        return start, end

    def _round(self, order: tuple[int, ...]) -> list[float]:
        """Seconds per iteration of every part (in part order, this rank's), one sample each."""
        timers = {index: self._time(index) for index in order}
        self.dev.synchronize()
        return [timers[i][0].elapsed_s(timers[i][1]) / self.ops for i in range(len(self.parts))]

    def _estimate(self, part: Part) -> tuple[float, float]:
        """(device, host) seconds per iteration on this rank: a short unheld run gives the host's
        issue time; small ops are launch-bound unheld, so the device time comes from a held run."""
        def timed(count: int, hold_s: float) -> tuple[float, float]:
            start, end, host_s = held_sample(
                part.dev, lambda: run_iterations(part.dev, part.iteration, part.roles, count), hold_s)
            part.dev.synchronize()
            return start.elapsed_s(end) / count, host_s / count

        device_s, host_s = timed(2, 0.0)
        if self.plan.hide_launch and part.dev.is_cuda:
            device_s = timed(4, hold_for(self.plan, 4 * host_s))[0]
        return device_s, host_s

    def _build(self, ops: int) -> None:
        self.ops = ops
        if self.plan.graph:
            self._runs = [GraphReplay(p, ops) for p in self.parts]
            self._host_s = [0.0] * len(self.parts)  # measured at the first replay
        else:
            self._runs = [lambda p=p: run_iterations(p.dev, p.iteration, p.roles, ops) for p in self.parts]
            self._host_s = [host * ops for _, host in self._estimates]

    def run(self) -> PairedSamples:
        plan, parts = self.plan, self.parts
        for part in parts:  # warm every part: communicators exist and clocks are up before timing
            run_iterations(part.dev, part.iteration, part.roles, max(1, plan.num_warmup))
        self.dev.synchronize()
        mine = [self._estimate(p) for p in parts]
        flat = max_over_ranks([v for pair in mine for v in pair], self.dev.device)
        self._estimates = [(flat[2 * i], flat[2 * i + 1]) for i in range(len(parts))]
        if plan.ops_per_sample:
            ops, capped = plan.ops_per_sample, True
        else:
            ops, capped = choose_ops_per_sample(plan.target_sample_s, min(d for d, _ in self._estimates))
        self._build(ops)
        for index, part in enumerate(parts):
            if part.check is not None:
                part.check(self._runs[index])
        for _ in range(CALIBRATION_TRIES):  # also the first held samples: holds learn host times
            shortest = min(max_over_ranks(self._round(rotation(len(parts), 0)), self.dev.device)) * self.ops
            if (plan.ops_per_sample or shortest >= plan.target_sample_s * (1 + BUDGET_MARGIN) / 2
                    or self.ops >= MAX_OPS_PER_SAMPLE):
                break
            grown = math.ceil(self.ops * BUDGET_MARGIN * plan.target_sample_s / max(shortest, 1e-12))
            capped = grown > MAX_OPS_PER_SAMPLE
            self._build(min(grown, MAX_OPS_PER_SAMPLE))
        if not plan.ops_per_sample:
            capped = capped and self.ops >= MAX_OPS_PER_SAMPLE
        orders, mine_rounds = [], []
        for round_index in range(plan.num_rounds):
            order = rotation(len(parts), round_index)
            orders.append(order)
            mine_rounds.extend(self._round(order))
        every = max_over_ranks(mine_rounds, self.dev.device)
        width = len(parts)
        per_part = {p.name: tuple(every[r * width + i] for r in range(plan.num_rounds))
                    for i, p in enumerate(parts)}
        return PairedSamples(names=tuple(p.name for p in parts), per_iter_s=per_part,
                             ops_per_sample=self.ops, target_sample_s=plan.target_sample_s,
                             order=tuple(orders), capped=capped,
                             estimate_s={p.name: self._estimates[i] for i, p in enumerate(parts)})

    def sample(self, name: str) -> None:
        """One more held sample of part `name`, waited for (after `run`; used by tracing)."""
        index = [p.name for p in self.parts].index(name)
        self._time(index)
        self.dev.synchronize()

