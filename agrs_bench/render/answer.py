"""The report's answer: per buffer and source, where a separate AG communicator pays off.

A verdict is made only where a difference is possible: a cell whose AG runs on its RS
communicator (single_comm always; the expert buffer of global_state always, and of pg_collection
and megatron_core at ep = 1) is the same measurement as single_comm, so it is shown as identical
by construction, never as faster or slower. The other cells are judged together: per cell a
paired sign test over the rounds that sampled it beside single_comm (distribution-free, exact),
Holm-corrected over every judged row and size, so the chance that the table calls anything
"pays off" or "slower" while nothing differs is at most FAMILY_ALPHA. The speedup and interval
shown are the cell's own (speedup_vs_single_comm and its per-cell, uncorrected 95% interval), the
same figure as the cells table, so a reader sees one number per cell; only the verdict is the
family-wise test's.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from agrs_bench.analysis import stats
from agrs_bench.render import figures
from agrs_bench.results import schema

FAMILY_ALPHA = 0.05
CONFIDENCE = 0.95
IDENTICAL = "no separate AG communicator (identical by construction)"
COLUMNS = ("pays", "none", "slower", "identical", "open")


def _rule(source: str, buffer: str, ep: int) -> bool:
    if source == "single_comm":
        return True
    if buffer != "expert":
        return False
    return source == "global_state" or ep == 1


def shares_rs_comm(bench: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Did every AG of this cell run on its RS communicator (so it cannot differ from
    single_comm)? The engine records it; files written before it did get Megatron's rule (an
    expert AG group exists only for pg_collection-like sources at ep > 1)."""
    extra, p = bench["extra_info"], bench["params"]
    by_buffer = extra.get("ag_shares_rs_comm_by_buffer")
    if isinstance(by_buffer, dict) and by_buffer:
        return all(v is True for v in by_buffer.values())
    recorded = extra.get("ag_shares_rs_comm")
    if isinstance(recorded, bool) and "+" not in p["buffer"]:
        return recorded
    ep = (doc["machine_info"].get("layout") or {}).get("ep", 1)
    return all(_rule(p["source"], buffer, ep) for buffer in p["buffer"].split("+"))


def _plain(bench: dict[str, Any]) -> bool:
    return all(bench["params"].get(k, d) == d for k, d in schema.OPTIONAL_PARAMS.items())


@dataclass(frozen=True, kw_only=True)
class Row:
    """One (buffer, source, size) of the answer."""

    buffer: str
    source: str
    size_bytes: int
    flagged: bool
    kind: str
    """pays, none, slower, identical or open (not judged: no paired rounds in the file)."""
    speedup: figures.Figure | None = None
    """The cell's speedup_vs_single_comm (ratio of medians) with its per-cell 95% interval."""
    p_holm: float | None = None


