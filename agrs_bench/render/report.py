"""`agrs-bench report RUN_DIR`: (re)write report.md and its plots from the run's files alone."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from agrs_bench.analysis import summary
from agrs_bench.errors import ArgumentParser, ConfigError, cli_entry, fail
from agrs_bench.render import figures, status, step_vs_megatron
from agrs_bench.render import levers as levers_section
from agrs_bench.render.answer import answer, shares_rs_comm
from agrs_bench.results import schema

REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def warnings_of(doc: dict[str, Any]) -> list[str]:
    """Everything a reader must know before trusting the numbers."""
    notes = []
    meta, info = doc["agrs_bench"], doc["machine_info"]
    if not meta.get("complete", True):
        missing = meta.get("missing_cells", [])
        notes.append(f"INCOMPLETE RUN: {len(missing)} cell(s) missing: {', '.join(missing[:10])}"
                     + (" ..." if len(missing) > 10 else ""))
    if info.get("env", {}).get("CUDA_DEVICE_MAX_CONNECTIONS") == "1":
        notes.append("CUDA_DEVICE_MAX_CONNECTIONS=1: the GPU may serialize the role streams, so "
                     "AG/RS overlap and compute overlap can be lost (Megatron forbids it with FSDP).")
    if figures.is_cpu(doc):
        notes.append(f"{figures.CPU_NOTE}: gloo on CPU checks outputs; its timings say nothing about GPUs.")
    throttled = [b["name"] for b in doc["benchmarks"] if any("throttled" in f for f in figures.flags(b))]
    if throttled:
        notes.append(f"{len(throttled)} cell(s) ran throttled (marked ⚠ in their rows): "
                     f"{', '.join(throttled[:6])}" + (" ..." if len(throttled) > 6 else ""))
    short = [b["name"] for b in doc["benchmarks"] if b["extra_info"].get("sample_short")]
    if short:
        notes.append(f"{len(short)} cell(s) have samples shorter than the budget (marked ⚠ in their rows): "
                     f"{', '.join(short[:6])}" + (" ..." if len(short) > 6 else ""))
    if not any(figures.figure(b, "median_s").interval or "median_interval_coverage" in b["extra_info"]
               for b in doc["benchmarks"]):
        notes.append("this file holds no intervals (written before they existed): figures print the "
                     "point and [–], and nothing is judged")
    for bench in doc["benchmarks"]:
        for note in bench["extra_info"].get("warnings", []):
            notes.append(f"{bench['name']}: {note}")
    for row in summary.of(doc)["graph_vs_eager"]:
        if row["graph_serializes"]:
            notes.append(f"CUDA graph serializes ag_rs {row['source']} {row['buffer']} "
                         f"{schema.size_label(row['size_bytes'])}: overlap efficiency "
                         f"{row['eager_overlap_efficiency']:.2f} eager, {row['graph_overlap_efficiency']:.2f} "
                         "in the graph (see NCCL_GRAPH_STREAM_ORDERING)")
    return notes


def megatron_mismatch_section(doc: dict[str, Any]) -> list[str]:
    """First thing in the report when megatron-core's AG groups differ from its DP groups."""
    findings = doc["agrs_bench"].get("megatron_mismatch") or []
    if not findings:
        return []
    lines = ["## megatron-core built AG groups on the wrong ranks: megatron_core not timed", ""]
    for f in findings:
        lines.append(f"- megatron-core {f['version']}, layout `{f['layout']}`, {f['buffer']} buffer, "
                     f"rank {f['rank']}: DP (RS) group `{f['rs_ranks']}`, AG group `{f['ag_ranks']}` "
                     f"— upstream issue {f['upstream']}.")
    lines += ["", "An AG on other ranks than the RS gathers the wrong shards: Megatron-FSDP's "
              "overlap with these groups is not measurable. The other sources were timed; the run "
              "exited with status 5.", ""]
    return lines


def _variant(params: dict[str, Any]) -> str:
    parts = [str(params.get(k, d)) for k, d in schema.OPTIONAL_PARAMS.items() if params.get(k, d) != d]
    return " ".join(parts) or "-"


def _plain(bench: dict[str, Any]) -> bool:
    """An eager cell on default options: what the answer and the plots are about."""
    return all(bench["params"].get(k, d) == d for k, d in schema.OPTIONAL_PARAMS.items())


def _flags(bench: dict[str, Any]) -> str:
    return "; ".join(figures.flags(bench)) or "-"


