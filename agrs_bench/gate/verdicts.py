"""The perf gate, pure: match cells of two sides, judge each, and check the sides are comparable.

A side is a list of launches (results documents); a launch is the independent unit, the samples
inside it are not. Per cell the quantity is seconds per iteration (smaller is better), summarized
per launch by its median; the statistic is the ratio head/base of the geometric means of launch
medians (`stats.compare_launches`), with a 95% t interval from the cell's own launches.

Verdict of one cell, threshold t (docs/gate.md explains why; the checks run in this order):
  noisy      the cell's own 95% interval is wider than the band [1 - t, 1 + t], or a side has a
             single launch while the other has one too: the cell cannot resolve a change of t.
             Never fails the gate.
  regressed  slower by MORE than t, with family-wise confidence: the one-sided test of
             "ratio <= 1 + t" (moderated t) rejects after Holm's correction over all cells at
             FAMILY_ALPHA, and the cell's own interval lies above 1.
  improved   the mirror image: faster by more than t.
  unchanged  the cell's own interval lies inside [1 - t, 1 + t].
  noisy      anything else: near the threshold, undecided.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agrs_bench.analysis import stats
from agrs_bench.results import schema

Verdict = Literal["improved", "unchanged", "regressed", "noisy"]
VERDICTS: tuple[Verdict, ...] = ("regressed", "noisy", "improved", "unchanged")
DEFAULT_THRESHOLD = 0.05
CONFIDENCE = 0.95
FAMILY_ALPHA = 0.05
"""Family-wise error rate of the gate: the chance that any cell of a comparison is called
regressed (or improved) although its true change is within the threshold."""
# What must match for two launches to be compared: (what it is called, how to read it).
COMPARABLE: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("GPU model", lambda doc: doc["machine_info"].get("gpu_name")),
    ("GPU count", lambda doc: doc["machine_info"].get("world_size")),
    ("layout", lambda doc: doc["machine_info"].get("layout")),
    ("dtype", lambda doc: sorted({b["params"]["dtype"] for b in doc["benchmarks"]})),
    # How samples were taken: a launch-bound sample and a held one differ 3-5x at 1 MiB.
    ("timing method", lambda doc: {k: (doc["agrs_bench"].get("config") or {}).get(k)
                                   for k in ("hide_launch", "ops_per_sample", "target_sample_ms")}),
    # Schema 1 timed each cell alone, schema 2 samples a comparison's cells in the same rounds.
    ("timing engine (schema version)", lambda doc: doc["agrs_bench"].get("schema_version")),
)


@dataclass(frozen=True, kw_only=True)
class CellComparison:
    """One cell judged: base against head."""

    name: str
    """The cell's id, e.g. `ag_rs-dense-pg_collection-64MiB`."""
    params: dict[str, Any]
    """The cell's params (from head)."""
    base_median_s: float
    """Geometric mean of base's launch medians, seconds per iteration: the estimator of `ratio`,
    so head_median_s / base_median_s == ratio and the two never point different ways."""
    head_median_s: float
    """Geometric mean of head's launch medians, seconds per iteration."""
    ratio: float
    """head / base, geometric means of the launch medians: above 1 is slower."""
    ci_low: float
    """Lower end of the cell's own 95% t interval of `ratio` (nan: one launch per side)."""
    ci_high: float
    """Upper end of that interval."""
    p_slower: float
    """Holm-adjusted p-value of "slower by at most the threshold" (small: slower by more)."""
    p_faster: float
    """Holm-adjusted p-value of "faster by at most the threshold" (small: faster by more)."""
    base_launches: int
    """Launches on the base side that hold this cell."""
    head_launches: int
    """Launches on the head side that hold this cell."""
    verdict: Verdict
    """improved, unchanged, regressed or noisy."""
    reason: str
    """One line: why this verdict."""
    evidence: stats.LogRatio
    """The cell's statistics on the log scale (for recomputing at another threshold)."""
    base_ci_s: tuple[float, float] = (math.nan, math.nan)
    """95% t interval of `base_median_s` from base's launches (nan with one launch)."""
    head_ci_s: tuple[float, float] = (math.nan, math.nan)
    """95% t interval of `head_median_s` from head's launches."""


