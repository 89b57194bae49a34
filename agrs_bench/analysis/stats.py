"""Pure statistics over immutable samples: no torch, no pandas, no process groups.

The `stats` block of every cell is pytest-benchmark's own `Stats` over the raw samples, so the
numbers in results.json mean what `pytest-benchmark compare` thinks they mean, under whichever
pytest-benchmark is installed (its `hd15iqr` changed in 5.3.1; a copy would drift).

The gate's statistics treat a launch (one process start: its own communicators, clocks and GPU
state) as the independent unit; samples inside a launch are correlated and are summarized by the
launch's median first. Per cell the effect is the difference of mean log launch-medians (head -
base); its variance comes from the spread of launch medians. With 3 launches a side that estimate
has 4 degrees of freedom, so the t quantiles are huge; each cell's own part of the variance is
therefore moderated (shrunk towards a prior fitted to all cells, empirical Bayes, Smyth 2004,
"limma"), which adds the prior's degrees of freedom where the cells agree about the noise and
nothing where they do not, while the part that whole launches share keeps its few degrees of
freedom. docs/gate.md says why and what the procedure guarantees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pytest_benchmark.stats import Stats

# scipy is imported inside the functions that need it: it costs ~0.9 s of CPU per process, and
# every rank and launcher imports this module while only some of them ever compute an interval.

MAX_DF = 1e6
"""Degrees of freedom treated as infinite (the t distribution is then the normal one)."""


def library_stats(data: Sequence[float]) -> Stats:
    """pytest-benchmark's Stats over `data`, fed through its public `update`."""
    found = Stats()
    for value in data:
        found.update(value)
    return found


def quartiles(data: Sequence[float]) -> tuple[float, float]:
    """(q1, q3) as pytest-benchmark computes them."""
    found = library_stats(data)
    return found.q1, found.q3


def summarize(data: Sequence[float]) -> dict[str, float | int | str]:
    """The `stats` block of a pytest-benchmark benchmark, from raw samples (seconds): every field
    of `Stats.fields`, read from the installed pytest-benchmark."""
    if not len(data):
        raise ValueError("no samples to summarize")
    found = library_stats([float(x) for x in data])
    return {field: getattr(found, field) for field in Stats.fields}


# --- the gate: launches against launches --------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LogRatio:
    """One cell of a comparison on the log scale: the effect, its own and its moderated spread."""

    diff: float
    """mean log launch-median of head minus that of base: log of the ratio head/base."""
    base_launches: int
    """Launches on the base side."""
    head_launches: int
    """Launches on the head side."""
    se: float
    """Standard error of `diff` from this cell's own launches (pooled variance); nan with no df."""
    df: float
    """Degrees of freedom of `se`: base_launches + head_launches - 2."""
    moderated_se: float
    """Standard error of `diff` with the moderated variance (nan with no variance at all)."""
    moderated_df: float
    """Degrees of freedom of `moderated_se`: df + the prior's."""

    @property
    def ratio(self) -> float:
        return math.exp(self.diff)


def launch_log_medians(launches: Sequence[Sequence[float]]) -> np.ndarray:
    """log median of each launch's samples: the unit the gate compares."""
    if not launches or not all(len(launch) for launch in launches):
        raise ValueError("each side needs at least one launch with at least one sample")
    medians = np.array([float(np.median(np.asarray(launch, dtype=float))) for launch in launches])
    # A median of 0 s is a time below the clock's resolution, not a crash of the gate.
    return np.log(np.maximum(medians, 1e-12))


def trigamma_inverse(x: float) -> float:
    """y with trigamma(y) = x (Newton's method as in limma's trigammaInverse)."""
    from scipy import special
    if x > 1e7:
        return 1.0 / math.sqrt(x)
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = float(special.polygamma(1, y))
        step = tri * (1 - tri / x) / float(special.polygamma(2, y))
        y += step
        if -step / y < 1e-8:
            break
    return y


