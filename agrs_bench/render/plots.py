"""PNG plots of a run and of a comparison. They draw numbers that results.json (or the gate)
already holds and compute none; matplotlib is imported on first use, with the Agg backend."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from agrs_bench.render import answer, figures
from agrs_bench.results import schema
from agrs_bench.results.files import write_atomic

# One colour per group source, the same on every plot; a source added to vocab.SOURCES without
# one here fails tests/pure/test_render_plots.py rather than a run's report.
SOURCE_COLORS = {"single_comm": "tab:gray", "global_state": "tab:blue", "pg_collection": "tab:orange",
                 "megatron_core": "tab:purple"}
BUFFER_STYLES = {"dense": "-", "expert": "--", "dense+expert": "-"}
VERDICT_COLORS = {"regressed": "tab:red", "noisy": "tab:olive", "improved": "tab:green",
                  "unchanged": "tab:gray"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def commits_text(docs: Sequence[dict[str, Any]]) -> str:
    ids = sorted({((d.get("commit_info") or {}).get("id") or "not recorded")[:12] for d in docs})
    return ", ".join(ids)


def subtitle(doc: dict[str, Any], commits: str | None = None) -> str:
    """Commit(s), card, GPU count, backend, layout and date: what every plot must say, so two
    PRs' plots side by side can be told apart."""
    info = doc["machine_info"]
    return (f"commit {commits or commits_text([doc])}\n{info.get('gpu_name') or 'cpu'} x{info.get('world_size')} "
            f"({info.get('backend')}) | layout {figures.layout_text(info.get('layout'))} | "
            f"{str(doc['datetime'])[:10]}")


Point = tuple[int, float, float, float, bool]
"""(size_bytes, value, interval low, interval high, flagged); nan bounds where the file has no
interval; flagged: the cell ran throttled, with short samples or with warnings."""
FLAG_NOTE = "⚠ throttled / short samples / warnings"


def _series(benchmarks: Sequence[dict[str, Any]], mode: str, read: Callable[[dict[str, Any]], Any]
            ) -> dict[tuple[str, str], list[Point]]:
    """(source, buffer) -> [(size, value, low, high)] of the eager default-options cells of `mode`.

    `read` returns a figures.Figure or a bare number; None is skipped."""
    found: dict[tuple[str, str], list[Point]] = {}
    for bench in benchmarks:
        p = bench["params"]
        if any(p.get(k, default) != default for k, default in schema.OPTIONAL_PARAMS.items()):
            continue  # graph and tuned-options cells live in the report's own tables
        if p["mode"] != mode:
            continue
        got = read(bench)
        value, interval = (got.value, got.interval) if isinstance(got, figures.Figure) else (got, None)
        if isinstance(value, (int, float)):
            low, high = interval if interval else (math.nan, math.nan)
            flagged = bool(figures.flags(bench)) if "extra_info" in bench else False
            found.setdefault((p["source"], p["buffer"]), []).append(
                (int(p["size_bytes"]), float(value), low, high, flagged))
    return {key: sorted(points) for key, points in found.items()}