def _paired(bench: dict[str, Any], single: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Sampled in the same rounds (schema 2, one comparison, as many samples)?"""
    same = bench["extra_info"].get("comparison") == single["extra_info"].get("comparison")
    return (doc["agrs_bench"].get("schema_version") == 2 and same
            and len(bench["stats"]["data"]) == len(single["stats"]["data"]) > 0)


def rows_of(doc: dict[str, Any]) -> list[Row]:
    """Every eager default-options ag_rs cell of a source other than single_comm, decided."""
    plain = [b for b in doc["benchmarks"] if b["params"]["mode"] == "ag_rs" and _plain(b)]
    singles = {(b["params"]["buffer"], int(b["params"]["size_bytes"]), b["params"]["dtype"]): b
               for b in plain if b["params"]["source"] == "single_comm"}
    pending: list[tuple[dict[str, Any], list[float], list[float]]] = []
    rows: list[Row] = []
    for bench in plain:
        p = bench["params"]
        single = singles.get((p["buffer"], int(p["size_bytes"]), p["dtype"]))
        if p["source"] == "single_comm" or single is None:
            continue
        common = {"buffer": p["buffer"], "source": p["source"], "size_bytes": int(p["size_bytes"]),
                  "flagged": bool(figures.flags(bench))}
        if shares_rs_comm(bench, doc):
            rows.append(Row(kind="identical", **common))
        elif not _paired(bench, single, doc):
            rows.append(Row(kind="open", speedup=figures.figure(bench, "speedup_vs_single_comm"), **common))
        else:
            pending.append((common, bench, single["stats"]["data"], bench["stats"]["data"]))
    adjusted = stats.holm([stats.sign_test(s, c) for _, _, s, c in pending])
    for (common, bench, single_s, cell_s), p_holm in zip(pending, adjusted):
        # The direction is the sign test's: more rounds faster than single_comm than slower.
        per_round = statistics.median([a / b for a, b in zip(single_s, cell_s) if b > 0])
        kind = "none"
        if p_holm <= FAMILY_ALPHA and per_round != 1:
            kind = "pays" if per_round > 1 else "slower"
        rows.append(Row(kind=kind, speedup=figures.figure(bench, "speedup_vs_single_comm"), p_holm=p_holm,
                        **common))
    return rows


def _text(row: Row) -> str:
    size = schema.size_label(row.size_bytes)
    mark = " ⚠" if row.flagged else ""
    if row.kind == "open" and row.speedup is not None and row.speedup.value is not None:
        return f"{size} {figures.sig(row.speedup.value)}× (point only){mark}"
    if row.kind in ("identical", "open"):
        return size + mark
    shown = size
    if row.speedup is not None and row.speedup.value is not None:
        shown += f" {figures.sig(row.speedup.value)}× " + (
            f"[{figures.sig(row.speedup.interval[0])}, {figures.sig(row.speedup.interval[1])}]"
            if row.speedup.interval else f"[{row.speedup.missing or '–'}]")
    return f"{shown}, p {row.p_holm:.2g}{mark}"


def answer(doc: dict[str, Any]) -> list[str]:
    """The question the tool exists for, as markdown lines."""
    rows = rows_of(doc)
    lines = ["## Does a separate AG communicator pay off?", ""]
    if not rows:
        return lines + ["No ag_rs cell of a source other than single_comm beside a single_comm cell: "
                        "nothing to answer.", ""]
    judged = sum(1 for r in rows if r.kind in ("pays", "none", "slower"))
    lines += ["Speedup of `ag_rs` (AG and RS issued together) over `single_comm` (both on one communicator), "
              "eager, default NCCL options: the cells table's `speedup vs single_comm`, median t(single_comm) "
              "/ median t(source) over the same rounds, with its **per-cell 95% interval (paired bootstrap, "
              "not corrected for the number of cells)**.",
              (f"The verdicts control the **family-wise error at {FAMILY_ALPHA:.0%} over all {judged} judged "
               "rows and sizes** (paired sign test per cell over its rounds, Holm-adjusted p shown): *pays off* "
               "/ *slower* only where the adjusted p is at most 5%, so a cell whose own interval excludes 1 "
               "can still read *no difference measured*." if judged else
               "**Nothing is judged**: no cell of this file was sampled in the same rounds as its single_comm "
               "cell (files before schema 2), so only the file's point speedups are shown."), ""]
    if figures.is_cpu(doc):
        lines += [f"**{figures.CPU_NOTE}**: the answer below says nothing about GPUs.", ""]
    by_pair: dict[tuple[str, str], dict[str, list[str]]] = {}
    for row in sorted(rows, key=lambda r: (r.buffer, r.source, r.size_bytes)):
        by_pair.setdefault((row.buffer, row.source), {k: [] for k in COLUMNS})[row.kind].append(_text(row))
    lines += ["| buffer | source | pays off at (speedup × [per-cell 95%], Holm p) | no difference measured at "
              f"| slower at | {IDENTICAL} | not judged (rounds not paired in the file) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for (buffer, source), found in by_pair.items():
        lines.append(f"| {buffer} | {source} | " + " | ".join("; ".join(found[k]) or "-" for k in COLUMNS) + " |")
    if any(r.flagged for r in rows):
        lines += ["", "⚠: the cell ran throttled, with short samples or with warnings (see its row below)."]
    return lines + [""]
