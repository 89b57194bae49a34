"""Paired statistics over interleaved rounds. Pure: numpy only, no torch, no process groups.

A comparison samples its parts round by round: round r holds one sample of every part, taken
back to back, the order of the parts rotated from round to round. A figure that compares parts
(overlap efficiency, speedup, exposed communication) is computed from the parts' medians; its
interval comes from a paired bootstrap that draws round indices with replacement, the same
indices for every part, so drift shared by the parts of a round cancels out of the figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

NUM_RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0
"""Fixed: the same samples always give the same interval (results must be reproducible)."""


class Interval(NamedTuple):
    """A point estimate from all rounds and its bootstrap interval [low, high]."""

    point: float
    low: float
    high: float

    def bounds(self) -> list[float]:
        return [self.low, self.high]


def rotation(num_parts: int, round_index: int) -> tuple[int, ...]:
    """The order in which round `round_index` samples parts 0..num_parts-1: rotated by one each
    round, so every part leads equally often. Depends on nothing but its arguments, so every rank
    computes the same order and issues the same collectives."""
    if num_parts < 1 or round_index < 0:
        raise ValueError(f"rotation needs >= 1 part and a round index >= 0, got {num_parts}, {round_index}")
    return tuple((i + round_index) % num_parts for i in range(num_parts))


def _as_rounds(samples: Mapping[str, Sequence[float]]) -> tuple[list[str], np.ndarray]:
    names = list(samples)
    if not names:
        raise ValueError("no parts to pair")
    lengths = {name: len(samples[name]) for name in names}
    if len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
        raise ValueError(f"paired parts need the same, non-zero number of rounds, got {lengths}")
    return names, np.asarray([samples[name] for name in names], dtype=float)


def paired_interval(samples: Mapping[str, Sequence[float]],
                    statistic: Callable[[Mapping[str, np.ndarray]], np.ndarray], *,
                    num_resamples: int = NUM_RESAMPLES, confidence: float = CONFIDENCE,
                    seed: int = SEED) -> Interval | None:
    """`statistic` of the parts' medians, with a paired bootstrap interval over rounds.

    `samples[name][r]` is part `name`'s sample of round r. One resample draws R round indices
    with replacement and takes each part's median over the drawn rounds; `statistic` receives
    {name: medians} (numpy arrays, one entry per resample, so it must use numpy arithmetic) and
    returns one value per resample. The point estimate is `statistic` of the medians over all
    rounds. None when the statistic is undefined (not finite) on all rounds.
    """
    names, rounds = _as_rounds(samples)
    point = float(np.asarray(statistic({n: np.median(rounds[i]) for i, n in enumerate(names)})))
    rng = np.random.default_rng(seed)
    num_rounds = rounds.shape[1]
    values = np.empty(num_resamples)
    block = max(1, 2_000_000 // (len(names) * num_rounds))  # bounded memory
    for first in range(0, num_resamples, block):
        count = min(block, num_resamples - first)
        picks = rng.integers(0, num_rounds, size=(count, num_rounds))
        medians = np.median(rounds[:, picks], axis=2)  # (parts, count)
        with np.errstate(divide="ignore", invalid="ignore"):
            values[first:first + count] = statistic({n: medians[i] for i, n in enumerate(names)})
    values = values[np.isfinite(values)]
    if not np.isfinite(point) or values.size == 0:
        return None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Interval(point, float(low), float(high))


def median_interval(data: Sequence[float], **kwargs) -> Interval | None:
    """The median of one part's rounds and its bootstrap interval."""
    return paired_interval({"x": data}, lambda m: m["x"], **kwargs)


def per_round_means(values: Sequence[float], num_rounds: int) -> list[float]:
    """`values` holds num_rounds equal runs (one per round, in order): the mean of each run."""
    if num_rounds < 1 or len(values) % num_rounds:
        raise ValueError(f"{len(values)} values do not split into {num_rounds} equal rounds")
    width = len(values) // num_rounds
    return [float(np.mean(values[r * width:(r + 1) * width])) for r in range(num_rounds)]