def _size_axis(ax, sizes: Sequence[int]) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted(set(sizes))
    if ticks:  # explicit limits: one size alone otherwise gets a degenerate range (detached spines)
        ax.set_xlim(ticks[0] / 1.5, ticks[-1] * 1.5)
    ax.set_xticks(ticks, [schema.size_label(s) for s in ticks], rotation=45, fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("full-buffer size")
    ax.grid(True, alpha=0.3)


def _draw_lines(ax, series, *, label_suffix: str = "", style: str | None = None,
                scale: float = 1.0) -> tuple[bool, bool]:
    """Lines with 95% bands where the file has intervals, flagged cells ringed in red;
    (any interval drawn, any cell flagged)."""
    banded = flagged = False
    for (source, buffer), points in sorted(series.items()):
        sizes = [s for s, *_ in points]
        color = SOURCE_COLORS.get(source)
        ax.plot(sizes, [v * scale for _, v, *_ in points], marker="o", markersize=3, color=color,
                linestyle=style or BUFFER_STYLES.get(buffer, "-"), label=f"{source} {buffer}{label_suffix}")
        marked = [(s, v * scale) for s, v, _, _, bad in points if bad]
        if marked:
            flagged = True
            ax.scatter([s for s, _ in marked], [v for _, v in marked], s=80, facecolors="none",
                       edgecolors="tab:red", linewidths=1.2, zorder=5)
        with_ci = [(s, lo * scale, hi * scale) for s, _, lo, hi, _ in points if not math.isnan(lo)]
        if with_ci:
            banded = True
            ax.fill_between([s for s, _, _ in with_ci], [lo for _, lo, _ in with_ci],
                            [hi for _, _, hi in with_ci], color=color, alpha=0.2, linewidth=0)
            ax.errorbar([s for s, _, _ in with_ci], [(lo + hi) / 2 for _, lo, hi in with_ci],
                        yerr=[(hi - lo) / 2 for _, lo, hi in with_ci], fmt="none", ecolor=color,
                        elinewidth=0.8, capsize=2)
    _size_axis(ax, [s for points in series.values() for s, *_ in points])
    return banded, flagged


def footer(doc: dict[str, Any]) -> str | None:
    """The mark every plot of a CPU run carries."""
    return figures.CPU_NOTE if figures.is_cpu(doc) else None


def _save(fig, title: str, doc: dict[str, Any], path: str, *, commits: str | None = None) -> str:
    fig.suptitle(f"{title}\n{subtitle(doc, commits)}", fontsize=10)
    note = footer(doc)
    if note:
        fig.text(0.5, 0.005, note, ha="center", va="bottom", color="tab:red", fontsize=11, fontweight="bold")
    fig.tight_layout(rect=(0, 0.04 if note else 0, 1, 1))
    image = io.BytesIO()  # then one atomic write: a link, pipe or device at `path` is never replaced
    fig.savefig(image, format="png", dpi=110, bbox_inches="tight")
    write_atomic(path, image.getvalue())
    _pyplot().close(fig)
    return path


def _legend(ax, banded: bool, flagged: bool = False, others: Sequence[Any] = ()) -> None:
    handles, labels = ax.get_legend_handles_labels()
    for other in others:  # lines only another panel drew
        for handle, label in zip(*other.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if banded:
        from matplotlib.patches import Patch

        handles.append(Patch(color="gray", alpha=0.3))
        labels.append("95% interval")
    if flagged:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], marker="o", markersize=9, markerfacecolor="none",
                              markeredgecolor="tab:red", linestyle="none"))
        labels.append(FLAG_NOTE)
    outside_legend(ax, handles, labels)


def outside_legend(ax, handles, labels) -> None:
    """Right of the axes, never over the data."""
    ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


LOG_Y_ABOVE = 30.0
"""A y range wider than this factor gets a log axis; narrower ones stay linear."""
RATIO_CUT = 10.0
"""The ratio plot's log axis stops at 1/RATIO_CUT..RATIO_CUT; intervals beyond end in an arrowhead."""
OVERLAP_LIMITS = (-0.5, 1.5)
"""The overlap axis: 0 serial, 1 shorter op hidden; wider intervals are clipped and say so."""