def header(doc: dict[str, Any]) -> list[str]:
    info, meta = doc["machine_info"], doc["agrs_bench"]
    benches = doc["benchmarks"]
    dtypes = sorted({b["params"]["dtype"] for b in benches}) or ["-"]
    rounds = sorted({int(b["stats"]["rounds"]) for b in benches})
    ops = sorted({int(b["stats"].get("iterations") or b["extra_info"].get("ops_per_sample") or 0) for b in benches})
    targets = sorted({b["extra_info"]["sample_s_target"] for b in benches
                      if isinstance(b["extra_info"].get("sample_s_target"), (int, float))})
    target_ms = targets or ([meta["config"]["target_sample_ms"] / 1e3]
                            if isinstance((meta.get("config") or {}).get("target_sample_ms"), (int, float)) else [])
    shortest = [b["extra_info"]["sample_s_min"] for b in benches
                if isinstance(b["extra_info"].get("sample_s_min"), (int, float))]
    commit = doc["commit_info"]
    commit_text = (f"{commit.get('id') or '-'}{' (dirty)' if commit.get('dirty') else ''}"
                   f" (from {commit.get('source', 'unknown')})")

    def span(values: list, unit: str = "") -> str:
        if not values:
            return "-"
        return f"{values[0]}{unit}" if values[0] == values[-1] else f"{values[0]}-{values[-1]}{unit}"

    lines = [
        "## Run", "",
        f"- device: {info.get('gpu_name') or 'cpu'} x{info.get('world_size')}, backend {info.get('backend')}"
        + (f" (**{figures.CPU_NOTE}**)" if figures.is_cpu(doc) else "")
        + f", hosts: {info.get('num_hosts', 1)}",
        f"- layout: `{figures.layout_text(info.get('layout'))}`",
        f"- dtype: {', '.join(dtypes)}; iterations (rounds, samples per cell): {span(rounds)}; "
        f"ops per sample: {span(ops)}",
        "- sample length: target " + (", ".join(f"{figures.sig(t * 1e3, 2)} ms" for t in target_ms) or "-")
        + (f", shortest achieved {figures.sig(min(shortest) * 1e3, 2)} ms" if shortest else ""),
        f"- torch {info.get('torch_version')}, NCCL {info.get('nccl_version') or '-'}",
        f"- commit: {commit_text}",
        f"- date: {doc['datetime']}",
        "",
    ]
    return lines


