"""PNG plots of a run and of a comparison. They draw numbers that results.json (or the gate)
already holds and compute none; matplotlib is imported on first use, with the Agg backend."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from agrs_bench.results import schema

SOURCE_COLORS = {"single_comm": "tab:gray", "global_state": "tab:blue", "pg_collection": "tab:orange"}
BUFFER_STYLES = {"dense": "-", "expert": "--", "dense+expert": "-"}
VERDICT_COLORS = {"regressed": "tab:red", "noisy": "tab:olive", "improved": "tab:green",
                  "unchanged": "tab:gray"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def subtitle(doc: dict[str, Any]) -> str:
    """Card, GPU count, layout and date: what every plot must say."""
    info = doc["machine_info"]
    layout = info.get("layout") or {}
    sizes = " ".join(f"{k}{layout[k]}" for k in ("tp", "cp", "ep", "etp", "pp", "dp") if k in layout)
    return (f"{info.get('gpu_name') or 'cpu'} x{info.get('world_size')} ({info.get('backend')}) | "
            f"layout {sizes} {layout.get('order', '')} | {str(doc['datetime'])[:10]}")


def _series(benchmarks: Sequence[dict[str, Any]], mode: str, read: Callable[[dict[str, Any]], Any]
            ) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(source, buffer) -> [(size_bytes, value)] of the cells of `mode`, by size; None skipped."""
    found: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for bench in benchmarks:
        p = bench["params"]
        value = read(bench)
        if any(p.get(k, default) != default for k, default in schema.OPTIONAL_PARAMS.items()):
            continue  # graph and tuned-options cells live in the report's own tables
        if p["mode"] == mode and isinstance(value, (int, float)):
            found.setdefault((p["source"], p["buffer"]), []).append((int(p["size_bytes"]), float(value)))
    return {key: sorted(points) for key, points in found.items()}