def _log_axis(ax, which: str) -> None:
    """A log `which` ("x" or "y") axis with plain numbers at 1-2-5 steps, no "3×10⁰" ticks."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(StrMethodFormatter("{x:g}"))
    axis.set_minor_formatter(NullFormatter())


def _value_axis(ax, series, *, log_allowed: bool, scale: float) -> None:
    values = [v * scale for points in series.values() for _, v, *_ in points if v > 0]
    if log_allowed and values and max(values) / min(values) > LOG_Y_ABOVE:
        _log_axis(ax, "y")


def _overlap_axis(ax, series) -> bool:
    """Lines at 0 and 1, limits OVERLAP_LIMITS where the data lie inside them; True: clipped."""
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    lows = [lo for points in series.values() for _, v, lo, _, _ in points if not math.isnan(lo)] + \
        [v for points in series.values() for _, v, *_ in points]
    highs = [hi for points in series.values() for _, v, _, hi, _ in points if not math.isnan(hi)] + \
        [v for points in series.values() for _, v, *_ in points]
    ax.set_ylim(*OVERLAP_LIMITS)
    return bool(lows and highs) and (min(lows) < OVERLAP_LIMITS[0] or max(highs) > OVERLAP_LIMITS[1])


def _line_figure(doc, modes, key, ylabel, title, path, *, log_y: bool = False, scale: float = 1.0,
                 reference: float | None = None) -> str | None:
    plt = _pyplot()
    benchmarks = doc["benchmarks"]
    shared = []
    if key == "speedup_vs_single_comm":  # the report calls these identical by construction: no speedup to draw
        shared = [b for b in benchmarks if b["params"]["mode"] in modes and answer.shares_rs_comm(b, doc)]
        benchmarks = [b for b in benchmarks if not any(b is x for x in shared)]
    panels = [(mode, _series(benchmarks, mode, lambda b: figures.figure(b, key))) for mode in modes]
    panels = [(mode, series) for mode, series in panels if series]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(max(7.5, 5 * len(panels)) + 2, 4.5), squeeze=False)
    any_band = any_flag = clipped = False
    for ax, (mode, series) in zip(axes[0], panels):
        banded, flagged = _draw_lines(ax, series, scale=scale)
        any_band, any_flag = any_band or banded, any_flag or flagged
        if key == "overlap_efficiency":
            clipped = _overlap_axis(ax, series) or clipped
        elif reference is not None:
            ax.axhline(reference, color="black", linewidth=0.8)
        ax.set_title(mode)
        ax.set_ylabel(ylabel)
        _value_axis(ax, series, log_allowed=log_y, scale=scale)
    # One legend for the figure, right of the last panel: the panels share sources and buffers.
    _legend(axes[0][-1], any_band, any_flag, others=axes[0][:-1])
    title += "" if any_band else " (no intervals in this file)"
    title += f" (axis cut at {OVERLAP_LIMITS[0]}..{OVERLAP_LIMITS[1]})" if clipped else ""
    if shared:
        title += "\nleft out, identical by construction (AG on its RS communicator): " + ", ".join(
            sorted({f"{b['params']['source']} {b['params']['buffer']}" for b in shared}))
    return _save(fig, title, doc, path)


def _fsdp_step_figure(doc: dict[str, Any], path: str) -> str | None:
    plt = _pyplot()
    steps = [b for b in doc["benchmarks"] if b["params"]["mode"] == "fsdp_step"
             and all(b["params"].get(k, d) == d for k, d in schema.OPTIONAL_PARAMS.items())]
    if not steps:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    labels = [f"{b['params']['buffer']}\n{schema.size_label(b['params']['size_bytes'])}\n{b['params']['source']}"
              for b in steps]
    colors = [SOURCE_COLORS.get(b["params"]["source"]) for b in steps]
    for ax, key, scale, ylabel, null in (
            (axes[0], "exposed_comm_s", 1e3, "exposed communication, ms per step", None),
            (axes[1], "compute_slowdown", 1.0, "compute slowdown (GEMM in step / alone)", 1.0)):
        found = [figures.figure(b, key) for b in steps]
        values = [(f.value or 0.0) * scale for f in found]
        with_ci = any(f.interval and f.value is not None for f in found)
        errors = None
        if with_ci:
            errors = [[(f.value - f.interval[0]) * scale if f.interval and f.value is not None else 0 for f in found],
                      [(f.interval[1] - f.value) * scale if f.interval and f.value is not None else 0 for f in found]]
        ax.bar(range(len(steps)), values, color=colors, yerr=errors, capsize=4, ecolor="black",
               hatch=["//" if figures.flags(b) else "" for b in steps], edgecolor="tab:red", linewidth=0)
        ax.set_xticks(range(len(steps)), labels)
        if null is not None:
            ax.axhline(null, color="black", linewidth=0.8)
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    from matplotlib.patches import Patch

    sources = list(dict.fromkeys(b["params"]["source"] for b in steps))
    handles, names = [Patch(color=SOURCE_COLORS.get(s)) for s in sources], list(sources)
    if with_ci:
        handles, names = handles + [_errorbar_handle()], names + ["95% interval"]
    if any(figures.flags(b) for b in steps):
        handles, names = handles + [Patch(facecolor="white", edgecolor="tab:red", hatch="//")], names + [FLAG_NOTE]
    outside_legend(axes[1], handles, names)
    banded = any(f.interval for b in steps for f in (figures.figure(b, "exposed_comm_s"),))
    return _save(fig, "fsdp_step: exposed communication and compute slowdown"
                 + ("" if banded else " (no intervals in this file)"), doc, path)


def _errorbar_handle():
    from matplotlib.lines import Line2D

    return Line2D([], [], color="black", marker="|", linestyle="-", markersize=10, linewidth=1)


def report_plots(doc: dict[str, Any], out_dir: str) -> list[tuple[str, str]]:
    """Write the run's plots into `out_dir`; [(title, path)] of those written."""
    os.makedirs(out_dir, exist_ok=True)
    wanted = [
        ("Bus bandwidth", _line_figure(doc, ("ag", "rs", "ag_rs"), "busbw_gbps", "busbw GB/s",
                                       "Bus bandwidth by size", os.path.join(out_dir, "busbw.png"))),
        ("Overlap efficiency", _line_figure(
            doc, ("ag_rs",), "overlap_efficiency", "(t_ag + t_rs - t_ag_rs) / min(t_ag, t_rs)",
            "ag_rs overlap efficiency (0 serial, 1 shorter op hidden)",
            os.path.join(out_dir, "overlap_efficiency.png"), reference=0.0)),
        ("Speedup vs single_comm", _line_figure(
            doc, ("ag_rs",), "speedup_vs_single_comm", "t_ag_rs(single_comm) / t_ag_rs(source)",
            "ag_rs speedup over single_comm (above 1: faster)",
            os.path.join(out_dir, "speedup.png"), reference=1.0)),
        ("ag_rs time", _line_figure(doc, ("ag_rs",), "median_s", "median ms per iteration",
                                    "ag_rs time per source", os.path.join(out_dir, "ag_rs_time.png"),
                                    log_y=True, scale=1e3)),
        ("fsdp_step", _fsdp_step_figure(doc, os.path.join(out_dir, "fsdp_step.png"))),
    ]
    return [(title, path) for title, path in wanted if path]


