"""comparison.md: short enough for a PR comment or a CI step summary. Renders; judges nothing.

The verdict, counts and the changed cells first (under 60 lines), every cell folded below; paths
relative to the repository.
"""

from __future__ import annotations

import math
import os
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


MAX_CHANGED_ROWS = 20
"""Changed cells listed in the summary; the rest are in the folded table."""
MAX_NOTES = 8


def display_path(origin: str, root: str | None = None) -> str:
    """`origin` relative to the repository (the folder holding .git above the working directory);
    outside it, only its last two parts, so no absolute or temporary path reaches a PR."""
    root = root or _repository_root()
    absolute = os.path.abspath(origin)
    if os.path.basename(absolute) == "results.json":  # the run directory names the launch
        absolute = os.path.dirname(absolute)
    relative = os.path.relpath(absolute, root)
    if not relative.startswith(os.pardir):
        return relative
    parent, name = os.path.split(absolute.rstrip(os.sep))
    return "…/" + "/".join(part for part in (os.path.basename(parent), name) if part)


def _repository_root() -> str:
    folder = os.getcwd()
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return os.getcwd()
        folder = parent


def _side(name: str, docs: Sequence[dict[str, Any]], origins: Sequence[str]) -> str:
    info = docs[0]["machine_info"]
    commits = sorted({(d["commit_info"].get("id") or "?")[:10] for d in docs})
    shown = ", ".join(f"`{display_path(o)}`" for o in origins[:3]) + (" ..." if len(origins) > 3 else "")
    return (f"- {name}: {len(docs)} launch(es) of {', '.join(commits)} on {info.get('gpu_name') or 'cpu'} "
            f"x{info.get('world_size')} ({info.get('backend')}, NCCL {info.get('nccl_version') or '-'}); {shown}")


def _cpu_line(c: Comparison) -> list[str]:
    """Timings of gloo on CPU say nothing about GPUs; the reader must see it before any verdict."""
    sides = [name for name, docs in (("base", c.base), ("head", c.head))
             if any(d["machine_info"].get("backend") == "gloo" for d in docs)]
    if not sides:
        return []
    return [f"**CPU/gloo: timings are not meaningful** ({' and '.join(sides)} ran gloo on CPU): the verdicts "
            "below say nothing about GPUs.", ""]