DEFINITIONS = [
    "## Columns", "",
    "- **mode**: `ag` all-gather alone, `rs` reduce-scatter alone, `ag_rs` both issued at once "
    "(each from its own stream), `fsdp_step` prefetch AG ‖ layer compute ‖ RS of the previous layer.",
    "- **buffer**: `dense` (sharded over the DP×CP group) or `expert` (over the expert-DP group).",
    "- **source**: where the AG group comes from: `single_comm` (AG shares the RS communicator), "
    "`global_state` (Megatron's module globals), `pg_collection` (an explicit ProcessGroupCollection).",
    "- **variant**: what differs from an eager cell on default NCCL options (`graph` = CUDA-graph "
    "replay; an NCCL options name); `-` for none.",
    "- **size**: bytes of the full (unsharded) buffer.",
    "- **n**: ranks in the group the collective runs over.",
    "- **median ms**: median over samples of seconds per iteration (a sample times `ops/sample` "
    "back-to-back iterations; per sample the slowest rank), with its distribution-free interval: two "
    "order statistics whose coverage of the true median is at least 95% (exact, binomial ranks).",
    "- **busbw GB/s**: S/t·(n−1)/n (nccl-tests' convention, GB = 1e9 bytes; an `ag_rs` iteration "
    "moves 2S), with its 95% interval; significant digits, so small sizes never read 0.",
    "- **vs reference**: busbw over the in-run reference busbw of the same op (or why it was left out).",
    "- **overlap eff**: (t_ag + t_rs − t_ag_rs) / min(t_ag, t_rs) of the same source: 0 = serial, "
    "1 = the shorter op fully hidden; interval holding 0: no difference measured (no overlap shown).",
    "- **trace overlap** (runs with `--trace`): from the profiler's kernel timeline, the share of the "
    "shorter collective's kernel time that ran while the other's kernels ran; an independent check of "
    "overlap eff.",
    "- **speedup vs single_comm**: median t_ag_rs(single_comm) / median t_ag_rs(this source); above 1 = "
    "faster; its 95% interval is per cell (paired bootstrap over rounds), not corrected for the number "
    "of cells: an interval holding 1 reads no difference measured, but whether a source pays off is the "
    "answer's verdict above (paired sign test, Holm over every judged cell: family-wise 5%), which can "
    "read no difference measured where one cell's interval excludes 1.",
    "- **time / link floor**: median ag_rs time over the time both ops' bytes need at the link's "
    "per-direction rate: 1 = at the wire's limit, larger = room left.",
    "- **ops/sample**: iterations timed back to back in one sample (`stats.iterations`).",
    "- **flags**: ⚠ throttled (GPU clocks were capped while the cell ran), ⚠ short samples (shortest "
    "sample below the budget: launch overhead may dominate), ⚠ warnings (see Warnings).",
    "- **step ms**, **compute-only ms**, **comm-only ms**: median time of one FSDP-like step, of its "
    "compute alone and of its communication alone, sampled interleaved.",
    "- **exposed comm ms**: step − compute-only; **compute slowdown**: compute time inside the step "
    "over compute alone (1 = unaffected; an interval holding 1: no difference measured); both with "
    "95% intervals.",
    "- **buffers** (fsdp_step): the buffers one step gathers and reduce-scatters; **bucket**: the "
    "full size of one layer's buffer in the step.",
    "- Best NCCL options: **exec** eager or graph; **measure** the figure compared (median_s for "
    "ag_rs, exposed_comm_s for fsdp_step); **default ms / best ms** that figure on default options and "
    "on the **best options**; **gain** 1 − best/default, or \"no difference measured\" where their "
    "intervals overlap.",
    "- CUDA graph against eager: **options** the NCCL options; **eager ms / graph ms** median ag_rs "
    "time; **overlap eff eager / graph** as above; **graph serializes** eager overlapped (≥ 0.2) and "
    "the graph did not (< 0.1), or \"no difference measured\" where the two intervals overlap.",
    "- `[–]`: the file has no interval for that figure (it was written before the engine gave one): the "
    "point alone is shown and nothing is judged. `[none: too few rounds for 95%]`: no order-statistic "
    "interval of the median reaches 95% with this many rounds (6 is the fewest). `too wide to say "
    "anything`: an overlap interval wider than the whole 0-1 scale.",
    "",
]


