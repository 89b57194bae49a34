"""Pure statistics over immutable samples: no torch, no pandas, no process groups.

Quartiles follow pytest-benchmark (Wikipedia "Quartile", methods 2 and 3) so the numbers in
results.json mean what `pytest-benchmark compare` thinks they mean. The bootstrap resamples
launches first, then the samples inside each launch: a launch (one process start, its own
communicators and clocks) is the independent unit, iterations inside it are not.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from typing import Sequence

import numpy as np


def quartiles(data: Sequence[float]) -> tuple[float, float]:
    """(q1, q3): Wikipedia "Quartile" method 3 for odd counts, method 2 for even ones."""
    values = sorted(data)
    rounds = len(values)
    if rounds == 1:
        return values[0], values[0]
    if rounds % 2:
        n, rest = rounds // 4, rounds % 4
        if rest == 1:
            return (0.25 * values[n - 1] + 0.75 * values[n],
                    0.75 * values[3 * n] + 0.25 * values[3 * n + 1])
        return (0.75 * values[n] + 0.25 * values[n + 1],
                0.25 * values[3 * n + 1] + 0.75 * values[3 * n + 2])
    return statistics.median(values[: rounds // 2]), statistics.median(values[rounds // 2:])


def summarize(data: Sequence[float]) -> dict[str, float | int | str]:
    """The `stats` block of a pytest-benchmark benchmark, from raw samples (seconds)."""
    values = sorted(data)
    if not values:
        raise ValueError("no samples to summarize")
    mean = statistics.mean(values)
    stddev = statistics.stdev(values) if len(values) > 1 else 0.0
    q1, q3 = quartiles(values)
    iqr = q3 - q1
    low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    hd_pos = bisect_right(values, high)
    total = sum(values)
    stddev_outliers = sum(1 for v in values if abs(v - mean) > stddev) if len(values) > 1 else 0
    iqr_outliers = sum(1 for v in values if v < low or v > high)
    return {
        "min": values[0], "max": values[-1], "mean": mean, "stddev": stddev,
        "rounds": len(values), "median": statistics.median(values),
        "iqr": iqr, "q1": q1, "q3": q3,
        "iqr_outliers": iqr_outliers, "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": values[bisect_left(values, low)] if len(values) > 1 else values[0],
        "hd15iqr": values[-1] if hd_pos == len(values) else values[hd_pos],
        "ops": len(values) / total if total else 0.0,
        "total": total,
    }


def bootstrap_median_ratio(base: Sequence[Sequence[float]], head: Sequence[Sequence[float]], *,
                           num_resamples: int = 2000, confidence: float = 0.95,
                           seed: int = 0) -> tuple[float, float, float]:
    """(ratio, low, high): median(head)/median(base) and its bootstrap confidence interval.

    Each side is a list of launches, each launch a list of samples. One resample draws launches
    with replacement, then samples with replacement inside each drawn launch, and takes the
    median of everything drawn.
    """
    if not base or not head or not all(base) or not all(head):
        raise ValueError("each side needs at least one launch with at least one sample")
    rng = np.random.default_rng(seed)

    def resampled_medians(launches: Sequence[Sequence[float]]) -> np.ndarray:
        arrays = [np.asarray(launch, dtype=float) for launch in launches]
        sizes = np.array([a.size for a in arrays])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        flat = np.concatenate(arrays)
        width = int(sizes.max())
        # Vectorized in blocks of resamples (bounded memory): row i of a block draws len(arrays)
        # launches, then `size` samples of each drawn launch; unequal launches pad with NaN.
        block = max(1, 4_000_000 // (len(arrays) * width))
        medians = np.empty(num_resamples)
        for first in range(0, num_resamples, block):
            count = min(block, num_resamples - first)
            picks = rng.integers(0, len(arrays), size=(count, len(arrays)))
            drawn_sizes = sizes[picks][..., None]
            offsets = (rng.random((count, len(arrays), width)) * drawn_sizes).astype(np.int64)
            values = flat[starts[picks][..., None] + np.minimum(offsets, drawn_sizes - 1)]
            if np.all(sizes == width):
                medians[first:first + count] = np.median(values.reshape(count, -1), axis=1)
            else:
                values = np.where(np.arange(width) < drawn_sizes, values, np.nan)
                medians[first:first + count] = np.nanmedian(values.reshape(count, -1), axis=1)
        return medians

    point = float(np.median(np.concatenate([np.asarray(x, float) for x in head])) /
                  np.median(np.concatenate([np.asarray(x, float) for x in base])))
    ratios = resampled_medians(head) / resampled_medians(base)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return point, float(low), float(high)