def variance_prior(variances: Sequence[float], dfs: Sequence[float]) -> tuple[float, float]:
    """(d0, s0^2): the scaled inverse chi-square prior of the cells' variances, by the method of
    moments on log variances (Smyth 2004, section 6.2). d0 = 0 (no prior) with fewer than 3 cells
    that have a positive variance; d0 = inf when the variances agree as closely as chance allows."""
    from scipy import special
    pairs = [(v, d) for v, d in zip(variances, dfs) if d > 0 and v > 0 and math.isfinite(v)]
    if len(pairs) < 3:
        return 0.0, 0.0
    s2 = np.array([v for v, _ in pairs])
    d = np.array([d for _, d in pairs])
    e = np.log(s2) - special.digamma(d / 2) + np.log(d / 2)
    excess = float(np.var(e, ddof=1) - np.mean(special.polygamma(1, d / 2)))
    if excess <= 0:
        return math.inf, float(np.exp(np.mean(e)))
    d0 = 2 * trigamma_inverse(excess)
    return d0, float(np.exp(np.mean(e) + special.digamma(d0 / 2) - math.log(d0 / 2)))


def compare_launches(cells: Sequence[tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]]]
                     ) -> list[LogRatio]:
    """Every cell's (base launches, head launches) -> its LogRatio, variances moderated together.

    Launches are listed in the same order for every cell (launch k of a side is one process
    start). Per cell, y = log launch-medians; its own spread is the pooled variance of y about
    each side's mean (df = n_b + n_h - 2). That spread has two parts:

    - a part every cell shares (a whole launch ran faster: clocks, a hot GPU), estimated per
      launch as the median residual over the cells measured in every launch. It is ONE estimate
      for all cells, with N_b + N_h - 2 degrees of freedom however many cells there are;
    - each cell's own remainder, whose variances are moderated across cells (Smyth 2004).

    The moderated variance is their sum, with Welch-Satterthwaite degrees of freedom, so when
    launches move together the test falls back to the few launches there are.
    """
    logs = [(launch_log_medians(base), launch_log_medians(head)) for base, head in cells]
    if not logs:
        return []
    n_base, n_head = max(len(b) for b, _ in logs), max(len(h) for _, h in logs)
    residuals = [np.concatenate([b - b.mean(), h - h.mean()]) for b, h in logs]
    complete = [r for (b, h), r in zip(logs, residuals) if len(b) == n_base and len(h) == n_head]
    shared_df = n_base + n_head - 2
    if len(complete) >= 3 and shared_df > 0:
        shared = np.median(np.array(complete), axis=0)
        shared_var = float(np.sum(shared ** 2)) / shared_df
    else:
        shared, shared_var = None, 0.0
    rows = []
    for (b, h), r in zip(logs, residuals):
        df = len(b) + len(h) - 2
        own = r - shared if shared is not None and len(r) == len(shared) else r
        rows.append((float(h.mean() - b.mean()), len(b), len(h), df,
                     float(np.sum(r ** 2)) / df if df else math.nan,
                     float(np.sum(own ** 2)) / df if df else math.nan))
    d0, s0_sq = variance_prior([row[5] for row in rows], [row[3] for row in rows])
    out = []
    for diff, nb, nh, df, var, own_var in rows:
        scale = 1 / nb + 1 / nh
        if math.isinf(d0):
            mod_var, mod_df = s0_sq, MAX_DF
        elif d0 > 0:
            mod_var = (d0 * s0_sq + (df * own_var if df else 0.0)) / (d0 + df)
            mod_df = min(d0 + df, MAX_DF)
        else:
            mod_var, mod_df = own_var, float(df)
        if shared is not None and df and mod_df:
            total = shared_var + mod_var
            denominator = shared_var ** 2 / shared_df + mod_var ** 2 / mod_df
            total_df = min(total ** 2 / denominator, MAX_DF) if denominator > 0 else MAX_DF
        else:
            total, total_df = mod_var, mod_df
        out.append(LogRatio(diff=diff, base_launches=nb, head_launches=nh,
                            se=math.sqrt(var * scale) if df else math.nan, df=float(df),
                            moderated_se=math.sqrt(total * scale) if total_df else math.nan,
                            moderated_df=total_df))
    return out


