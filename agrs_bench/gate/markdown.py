"""comparison.md: short enough for a PR comment or a CI step summary. Renders; judges nothing.

The verdict first, then the regressed and noisy cells, then everything else folded away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from agrs_bench.gate.verdicts import CellComparison, Verdict

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
        if len(docs) == 1:
            notes.append(f"{name} has 1 launch: its interval cannot see launch-to-launch noise; "
                         "use 3 or more launches per side")
    if c.only_base:
        notes.append(f"{len(c.only_base)} cell(s) only in base, not judged: {', '.join(c.only_base[:8])}"
                     + (" ..." if len(c.only_base) > 8 else ""))
    if c.only_head:
        notes.append(f"{len(c.only_head)} cell(s) only in head, not judged: {', '.join(c.only_head[:8])}"
                     + (" ..." if len(c.only_head) > 8 else ""))
    return notes


def _table(cells: Sequence[CellComparison], last: str) -> list[str]:
    """One row per cell; the last column is the cell's `last` field ("reason" or "verdict")."""
    rows = [f"| cell | base ms | head ms | head/base | 95% interval | launches b/h | {last} |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for c in cells:
        rows.append(f"| {c.name} | {c.base_median_s * 1e3:.4f} | {c.head_median_s * 1e3:.4f} | {c.ratio:.3f} "
                    f"| [{c.ci_low:.3f}, {c.ci_high:.3f}] | {c.base_launches}/{c.head_launches} "
                    f"| {getattr(c, last)} |")
    return rows


def count_line(c: Comparison) -> str:
    counts = {v: sum(1 for cell in c.cells if cell.verdict == v) for v in ("regressed", "noisy", "improved", "unchanged")}
    return (", ".join(f"{n} {v}" for v, n in counts.items()) + f" of {len(c.cells)} cells "
            f"(threshold ±{c.threshold:.1%})")


def render(c: Comparison) -> str:
    lines = [f"## agrs_bench gate: {HEADLINE[c.verdict]}", "", f"**{count_line(c)}**", "",
             _side("base", c.base, c.base_origins), _side("head", c.head, c.head_origins),
             f"- per cell: median(head)/median(base) of seconds per iteration, 95% bootstrap interval "
             f"(launches resampled, then samples); no cell would be flagged at a threshold of "
             f"{c.quiet_threshold:.1%} or more", ""]
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