def _notes(c: Comparison) -> list[str]:
    notes = [f"cannot normally be compared, allowed by --allow-mismatch: {m}" for m in c.mismatches]
    for name, docs, origins in (("base", c.base, c.base_origins), ("head", c.head, c.head_origins)):
        for doc, origin in zip(docs, origins):
            if not doc["agrs_bench"].get("complete", True):
                notes.append(f"{name} launch `{display_path(origin)}` is INCOMPLETE "
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
    if len(notes) > MAX_NOTES:
        notes = notes[:MAX_NOTES - 1] + [f"... and {len(notes) - MAX_NOTES + 1} more warning(s)"]
    return notes


def _interval(low: float, high: float) -> str:
    return "–" if math.isnan(low) else f"[{low:.3f}, {high:.3f}]"


def consistent_numbers(base_s: float, head_s: float, ratio: float) -> tuple[str, str, str]:
    """(base ms, head ms, head/base) as printed, with as many digits as it takes for the printed
    ms to point the same way as the printed ratio (1.000 with 0.0113 -> 0.01131 would not)."""
    def direction(a: float, b: float) -> int:
        return (a > b) - (a < b)

    for digits in range(3, 10):
        text = f"{base_s * 1e3:.{digits + 1}g}", f"{head_s * 1e3:.{digits + 1}g}", f"{ratio:.{digits}f}"
        if direction(float(text[1]), float(text[0])) == direction(float(text[2]), 1.0):
            break
    return text


def _table(cells: Sequence[CellComparison], last: str) -> list[str]:
    """One row per cell; the last column is the cell's `last` field ("reason" or "verdict").
    base ms and head ms are the same estimate as head/base (geometric means of launch medians)."""
    rows = ["| cell | base ms | head ms | head/base | 95% interval | p slower (Holm) | launches b/h "
            f"| {last} |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in cells:
        base_ms, head_ms, ratio = consistent_numbers(c.base_median_s, c.head_median_s, c.ratio)
        rows.append(f"| {c.name} | {base_ms} | {head_ms} | {ratio} "
                    f"| {_interval(c.ci_low, c.ci_high)} | {c.p_slower:.2g} | {c.base_launches}/{c.head_launches} "
                    f"| {getattr(c, last)} |")
    return rows


def count_line(c: Comparison) -> str:
    counts = {v: sum(1 for cell in c.cells if cell.verdict == v)
              for v in ("regressed", "noisy", "improved", "unchanged")}
    return (", ".join(f"{n} {v}" for v, n in counts.items()) + f" of {len(c.cells)} cells "
            f"(threshold ±{c.threshold:.1%})")


def quiet_sentence(c: Comparison) -> str:
    """What the threshold search supports: it looks between 0.1% and 99.9% only."""
    if not c.cells:
        return "- no cell to judge"
    if c.quiet_threshold <= 0.001:
        return "- the family-wise tests flag no cell even at a threshold of 0.1%"
    if c.quiet_threshold >= 0.999:
        return "- the family-wise tests flag some cell at every threshold up to 99.9%"
    return f"- the family-wise tests would flag no cell at a threshold of {c.quiet_threshold:.1%} or more"


def render(c: Comparison) -> str:
    """Summary first (verdict, counts, the changed cells), everything else folded below."""
    lines = [f"## agrs_bench gate: {HEADLINE[c.verdict]}", "", *_cpu_line(c), f"**{count_line(c)}**", "",
             _side("base", c.base, c.base_origins), _side("head", c.head, c.head_origins),
             f"- per cell: head/base of the geometric means of launch medians (seconds per iteration; a launch "
             f"is the independent unit; base ms and head ms are those means), {CONFIDENCE:.0%} t interval from "
             f"the cell's own launches. regressed / improved = changed by more than {c.threshold:.0%} with "
             f"family-wise error {FAMILY_ALPHA:.0%} over all {len(c.cells)} cells (Holm on moderated-t "
             "p-values, docs/gate.md); noisy = interval wider than the band or undecided: never fails",
             quiet_sentence(c), ""]
    notes = _notes(c)
    if notes:
        lines += ["### Warnings", ""] + [f"- {n}" for n in notes] + [""]
    changed = sorted((cell for cell in c.cells if cell.verdict in ("regressed", "improved")),
                     key=lambda cell: (cell.verdict != "regressed", -abs(math.log(cell.ratio))))
    if changed:
        lines += [f"### Changed cells ({len(changed)})", ""] + _table(changed[:MAX_CHANGED_ROWS], "verdict")
        if len(changed) > MAX_CHANGED_ROWS:
            lines.append(f"\n... and {len(changed) - MAX_CHANGED_ROWS} more in the full table below")
        lines.append("")
    noisy = sum(1 for cell in c.cells if cell.verdict == "noisy")
    if noisy:
        lines += [f"{noisy} cell(s) too noisy to judge at ±{c.threshold:.0%} (not trustworthy; never fail the "
                  "gate): see the full table for each one's reason.", ""]
    if c.cells:
        order = {"regressed": 0, "improved": 1, "noisy": 2, "unchanged": 3}
        lines += [f"<details><summary>All {len(c.cells)} cells</summary>", ""]
        lines += _table(sorted(c.cells, key=lambda cell: (order[cell.verdict], cell.name)), "reason")
        lines += ["", "</details>", ""]
    if c.plots:
        lines += [f"![{title}]({path})" for title, path in c.plots] + [""]
    return "\n".join(lines)
