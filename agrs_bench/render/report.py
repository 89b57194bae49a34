"""`agrs-bench report RUN_DIR`: (re)write report.md and its plots from the run's files alone."""

from __future__ import annotations

import os
import sys
from typing import Any, Sequence

from agrs_bench.results import schema
from agrs_bench.analysis import summary
from agrs_bench.errors import ArgumentParser, ConfigError, cli_entry, fail

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
    if info.get("backend") == "gloo":
        notes.append("gloo on CPU: outputs are checked, but timings say nothing about GPUs.")
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


def _variant(params: dict[str, Any]) -> str:
    parts = [str(params.get(k, d)) for k, d in schema.OPTIONAL_PARAMS.items() if params.get(k, d) != d]
    return " ".join(parts) or "-"


def _summary_sections(doc: dict[str, Any]) -> list[str]:
    found = summary.of(doc)
    lines = []
    if found["best_nccl_options"]:
        lines += ["", "## Best NCCL options", "",
                  "Lowest ag_rs time and lowest fsdp_step exposed communication per size and buffer, "
                  "beside the default options.", "",
                  "| mode | source | buffer | size | exec | measure | default ms | best ms | best options | gain |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in found["best_nccl_options"]:
            lines.append(
                f"| {row['mode']} | {row['source']} | {row['buffer']} | {schema.size_label(row['size_bytes'])} "
                f"| {row['exec']} | {row['measure']} | {_fmt(row['default_s'] and row['default_s'] * 1e3, '.4f')} "
                f"| {row['best_s'] * 1e3:.4f} | {row['best_options']} | {_fmt(row['gain'], '.1%')} |")
    if found["graph_vs_eager"]:
        lines += ["", "## CUDA graph against eager (ag_rs)", "",
                  "| source | buffer | size | options | eager ms | graph ms | overlap eff eager | overlap eff graph | graph serializes |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in found["graph_vs_eager"]:
            lines.append(
                f"| {row['source']} | {row['buffer']} | {schema.size_label(row['size_bytes'])} | {row['nccl_options']} "
                f"| {row['eager_s'] * 1e3:.4f} | {row['graph_s'] * 1e3:.4f} "
                f"| {_fmt(row['eager_overlap_efficiency'], '.2f')} | {_fmt(row['graph_overlap_efficiency'], '.2f')} "
                f"| {'**yes**' if row['graph_serializes'] else 'no'} |")
    return lines


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def render(doc: dict[str, Any], plots: Sequence[tuple[str, str]] = ()) -> str:
    """report.md: header, warnings, plots (title, path relative to the report), tables."""
    info = doc["machine_info"]
    lines = [
        "# agrs_bench report", "",
        f"- date: {doc['datetime']}",
        f"- device: {info.get('gpu_name') or 'cpu'} x{info.get('world_size')} "
        f"({info.get('backend')}), hosts: {info.get('num_hosts', 1)}",
        f"- torch {info.get('torch_version')}, NCCL {info.get('nccl_version') or '-'}",
        f"- layout: {info.get('layout')}",
        f"- commit: {doc['commit_info'].get('id') or '-'}",
        "",
    ]
    notes = warnings_of(doc)
    if notes:
        lines += ["## Warnings", ""] + [f"- {n}" for n in notes] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{title}]({path})" for title, path in plots] + [""]
    lines += ["## Collectives", "",
              "| mode | buffer | source | variant | size | n | median ms | busbw GB/s | vs reference "
              "| overlap eff | speedup vs single_comm | time / link floor | ops/sample |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for bench in doc["benchmarks"]:
        p, e = bench["params"], bench["extra_info"]
        if p["mode"] == "fsdp_step":
            continue
        lines.append(
            f"| {p['mode']} | {p['buffer']} | {p['source']} | {_variant(p)} | {schema.size_label(p['size_bytes'])} "
            f"| {p['group_size']} | {bench['stats']['median'] * 1e3:.4f} | {_fmt(e.get('busbw_gbps'), '.1f')} "
            f"| {_fmt(e.get('busbw_vs_reference'), '.0%')} "
            f"| {_fmt(e.get('overlap_efficiency'), '.2f')} | {_fmt(e.get('speedup_vs_single_comm'), '.2f')} "
            f"| {_fmt(e.get('time_over_link_floor'), '.2f')} | {bench['stats'].get('iterations', '-')} |")
    steps = [b for b in doc["benchmarks"] if b["params"]["mode"] == "fsdp_step"]
    if steps:
        lines += ["", "## fsdp_step", "",
                  "| buffers | source | variant | bucket | step ms | compute-only ms | comm-only ms | exposed comm ms | compute slowdown |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for bench in steps:
            p, e = bench["params"], bench["extra_info"]
            lines.append(
                f"| {p['buffer']} | {p['source']} | {_variant(p)} | {schema.size_label(p['size_bytes'])} "
                f"| {bench['stats']['median'] * 1e3:.3f} | {_fmt(e.get('compute_only_s', 0) * 1e3, '.3f')} "
                f"| {_fmt(e.get('comm_only_s', 0) * 1e3, '.3f')} | {_fmt(e.get('exposed_comm_s', 0) * 1e3, '.3f')} "
                f"| {_fmt(e.get('compute_slowdown'), '.2f')} |")
    lines += _summary_sections(doc)
    lines += ["", "Times are medians of per-sample seconds per iteration (max over ranks); "
              "busbw = S/t * (n-1)/n (an ag_rs iteration moves 2S). Raw samples: results.json."]
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
        raise ConfigError(f"run directory {args.run_dir!r} does not exist")
    try:
        print(write_report(args.run_dir))
    except schema.SchemaError as err:
        fail(str(err), "agrs-bench report")
    except OSError as err:
        fail(f"cannot write the report into {args.run_dir!r} ({err.strerror})", "agrs-bench report")
    from agrs_bench.results.files import RESULTS_FILE

    meta = schema.load(os.path.join(args.run_dir, RESULTS_FILE))["agrs_bench"]
    if not meta.get("complete", True):
        print(f"note: incomplete run, {len(meta.get('missing_cells', []))} cell(s) missing "
              f"(finish it with python -m agrs_bench.run --resume {args.run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