def _summary_sections(doc: dict[str, Any]) -> list[str]:
    found = summary.of(doc)
    by_name = {schema.cell_key(b["params"]): b for b in doc["benchmarks"]}
    lines = []
    if found["best_nccl_options"]:
        lines += ["", "## Best NCCL options", "",
                  "Lowest ag_rs time and lowest fsdp_step exposed communication per size and buffer, "
                  "beside the default options. Where the two 95% intervals overlap the table says "
                  "\"no difference measured\" instead of a gain.", "",
                  "| mode | source | buffer | size | exec | measure | default ms | best ms | best options | gain |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in found["best_nccl_options"]:
            key = "exposed_comm_s" if row["mode"] == "fsdp_step" else "median_s"
            cells = [by_name.get(k) for k in by_name
                     if k[0] == row["mode"] and k[1] == row["buffer"] and k[2] == row["source"]
                     and k[3] == row["size_bytes"] and k[5] == row["exec"]
                     and k[6] in (row["best_options"], "default")]
            best = next((c for c in cells if c["params"].get("nccl_options", "default") == row["best_options"]), None)
            default = next((c for c in cells if c["params"].get("nccl_options", "default") == "default"), None)
            same = figures.overlap(best and figures.figure(best, key).interval,
                                   default and figures.figure(default, key).interval)
            gain = (figures.NO_DIFFERENCE if same
                    else _fmt(row["gain"], ".1%") + (" [no interval]" if same is None else ""))
            lines.append(
                f"| {row['mode']} | {row['source']} | {row['buffer']} | {schema.size_label(row['size_bytes'])} "
                f"| {row['exec']} | {row['measure']} | {figures.sig(row['default_s'] and row['default_s'] * 1e3, 4)} "
                f"| {figures.sig(row['best_s'] * 1e3, 4)} | {row['best_options']} | {gain} |")
    if found["graph_vs_eager"]:
        lines += ["", "## CUDA graph against eager (ag_rs)", "",
                  "| source | buffer | size | options | eager ms [95%] | graph ms [95%] | overlap eff eager [95%] "
                  "| overlap eff graph [95%] | graph serializes |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in found["graph_vs_eager"]:
            def cell(exec_mode: str, row: dict[str, Any] = row) -> dict[str, Any] | None:
                return next((b for b in doc["benchmarks"] if b["params"]["mode"] == "ag_rs"
                             and b["params"]["source"] == row["source"] and b["params"]["buffer"] == row["buffer"]
                             and int(b["params"]["size_bytes"]) == row["size_bytes"]
                             and b["params"].get("nccl_options", "default") == row["nccl_options"]
                             and b["params"].get("exec", "eager") == exec_mode), None)

            eager, graph = cell("eager"), cell("graph")
            eff = [figures.figure(b, "overlap_efficiency") if b else figures.Figure(None, None, 0.0)
                   for b in (eager, graph)]
            times = [figures.figure(b, "median_s") if b else figures.Figure(None, None, None) for b in (eager, graph)]
            serializes = "**yes**" if row["graph_serializes"] else "no"
            if row["graph_serializes"] and figures.overlap(eff[0].interval, eff[1].interval):
                serializes = figures.NO_DIFFERENCE
            lines.append(
                f"| {row['source']} | {row['buffer']} | {schema.size_label(row['size_bytes'])} | {row['nccl_options']} "
                f"| {figures.with_interval(times[0], 1e3, 4)} | {figures.with_interval(times[1], 1e3, 4)} "
                f"| {figures.with_interval(eff[0], digits=2)} | {figures.with_interval(eff[1], digits=2)} "
                f"| {serializes} |")
    return lines


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def _step_comparison(steps: list[dict[str, Any]], doc: dict[str, Any]) -> list[str]:
    """Per bucket: does a source expose less communication than single_comm, or no difference?"""
    lines = []
    by_bucket: dict[tuple, dict[str, dict[str, Any]]] = {}
    for bench in steps:
        p = bench["params"]
        if _plain(bench):
            by_bucket.setdefault((p["buffer"], p["size_bytes"]), {})[p["source"]] = bench
    for (buffer, size), found in sorted(by_bucket.items()):
        single = found.get("single_comm")
        if single is None:
            continue
        for source, bench in sorted(found.items()):
            if source == "single_comm":
                continue
            mine, theirs = figures.figure(bench, "exposed_comm_s"), figures.figure(single, "exposed_comm_s")
            same = figures.overlap(mine.interval, theirs.interval)
            if shares_rs_comm(bench, doc):
                verdict = "identical by construction (no separate AG communicator)"
            elif same is None:
                verdict = "no interval in the file: not compared"
            elif same:
                verdict = f"{figures.NO_DIFFERENCE} (intervals overlap)"
            else:
                verdict = "less than single_comm" if mine.interval[1] < theirs.interval[0] else "more than single_comm"
            lines.append(f"- {buffer} {schema.size_label(size)}: exposed communication of {source} "
                         f"{figures.with_interval(mine, 1e3, judge=False)} ms vs single_comm "
                         f"{figures.with_interval(theirs, 1e3, judge=False)} ms: {verdict}")
    return lines


def render(doc: dict[str, Any], plots: Sequence[tuple[str, str]] = ()) -> str:
    """report.md: the answer first, then the run, warnings, plots, column definitions, tables.
    A megatron-core group mismatch comes before everything: that source was not timed."""
    lines = (["# agrs_bench report", ""] + status.first_screen(doc) + megatron_mismatch_section(doc)
             + answer(doc) + header(doc))
    notes = warnings_of(doc)
    if notes:
        lines += ["## Warnings", ""] + [f"- {n}" for n in notes] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{title}]({path})" for title, path in plots] + [""]
    lines += DEFINITIONS
    traced = any(isinstance(b["extra_info"].get("trace_overlap_fraction"), (int, float)) for b in doc["benchmarks"])
    lines += ["## Collectives", "",
              "| mode | buffer | source | variant | size | n | median ms [95%] | busbw GB/s [95%] | vs reference "
              "| overlap eff [95%] | " + ("trace overlap [95%] | " if traced else "")
              + "speedup vs single_comm [95%] | time / link floor | ops/sample | flags |",
              "|" + " --- |" * (15 if traced else 14)]
    for bench in doc["benchmarks"]:
        p, e = bench["params"], bench["extra_info"]
        if p["mode"] in ("fsdp_step", "mfsdp_step"):
            continue
        reference = _fmt(e.get("busbw_vs_reference"), ".0%") if "reference_omitted" not in e \
            else f"left out: {e['reference_omitted']}"
        trace = (f"| {figures.with_interval(figures.figure(bench, 'trace_overlap_fraction'), digits=2)} "
                 if traced else "")
        speedup = ("reference" if p["source"] == "single_comm" and p["mode"] == "ag_rs"
                   else "identical by construction" if p["mode"] == "ag_rs" and shares_rs_comm(bench, doc)
                   else figures.with_interval(figures.figure(bench, "speedup_vs_single_comm")))
        lines.append(
            f"| {p['mode']} | {p['buffer']} | {p['source']} | {_variant(p)} | {schema.size_label(p['size_bytes'])} "
            f"| {p['group_size']} | {figures.with_interval(figures.figure(bench, 'median_s'), 1e3, 4)} "
            f"| {figures.with_interval(figures.figure(bench, 'busbw_gbps'))} | {reference} "
            f"| {figures.with_interval(figures.figure(bench, 'overlap_efficiency'), digits=2)} "
            + trace + f"| {speedup} "
            f"| {_fmt(e.get('time_over_link_floor'), '.2f')} | {bench['stats'].get('iterations', '-')} "
            f"| {_flags(bench)} |")
    steps = [b for b in doc["benchmarks"] if b["params"]["mode"] == "fsdp_step"]
    if steps:
        lines += ["", "## fsdp_step", "",
                  "| buffers | source | variant | bucket | step ms [95%] | compute-only ms | comm-only ms "
                  "| exposed comm ms [95%] | compute slowdown [95%] | flags |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for bench in steps:
            p, e = bench["params"], bench["extra_info"]
            compute_ms, comm_ms = (figures.sig(e[key] * 1e3, 4) if isinstance(e.get(key), (int, float)) else "-"
                                   for key in ("compute_only_s", "comm_only_s"))
            lines.append(
                f"| {p['buffer']} | {p['source']} | {_variant(p)} | {schema.size_label(p['size_bytes'])} "
                f"| {figures.with_interval(figures.figure(bench, 'median_s'), 1e3, 4)} "
                f"| {compute_ms} | {comm_ms} "
                f"| {figures.with_interval(figures.figure(bench, 'exposed_comm_s'), 1e3)} "
                f"| {figures.with_interval(figures.figure(bench, 'compute_slowdown'))} | {_flags(bench)} |")
        compared = _step_comparison(steps, doc)
        if compared:
            lines += ["", "Sources against single_comm (eager, default options):", ""] + compared
    lines += _summary_sections(doc)
    lines += levers_section.section(doc)
    lines += [""] + step_vs_megatron.section(doc)
    lines += ["", "Raw samples of every cell: results.json (`stats.data`, seconds per iteration)."]
    return "\n".join(lines) + "\n"


def write_report(run_dir: str) -> str:
    """Render report.md and the plots (under plots/) for the run in `run_dir`; returns its path."""
    from agrs_bench.render import plots as plotmod
    from agrs_bench.results.files import RESULTS_FILE, write_atomic

    doc = schema.load(os.path.join(run_dir, RESULTS_FILE))
    written = plotmod.report_plots(doc, os.path.join(run_dir, PLOTS_DIR))
    path = os.path.join(run_dir, REPORT_FILE)
    write_atomic(path, render(doc, [(title, os.path.relpath(p, run_dir)) for title, p in written]))
    return path


@cli_entry("agrs-bench report")
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="agrs-bench report", description=__doc__)
    parser.add_argument("run_dir", help="a run directory holding results.json")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.run_dir):
        raise ConfigError(f"run directory {args.run_dir!r} " + (
            "is not a directory" if os.path.exists(args.run_dir) else "does not exist"))
    from agrs_bench.results import files as run_files
    if run_files.unfinished(args.run_dir):
        raise ConfigError(run_files.unfinished(args.run_dir))
    try:
        print(write_report(args.run_dir))
    except schema.SchemaError as err:
        fail(str(err), "agrs-bench report")
    except OSError as err:
        fail(f"cannot write the report into {args.run_dir!r} ({err.strerror})", "agrs-bench report")
    doc = schema.load(os.path.join(args.run_dir, run_files.RESULTS_FILE))
    meta = doc["agrs_bench"]
    if run_files.cells_disagreement(args.run_dir, doc):
        print(f"agrs-bench report: warning: {run_files.cells_disagreement(args.run_dir, doc)}", file=sys.stderr)
    if not meta.get("complete", True):
        print(f"note: incomplete run, {len(meta.get('missing_cells', []))} cell(s) missing "
              f"(finish it with python -m agrs_bench.run --resume {args.run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