def comparison_plots(cells: Sequence[Any], head_doc: dict[str, Any], threshold: float,
                     out_dir: str, *, base_docs: Sequence[dict[str, Any]] = (),
                     head_docs: Sequence[dict[str, Any]] = ()) -> list[tuple[str, str]]:
    """Overlay of base and head per mode with their intervals, and every cell's ratio with its
    interval; both name the base and head commits."""
    if not cells:
        return []
    os.makedirs(out_dir, exist_ok=True)
    commits = (f"base {commits_text(base_docs) if base_docs else '?'} vs head "
               f"{commits_text(head_docs or [head_doc])}")
    return [("Base and head time", _overlay_figure(cells, head_doc, os.path.join(out_dir, "compare_time.png"),
                                                    commits)),
            ("Ratio head/base", _ratio_figure(cells, head_doc, threshold,
                                              os.path.join(out_dir, "compare_ratio.png"), commits))]


def _overlay_figure(cells, head_doc, path: str, commits: str) -> str:
    plt = _pyplot()
    panels = list(dict.fromkeys((c.params["mode"], c.params["buffer"]) for c in cells))
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols + 2, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    any_band = False
    for ax, (mode, buffer) in zip(axes.flat, panels):
        mine = [c for c in cells if c.params["buffer"] == buffer]
        drawn: dict = {}
        for side, style in (("base", ":"), ("head", "-")):
            points = [{"params": c.params, "ms": figures.Figure(
                getattr(c, f"{side}_median_s") * 1e3,
                None if math.isnan(getattr(c, f"{side}_ci_s")[0])
                else tuple(x * 1e3 for x in getattr(c, f"{side}_ci_s")), None)} for c in mine]
            series = _series(points, mode, lambda b: b["ms"])
            banded, _ = _draw_lines(ax, series, label_suffix=f" {side}", style=style)
            any_band = any_band or banded
            drawn.update(series)
        _value_axis(ax, drawn, log_allowed=True, scale=1.0)
        ax.set_title(f"{mode} {buffer}")
        ax.set_ylabel("ms per iteration")
    shown = [ax for ax in axes.flat if ax.get_visible()]
    corner = axes[0][ncols - 1]  # right of the top row's last panel: off every panel's data
    _legend(corner, any_band, others=[ax for ax in shown if ax is not corner])
    title = ("Base (dotted) and head (solid), geometric mean of launch medians"
             + ("" if any_band else " (one launch a side: no intervals)"))
    return _save(fig, title, head_doc, path, commits=commits)