def _band(t: float) -> tuple[float, float]:
    return 1 - t, 1 + t


def _too_wide(r: float, lo: float, hi: float, t: float, p_slower: float, p_faster: float) -> str | None:
    if math.isnan(lo):
        return "one launch per side: launch-to-launch noise unknown, nothing can be decided"
    if hi / lo > (1 + t) / (1 - t):
        low, high = _band(t)
        if lo > high or hi < low:
            # The interval does resolve the threshold; what holds the cell back is the test or the width.
            side, p = (f"above +{t:.0%}", p_slower) if lo > high else (f"below -{t:.0%}", p_faster)
            why = ("the family-wise test does not decide" if p > FAMILY_ALPHA
                   else f"it is wider than the ±{t:.0%} band, so the gate does not trust it")
            return f"interval [{lo:.3f}, {hi:.3f}] lies wholly {side}, but {why} (Holm-adjusted p {p:.2g})"
        return (f"interval [{lo:.3f}, {hi:.3f}] is wider than the ±{t:.0%} band: "
                f"this cell cannot resolve a change of {t:.0%}")
    return None


def _regressed(r: float, lo: float, hi: float, t: float, p_slower: float, p_faster: float) -> str | None:
    if p_slower <= FAMILY_ALPHA and lo > 1:
        return (f"{r - 1:+.1%}: slower by more than {t:.0%} "
                f"(Holm-adjusted p = {p_slower:.2g} over all cells), interval above 1")
    return None


def _improved(r: float, lo: float, hi: float, t: float, p_slower: float, p_faster: float) -> str | None:
    if p_faster <= FAMILY_ALPHA and hi < 1:
        return (f"{r - 1:+.1%}: faster by more than {t:.0%} "
                f"(Holm-adjusted p = {p_faster:.2g} over all cells), interval below 1")
    return None


def _undecided(r: float, lo: float, hi: float, t: float, p_slower: float, p_faster: float) -> str | None:
    low, high = _band(t)
    if lo < low or hi > high:
        return (f"interval [{lo:.3f}, {hi:.3f}] reaches past ±{t:.0%} and the family-wise test "
                f"does not decide (adjusted p {min(p_slower, p_faster):.2g})")
    return None


# In order: noise first, so a cell that cannot resolve the threshold never counts as regressed.
CHECKS: tuple[tuple[Verdict, Callable[..., str | None]], ...] = (
    ("noisy", _too_wide), ("regressed", _regressed), ("improved", _improved), ("noisy", _undecided))


def judge(ratio: float, ci_low: float, ci_high: float, threshold: float, *,
          p_slower: float = 1.0, p_faster: float = 1.0) -> tuple[Verdict, str]:
    """(verdict, reason) of one cell; the first check that returns a message decides.

    p_slower / p_faster are the Holm-adjusted p-values of the cell (see `decide`)."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold {threshold!r} must lie strictly between 0 and 1")
    for verdict, check in CHECKS:
        message = check(ratio, ci_low, ci_high, threshold, p_slower, p_faster)
        if message:
            return verdict, message
    return "unchanged", f"interval [{ci_low:.3f}, {ci_high:.3f}] inside ±{threshold:.0%}"


@dataclass(frozen=True)
class Decision:
    """One cell's evidence at one threshold."""

    ratio: float
    ci_low: float
    ci_high: float
    p_slower: float
    p_faster: float
    verdict: Verdict
    reason: str


def _exp(x: float) -> float:
    """exp that says inf where math.exp raises OverflowError (an interval over a few wildly
    spread launches is unbounded, not an error)."""
    return math.inf if x > 709 else math.exp(x)


