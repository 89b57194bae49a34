"""comparison.md: short enough for a PR comment or a CI step summary. Renders; judges nothing.

The verdict first, then the regressed and noisy cells, then everything else folded away.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agrs_bench.gate.verdicts import CONFIDENCE, FAMILY_ALPHA, CellComparison, Verdict

HEADLINE = {"regressed": "REGRESSED", "noisy": "PASS (some cells too noisy to judge)",
            "improved": "PASS (improved)", "unchanged": "PASS"}


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Everything comparison.md shows, already decided."""

    verdict: Verdict
    """The overall verdict (gate.overall)."""
    cells: Sequence[CellComparison]
    """Every matched cell, judged."""
    threshold: float
    """Relative threshold, e.g. 0.05."""
    base: Sequence[dict[str, Any]]
    """Base launches (results documents)."""
    head: Sequence[dict[str, Any]]
    """Head launches."""
    base_origins: Sequence[str]
    """Where each base launch was read from."""
    head_origins: Sequence[str]
    """Where each head launch was read from."""
    mismatches: Sequence[str] = ()
    """Differences that would make the sides incomparable (shown when allowed)."""
    only_base: Sequence[str] = ()
    """Cells measured in base only."""
    only_head: Sequence[str] = ()
    """Cells measured in head only."""
    quiet_threshold: float = 0.0
    """Smallest threshold that flags no cell (the A/A calibration figure)."""
    plots: Sequence[tuple[str, str]] = ()
    """(title, path relative to comparison.md)."""


def _side(name: str, docs: Sequence[dict[str, Any]], origins: Sequence[str]) -> str:
    info = docs[0]["machine_info"]
    commits = sorted({(d["commit_info"].get("id") or "?")[:10] for d in docs})
    return (f"- {name}: {len(docs)} launch(es) of {', '.join(commits)} on {info.get('gpu_name') or 'cpu'} "
            f"x{info.get('world_size')} ({info.get('backend')}, NCCL {info.get('nccl_version') or '-'}); "
            f"{', '.join(f'`{o}`' for o in origins[:4])}{' ...' if len(origins) > 4 else ''}")


def _notes(c: Comparison) -> list[str]:
    notes = [f"cannot normally be compared, allowed by --allow-mismatch: {m}" for m in c.mismatches]
    for name, docs, origins in (("base", c.base, c.base_origins), ("head", c.head, c.head_origins)):
        for doc, origin in zip(docs, origins):
            if not doc["agrs_bench"].get("complete", True):
                notes.append(f"{name} launch `{origin}` is INCOMPLETE "
                             f"({len(doc['agrs_bench'].get('missing_cells', []))} cell(s) missing)")
        if len(docs) < 3:
            notes.append(f"{name} has {len(docs)} launch(es): launch-to-launch noise is measured from too few "
                         "launches (with one launch per side nothing is decided); use 3 or more per side")
    if c.only_base:
        notes.append(f"{len(c.only_base)} cell(s) only in base, not judged: {', '.join(c.only_base[:8])}"
                     + (" ..." if len(c.only_base) > 8 else ""))
    if c.only_head:
        notes.append(f"{len(c.only_head)} cell(s) only in head, not judged: {', '.join(c.only_head[:8])}"
                     + (" ..." if len(c.only_head) > 8 else ""))
    return notes


def _interval(low: float, high: float) -> str:
    return "–" if math.isnan(low) else f"[{low:.3f}, {high:.3f}]"


def _table(cells: Sequence[CellComparison], last: str) -> list[str]:
    """One row per cell; the last column is the cell's `last` field ("reason" or "verdict")."""
    rows = ["| cell | base ms | head ms | head/base | 95% interval | p slower (Holm) | launches b/h "
            f"| {last} |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in cells:
        rows.append(f"| {c.name} | {c.base_median_s * 1e3:.4g} | {c.head_median_s * 1e3:.4g} | {c.ratio:.3f} "
                    f"| {_interval(c.ci_low, c.ci_high)} | {c.p_slower:.2g} | {c.base_launches}/{c.head_launches} "
                    f"| {getattr(c, last)} |")
    return rows


def count_line(c: Comparison) -> str:
    counts = {v: sum(1 for cell in c.cells if cell.verdict == v)
              for v in ("regressed", "noisy", "improved", "unchanged")}
    return (", ".join(f"{n} {v}" for v, n in counts.items()) + f" of {len(c.cells)} cells "
            f"(threshold ±{c.threshold:.1%})")


def render(c: Comparison) -> str:
    lines = [f"## agrs_bench gate: {HEADLINE[c.verdict]}", "", f"**{count_line(c)}**", "",
             _side("base", c.base, c.base_origins), _side("head", c.head, c.head_origins),
             f"- per cell: head/base = ratio of the geometric means of launch medians (seconds per "
             f"iteration; a launch is the independent unit), {CONFIDENCE:.0%} t interval from the cell's "
             f"own launches. regressed = slower by more than {c.threshold:.0%} with family-wise error "
             f"{FAMILY_ALPHA:.0%} over all {len(c.cells)} cells (Holm on moderated-t p-values, "
             f"docs/gate.md); noisy = the interval is wider than the band or undecided: never fails",
             f"- the family-wise tests would flag no cell at a threshold of {c.quiet_threshold:.1%} or more",
             ""]
    notes = _notes(c)
    if notes:
        lines += ["### Warnings", ""] + [f"- {n}" for n in notes] + [""]
    for verdict, title in (("regressed", "Regressed"), ("noisy", "Noisy (too wide to judge; never fails the gate)")):
        picked = [cell for cell in c.cells if cell.verdict == verdict]
        if picked:
            lines += [f"### {title}", ""] + _table(picked, "reason") + [""]
    rest = [cell for cell in c.cells if cell.verdict in ("improved", "unchanged")]
    if rest:
        lines += [f"<details><summary>Improved and unchanged cells ({len(rest)})</summary>", ""]
        lines += _table(sorted(rest, key=lambda cell: (cell.verdict, cell.name)), "verdict")
        lines += ["", "</details>", ""]
    if c.plots:
        lines += [f"![{title}]({path})" for title, path in c.plots] + [""]
    return "\n".join(lines)