def _ratio_figure(cells, head_doc, threshold: float, path: str, commits: str) -> str:
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8, 1.8 + 0.2 * len(cells)))
    for y, c in enumerate(cells):
        color = VERDICT_COLORS[c.verdict]
        if math.isnan(c.ci_low):
            ax.plot([c.ratio], [y], marker="o", markersize=3, color=color, linestyle="none")
        else:
            ax.errorbar([c.ratio], [y], xerr=[[c.ratio - c.ci_low], [c.ci_high - c.ratio]], fmt="o",
                        markersize=3, color=color, capsize=2)
    for x, style in ((1.0, "-"), (1 - threshold, "--"), (1 + threshold, "--")):
        ax.axvline(x, color="black", linestyle=style, linewidth=0.8)
    ax.set_yticks(range(len(cells)), [c.name for c in cells], fontsize=6)
    ax.invert_yaxis()
    ends = [x for c in cells for x in (c.ratio, c.ci_low, c.ci_high) if x > 0]  # nan compares False
    wide = max(ends) / min(ends) > LOG_Y_ABOVE
    cut = False
    if wide:  # a ratio is multiplicative: one interval reaching 1e6 must not squash the others to 0
        _log_axis(ax, "x")
        low, high = max(min(ends) / 1.2, 1 / RATIO_CUT), min(max(ends) * 1.2, RATIO_CUT)
        ax.set_xlim(low, high)
        for y, c in enumerate(cells):  # an interval past the cut ends in an arrowhead at the edge
            for end, edge, marker in ((c.ci_low, low, "<"), (c.ci_high, high, ">")):
                if (end < edge) if marker == "<" else (end > edge):
                    cut = True
                    ax.plot([edge], [y], marker=marker, markersize=6, color=VERDICT_COLORS[c.verdict], clip_on=False)
    ax.set_xlabel("head / base, 95% interval (right = slower" + (", log axis)" if wide else ")"))
    present = [v for v in VERDICT_COLORS if any(c.verdict == v for c in cells)]
    handles = [Line2D([], [], color=VERDICT_COLORS[v], marker="o", linestyle="-") for v in present]
    handles += [Line2D([], [], color="black", linestyle="-", linewidth=0.8),
                Line2D([], [], color="black", linestyle="--", linewidth=0.8)]
    ax.legend(handles, present + ["no change", f"±{threshold:.0%} threshold"], fontsize=7, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    title = f"Ratio per cell, threshold ±{threshold:.0%}"
    title += f" (axis cut at {1 / RATIO_CUT:g}..{RATIO_CUT:g}: < > mark intervals beyond)" if cut else ""
    return _save(fig, title, head_doc, path, commits=commits)
