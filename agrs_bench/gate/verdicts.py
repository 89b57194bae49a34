"""The perf gate, pure: match cells of two sides, judge each, and check the sides are comparable.

A side is a list of launches (results documents); a launch is the independent unit, the samples
inside it are not. Per cell the quantity is the median seconds per iteration (smaller is better)
and the statistic is median(head)/median(base) with a 95% bootstrap interval that resamples
launches, then samples (`stats.bootstrap_median_ratio`).

Verdict of one cell, threshold t, ratio r, interval [lo, hi] (docs/gate.md explains why):
  regressed  r > 1 + t and lo > 1   (slower by more than t, and the interval excludes no change)
  improved   r < 1 - t and hi < 1
  unchanged  the whole interval lies inside [1 - t, 1 + t]
  noisy      anything else: the interval reaches past the band without deciding a change
Noise is judged first, so a noisy cell is never reported as regressed.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

from agrs_bench.results import schema
from agrs_bench.analysis import stats

Verdict = Literal["improved", "unchanged", "regressed", "noisy"]
VERDICTS: tuple[Verdict, ...] = ("regressed", "noisy", "improved", "unchanged")
DEFAULT_THRESHOLD = 0.05
CONFIDENCE = 0.95
# What must match for two launches to be compared: (what it is called, how to read it).
COMPARABLE: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("GPU model", lambda doc: doc["machine_info"].get("gpu_name")),
    ("GPU count", lambda doc: doc["machine_info"].get("world_size")),
    ("layout", lambda doc: doc["machine_info"].get("layout")),
    ("dtype", lambda doc: sorted({b["params"]["dtype"] for b in doc["benchmarks"]})),
    # How samples were taken: a launch-bound sample and a held one differ 3-5x at 1 MiB.
    ("timing method", lambda doc: {k: (doc["agrs_bench"].get("config") or {}).get(k)
                                   for k in ("hide_launch", "ops_per_sample", "target_sample_ms")}),
)


@dataclass(frozen=True, kw_only=True)
class CellComparison:
    """One cell judged: base against head."""

    name: str
    """The cell's id, e.g. `ag_rs-dense-pg_collection-64MiB`."""
    params: dict[str, Any]
    """The cell's params (from head)."""
    base_median_s: float
    """Median of all base samples pooled, seconds per iteration."""
    head_median_s: float
    """Median of all head samples pooled, seconds per iteration."""
    ratio: float
    """head / base medians: above 1 is slower."""
    ci_low: float
    """Lower end of the bootstrap confidence interval of `ratio`."""
    ci_high: float
    """Upper end of the bootstrap confidence interval of `ratio`."""
    base_launches: int
    """Launches on the base side that hold this cell."""
    head_launches: int
    """Launches on the head side that hold this cell."""
    verdict: Verdict
    """improved, unchanged, regressed or noisy."""
    reason: str
    """One line: why this verdict."""


def _noisy(r: float, lo: float, hi: float, t: float) -> str | None:
    decided = (r > 1 + t and lo > 1) or (r < 1 - t and hi < 1)
    if (lo < 1 - t or hi > 1 + t) and not decided:
        return (f"interval [{lo:.3f}, {hi:.3f}] reaches past ±{t:.0%} without excluding "
                f"{'no change' if lo <= 1 <= hi else 'a change within the threshold'}")
    return None


def _regressed(r: float, lo: float, hi: float, t: float) -> str | None:
    if r > 1 + t and lo > 1:
        return f"{r - 1:+.1%}: slower by more than {t:.0%}, interval above 1"
    return None


def _improved(r: float, lo: float, hi: float, t: float) -> str | None:
    if r < 1 - t and hi < 1:
        return f"{r - 1:+.1%}: faster by more than {t:.0%}, interval below 1"
    return None


# In order: noise first, so an undecided interval never counts as a regression.
CHECKS: tuple[tuple[Verdict, Callable[[float, float, float, float], str | None]], ...] = (
    ("noisy", _noisy), ("regressed", _regressed), ("improved", _improved))