def _size_axis(ax, sizes: Sequence[int]) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted(set(sizes))
    ax.set_xticks(ticks, [schema.size_label(s) for s in ticks], rotation=45, fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("full-buffer size")
    ax.grid(True, alpha=0.3)


def _draw_lines(ax, series, *, label_suffix: str = "", style: str | None = None) -> None:
    for (source, buffer), points in sorted(series.items()):
        ax.plot([s for s, _ in points], [v for _, v in points], marker="o", markersize=3,
                color=SOURCE_COLORS.get(source), linestyle=style or BUFFER_STYLES.get(buffer, "-"),
                label=f"{source} {buffer}{label_suffix}")
    _size_axis(ax, [s for points in series.values() for s, _ in points])


def _save(fig, title: str, sub: str, path: str) -> str:
    fig.suptitle(f"{title}\n{sub}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def _line_figure(doc, modes, read, ylabel, title, path, *, log_y: bool = False) -> str | None:
    plt = _pyplot()
    panels = [(mode, _series(doc["benchmarks"], mode, read)) for mode in modes]
    panels = [(mode, series) for mode, series in panels if series]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(max(7.5, 5 * len(panels)), 4.5), squeeze=False)
    for ax, (mode, series) in zip(axes[0], panels):
        _draw_lines(ax, series)
        ax.set_title(mode)
        ax.set_ylabel(ylabel)
        if log_y:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    return _save(fig, title, subtitle(doc), path)


def _fsdp_step_figure(doc: dict[str, Any], path: str) -> str | None:
    plt = _pyplot()
    steps = [b for b in doc["benchmarks"] if b["params"]["mode"] == "fsdp_step"
             and all(b["params"].get(k, d) == d for k, d in schema.OPTIONAL_PARAMS.items())]
    if not steps:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    labels = [f"{b['params']['source']}\n{schema.size_label(b['params']['size_bytes'])}" for b in steps]
    colors = [SOURCE_COLORS.get(b["params"]["source"]) for b in steps]
    exposed_ms = [(b["extra_info"].get("exposed_comm_s") or 0.0) * 1e3 for b in steps]
    slowdown = [b["extra_info"].get("compute_slowdown") or 0.0 for b in steps]
    axes[0].bar(labels, exposed_ms, color=colors)
    axes[0].set_ylabel("exposed communication, ms per step")
    axes[1].bar(labels, slowdown, color=colors)
    axes[1].axhline(1.0, color="black", linewidth=0.8)
    axes[1].set_ylabel("compute slowdown (GEMM in step / alone)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, "fsdp_step: exposed communication and compute slowdown", subtitle(doc), path)


def report_plots(doc: dict[str, Any], out_dir: str) -> list[tuple[str, str]]:
    """Write the run's plots into `out_dir`; [(title, path)] of those written."""
    os.makedirs(out_dir, exist_ok=True)
    extra = lambda key: (lambda b: b["extra_info"].get(key))  # noqa: E731
    wanted = [
        ("Bus bandwidth", _line_figure(doc, ("ag", "rs", "ag_rs"), extra("busbw_gbps"), "busbw GB/s",
                                       "Bus bandwidth by size", os.path.join(out_dir, "busbw.png"))),
        ("Overlap efficiency", _line_figure(
            doc, ("ag_rs",), extra("overlap_efficiency"), "(t_ag + t_rs - t_ag_rs) / min(t_ag, t_rs)",
            "ag_rs overlap efficiency (0 serial, 1 shorter op hidden)",
            os.path.join(out_dir, "overlap_efficiency.png"))),
        ("ag_rs time", _line_figure(doc, ("ag_rs",), lambda b: b["stats"]["median"] * 1e3,
                                    "median ms per iteration", "ag_rs time per source",
                                    os.path.join(out_dir, "ag_rs_time.png"), log_y=True)),
        ("fsdp_step", _fsdp_step_figure(doc, os.path.join(out_dir, "fsdp_step.png"))),
    ]
    return [(title, path) for title, path in wanted if path]


def comparison_plots(cells: Sequence[Any], head_doc: dict[str, Any], threshold: float,
                     out_dir: str) -> list[tuple[str, str]]:
    """Overlay of base and head medians per mode, and every cell's ratio with its interval."""
    if not cells:
        return []
    os.makedirs(out_dir, exist_ok=True)
    return [("Base and head medians", _overlay_figure(cells, head_doc, os.path.join(out_dir, "compare_time.png"))),
            ("Ratio head/base", _ratio_figure(cells, head_doc, threshold,
                                              os.path.join(out_dir, "compare_ratio.png")))]


def _overlay_figure(cells, head_doc, path: str) -> str:
    plt = _pyplot()
    panels = list(dict.fromkeys((c.params["mode"], c.params["buffer"]) for c in cells))
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (mode, buffer) in zip(axes.flat, panels):
        mine = [c for c in cells if c.params["buffer"] == buffer]
        for side, style in (("base_median_s", ":"), ("head_median_s", "-")):
            points = [{"params": c.params, "ms": getattr(c, side) * 1e3} for c in mine]
            _draw_lines(ax, _series(points, mode, lambda b: b["ms"]),
                        label_suffix=f" {side.split('_')[0]}", style=style)
        ax.set_yscale("log")
        ax.set_title(f"{mode} {buffer}")
        ax.set_ylabel("median ms per iteration")
        ax.legend(fontsize=6)
    return _save(fig, "Base (dotted) and head (solid), median time", subtitle(head_doc), path)


def _ratio_figure(cells, head_doc, threshold: float, path: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.2 * len(cells)))
    for y, c in enumerate(cells):
        ax.errorbar([c.ratio], [y], xerr=[[c.ratio - c.ci_low], [c.ci_high - c.ratio]], fmt="o",
                    markersize=3, color=VERDICT_COLORS[c.verdict], capsize=2)
    for x, style in ((1.0, "-"), (1 - threshold, "--"), (1 + threshold, "--")):
        ax.axvline(x, color="black", linestyle=style, linewidth=0.8)
    ax.set_yticks(range(len(cells)), [c.name for c in cells], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("median head / median base, 95% interval (right = slower)")
    return _save(fig, f"Ratio per cell, threshold ±{threshold:.0%}", subtitle(head_doc), path)