def decide(evidence: Sequence[stats.LogRatio], threshold: float) -> list[Decision]:
    """Judge every cell of one comparison together.

    Per cell, one-sided moderated-t tests of "ratio <= 1 + t" and of "ratio >= 1 - t"; each
    family (slower, faster) is Holm-corrected over all cells, so the chance that ANY cell is
    called regressed while its true change is within the threshold is at most FAMILY_ALPHA.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold {threshold!r} must lie strictly between 0 and 1")
    up, down = math.log1p(threshold), math.log1p(-threshold)
    raw_slower = [stats.p_above(e.diff, up, e.moderated_se, e.moderated_df) for e in evidence]
    raw_faster = [stats.p_above(-e.diff, -down, e.moderated_se, e.moderated_df) for e in evidence]
    slower, faster = stats.holm(raw_slower), stats.holm(raw_faster)
    out = []
    for e, p_slow, p_fast in zip(evidence, slower, faster):
        lo, hi = (_exp(x) for x in stats.t_interval(e.diff, e.se, e.df, CONFIDENCE))
        verdict, reason = judge(e.ratio, lo, hi, threshold, p_slower=p_slow, p_faster=p_fast)
        out.append(Decision(e.ratio, lo, hi, p_slow, p_fast, verdict, reason))
    return out


def launches_by_cell(docs: Sequence[dict[str, Any]]) -> dict[tuple, list[list[float]]]:
    """cell key -> one sample list per launch that holds the cell."""
    found: dict[tuple, list[list[float]]] = {}
    for doc in docs:
        for bench in doc["benchmarks"]:
            found.setdefault(schema.cell_key(bench["params"]), []).append(bench["stats"]["data"])
    return found


def params_by_cell(docs: Sequence[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    return {schema.cell_key(b["params"]): b["params"] for doc in docs for b in doc["benchmarks"]}


def center_interval(launches: list[list[float]]) -> tuple[float, tuple[float, float]]:
    """Geometric mean of the launch medians and its 95% t interval over launches."""
    logs = stats.launch_log_medians(launches)
    center = float(logs.mean())
    if len(logs) < 2:
        return math.exp(center), (math.nan, math.nan)
    se = float(logs.std(ddof=1)) / math.sqrt(len(logs))
    low, high = stats.t_interval(center, se, len(logs) - 1, CONFIDENCE)
    return math.exp(center), (math.exp(low), math.exp(high))


def compare(base: Sequence[dict[str, Any]], head: Sequence[dict[str, Any]], *,
            threshold: float = DEFAULT_THRESHOLD) -> list[CellComparison]:
    """Every cell present on both sides, judged together, in head's order."""
    base_cells, head_cells = launches_by_cell(base), launches_by_cell(head)
    params = params_by_cell(head)
    keys = [key for key in head_cells if base_cells.get(key)]
    evidence = stats.compare_launches([(base_cells[key], head_cells[key]) for key in keys])
    out = []
    for key, e, d in zip(keys, evidence, decide(evidence, threshold)):
        (base_s, base_ci), (head_s, head_ci) = center_interval(base_cells[key]), center_interval(head_cells[key])
        out.append(CellComparison(
            name=schema.cell_id(params[key]), params=params[key], base_median_s=base_s, head_median_s=head_s,
            base_ci_s=base_ci, head_ci_s=head_ci,
            ratio=d.ratio, ci_low=d.ci_low, ci_high=d.ci_high, p_slower=d.p_slower, p_faster=d.p_faster,
            base_launches=e.base_launches, head_launches=e.head_launches, verdict=d.verdict,
            reason=d.reason, evidence=e))
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
    """About the smallest threshold (to 0.1%) at which the family-wise tests decide no change.

    For A/A data (the same build on both sides) this is the calibration figure: a gate threshold
    below it could have flagged a change that is not there. The noise check is left out (it only
    holds flags back), so no cell is flagged at this threshold or above. Found by bisection: a
    larger threshold only raises every p-value.
    """
    evidence = [c.evidence for c in cells]

    def flags(t: float) -> bool:
        return any(_regressed(d.ratio, d.ci_low, d.ci_high, t, d.p_slower, d.p_faster)
                   or _improved(d.ratio, d.ci_low, d.ci_high, t, d.p_slower, d.p_faster)
                   for d in decide(evidence, t))

    if not evidence or not flags(0.001):
        return 0.0
    low, high = 0.001, 0.999
    if flags(high):
        return high
    while high - low > 0.001:
        mid = (low + high) / 2
        low, high = (mid, high) if flags(mid) else (low, mid)
    return high