def judge(ratio: float, ci_low: float, ci_high: float, threshold: float) -> tuple[Verdict, str]:
    """(verdict, reason) of one cell; the first check that returns a message decides."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold {threshold!r} must lie strictly between 0 and 1")
    for verdict, check in CHECKS:
        message = check(ratio, ci_low, ci_high, threshold)
        if message:
            return verdict, message
    return "unchanged", f"interval [{ci_low:.3f}, {ci_high:.3f}] inside ±{threshold:.0%}"


def launches_by_cell(docs: Sequence[dict[str, Any]]) -> dict[tuple, list[list[float]]]:
    """cell key -> one sample list per launch that holds the cell."""
    found: dict[tuple, list[list[float]]] = {}
    for doc in docs:
        for bench in doc["benchmarks"]:
            found.setdefault(schema.cell_key(bench["params"]), []).append(bench["stats"]["data"])
    return found


def params_by_cell(docs: Sequence[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    return {schema.cell_key(b["params"]): b["params"] for doc in docs for b in doc["benchmarks"]}


def _pooled_median(launches: list[list[float]]) -> float:
    return statistics.median(x for launch in launches for x in launch)


def compare(base: Sequence[dict[str, Any]], head: Sequence[dict[str, Any]], *,
            threshold: float = DEFAULT_THRESHOLD, num_resamples: int = 2000,
            seed: int = 0) -> list[CellComparison]:
    """Every cell present on both sides, judged, in head's order."""
    base_cells, head_cells = launches_by_cell(base), launches_by_cell(head)
    params = params_by_cell(head)
    out = []
    for key, head_launches in head_cells.items():
        base_launches = base_cells.get(key)
        if not base_launches:
            continue
        ratio, low, high = stats.bootstrap_median_ratio(
            base_launches, head_launches, num_resamples=num_resamples, confidence=CONFIDENCE, seed=seed)
        verdict, reason = judge(ratio, low, high, threshold)
        out.append(CellComparison(
            name=schema.cell_id(params[key]), params=params[key],
            base_median_s=_pooled_median(base_launches), head_median_s=_pooled_median(head_launches),
            ratio=ratio, ci_low=low, ci_high=high, base_launches=len(base_launches),
            head_launches=len(head_launches), verdict=verdict, reason=reason))
    return out


def unmatched(base: Sequence[dict[str, Any]], head: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(cells only in base, cells only in head), by id."""
    base_p, head_p = params_by_cell(base), params_by_cell(head)
    return ([schema.cell_id(p) for k, p in base_p.items() if k not in head_p],
            [schema.cell_id(p) for k, p in head_p.items() if k not in base_p])


def mismatches(base: Sequence[dict[str, Any]], head: Sequence[dict[str, Any]]) -> list[str]:
    """Why the launches cannot be compared (empty when they can): GPU model, count, layout, dtype.

    Launches of one side must agree with each other too, or the side is no single measurement.
    """
    messages = []
    for what, read in COMPARABLE:
        for side, docs in (("BASE", base), ("HEAD", head)):
            values = [read(doc) for doc in docs]
            if any(v != values[0] for v in values):
                messages.append(f"{side} launches differ in {what}: {_distinct(values)}")
        b, h = read(base[0]), read(head[0])
        if b != h:
            messages.append(f"{what} differs: base {b!r}, head {h!r}")
    only_base, _ = unmatched(base, head)
    if len(only_base) == len(params_by_cell(base)):
        messages.append("base and head share no cell")
    elif only_base:
        # A head that silently stops measuring cells must not pass the gate.
        messages.append(f"head lacks {len(only_base)} cell(s) of base: {', '.join(only_base[:5])}"
                        + (" ..." if len(only_base) > 5 else ""))
    return messages


def _distinct(values: list[Any]) -> str:
    seen: list[Any] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return ", ".join(repr(v) for v in seen)


def overall(cells: Sequence[CellComparison]) -> Verdict:
    """regressed if any cell regressed; else noisy, improved, unchanged, in that order of note."""
    found = {c.verdict for c in cells}
    return next((v for v in VERDICTS if v in found), "unchanged")


def quiet_threshold(cells: Sequence[CellComparison]) -> float:
    """The smallest threshold at which no cell would be flagged regressed or improved.

    For A/A data (the same build on both sides) this is the calibration figure: a gate threshold
    below it would have flagged a change that is not there.
    """
    worst = 0.0
    for c in cells:
        if c.ci_low > 1:
            worst = max(worst, c.ratio - 1)
        elif c.ci_high < 1:
            worst = max(worst, 1 - c.ratio)
    return worst