def t_interval(center: float, se: float, df: float, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high) of a two-sided Student t interval; (nan, nan) without degrees of freedom."""
    from scipy import stats as scipy_stats
    if not df or not math.isfinite(se):
        return math.nan, math.nan
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, min(df, MAX_DF))) * se
    return center - half, center + half


def p_above(estimate: float, bound: float, se: float, df: float) -> float:
    """One-sided p-value of H0 "true value <= bound" against "above it" (Student t)."""
    from scipy import stats as scipy_stats
    if not df or not math.isfinite(se):
        return 1.0
    if se == 0:
        return 0.0 if estimate > bound else 1.0
    return float(scipy_stats.t.sf((estimate - bound) / se, min(df, MAX_DF)))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979): reject where adjusted <= alpha, and the
    family-wise error rate is at most alpha under any dependence between the tests."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


# --- distribution-free intervals and tests (order statistics, signs) ------------------------------


@dataclass(frozen=True)
class OrderInterval:
    """[low, high] = two order statistics of the samples, and the exact probability that they
    bracket the true median of any continuous distribution (their real coverage)."""

    low: float
    high: float
    coverage: float

    def bounds(self) -> list[float]:
        return [self.low, self.high]


def median_rank_coverage(num_samples: int, rank: int) -> float:
    """P(x_(rank) <= median <= x_(n+1-rank)) for n i.i.d. samples of a continuous distribution:
    1 - 2 P(Binomial(n, 1/2) <= rank - 1). Ranks count from 1."""
    from scipy import stats as scipy_stats
    if not 1 <= rank <= (num_samples + 1) // 2:
        raise ValueError(f"rank {rank} outside 1..{(num_samples + 1) // 2} for {num_samples} samples")
    return float(1.0 - 2.0 * scipy_stats.binom.cdf(rank - 1, num_samples, 0.5))


def min_samples_for(confidence: float) -> int:
    """The fewest samples whose widest order-statistic interval [min, max] reaches `confidence`."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence!r} must lie strictly between 0 and 1")
    return max(1, math.ceil(1 - math.log2(1 - confidence)))


def median_interval(data: Sequence[float], confidence: float = 0.95) -> OrderInterval | None:
    """The narrowest symmetric order-statistic interval of the median whose coverage is at least
    `confidence` (distribution-free; e.g. Conover, Practical Nonparametric Statistics, 3.2).
    None where even [min, max] covers less (fewer than `min_samples_for(confidence)` samples):
    then no interval at that confidence exists, and none is claimed."""
    from scipy import stats as scipy_stats
    values = sorted(float(x) for x in data)
    n = len(values)
    if n < min_samples_for(confidence):
        return None
    ranks = np.arange(1, (n + 1) // 2 + 1)
    coverage = 1.0 - 2.0 * scipy_stats.binom.cdf(ranks - 1, n, 0.5)
    rank = int(ranks[coverage >= confidence][-1])  # coverage falls as the rank grows
    return OrderInterval(values[rank - 1], values[n - rank], float(coverage[rank - 1]))


def sign_test(first: Sequence[float], second: Sequence[float]) -> float:
    """Two-sided p-value of the paired sign test of "first[r] > second[r] as often as below"
    (scipy's exact binomial test); ties are dropped, no pair left gives 1.0. Valid for any
    distribution where the rounds are independent, however few they are."""
    from scipy import stats as scipy_stats
    if len(first) != len(second):
        raise ValueError(f"paired samples need the same length, got {len(first)} and {len(second)}")
    above = sum(1 for a, b in zip(first, second) if a > b)
    below = sum(1 for a, b in zip(first, second) if a < b)
    if above + below == 0:
        return 1.0
    return float(scipy_stats.binomtest(above, above + below, 0.5).pvalue)
