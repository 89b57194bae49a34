"""`python -m agrs_bench.report RUN_DIR`: (re)write report.md from the run's files alone."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from agrs_bench import schema
from agrs_bench.errors import ConfigError, cli_entry, fail

REPORT_FILE = "report.md"


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
    return notes


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def render(doc: dict[str, Any]) -> str:
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
    lines += ["## Collectives", "",
              "| mode | buffer | source | size | n | median ms | busbw GB/s | overlap eff | speedup vs single_comm | ops/sample |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for bench in doc["benchmarks"]:
        p, e = bench["params"], bench["extra_info"]
        if p["mode"] == "fsdp_step":
            continue
        lines.append(
            f"| {p['mode']} | {p['buffer']} | {p['source']} | {schema.size_label(p['size_bytes'])} "
            f"| {p['group_size']} | {bench['stats']['median'] * 1e3:.4f} | {_fmt(e.get('busbw_gbps'), '.1f')} "
            f"| {_fmt(e.get('overlap_efficiency'), '.2f')} | {_fmt(e.get('speedup_vs_single_comm'), '.2f')} "
            f"| {bench['stats'].get('iterations', '-')} |")
    steps = [b for b in doc["benchmarks"] if b["params"]["mode"] == "fsdp_step"]
    if steps:
        lines += ["", "## fsdp_step", "",
                  "| buffers | source | bucket | step ms | compute-only ms | comm-only ms | exposed comm ms | compute slowdown |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for bench in steps:
            p, e = bench["params"], bench["extra_info"]
            lines.append(
                f"| {p['buffer']} | {p['source']} | {schema.size_label(p['size_bytes'])} "
                f"| {bench['stats']['median'] * 1e3:.3f} | {_fmt(e.get('compute_only_s', 0) * 1e3, '.3f')} "
                f"| {_fmt(e.get('comm_only_s', 0) * 1e3, '.3f')} | {_fmt(e.get('exposed_comm_s', 0) * 1e3, '.3f')} "
                f"| {_fmt(e.get('compute_slowdown'), '.2f')} |")
    lines += ["", "Times are medians of per-sample seconds per iteration (max over ranks); "
              "busbw = S/t * (n-1)/n (an ag_rs iteration moves 2S). Raw samples: results.json."]
    return "\n".join(lines) + "\n"


def write_report(run_dir: str) -> str:
    """Render report.md for the run in `run_dir`; returns its path."""
    from agrs_bench.results import RESULTS_FILE, write_atomic

    doc = schema.load(os.path.join(run_dir, RESULTS_FILE))
    path = os.path.join(run_dir, REPORT_FILE)
    write_atomic(path, render(doc))
    return path


@cli_entry("agrs_bench.report")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agrs_bench.report", description=__doc__)
    parser.add_argument("run_dir", help="a run directory holding results.json")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.run_dir):
        raise ConfigError(f"run directory {args.run_dir!r} does not exist")
    try:
        print(write_report(args.run_dir))
    except schema.SchemaError as err:
        fail(str(err), "agrs_bench.report")
    meta = schema.load(os.path.join(args.run_dir, "results.json"))["agrs_bench"]
    if not meta.get("complete", True):
        print(f"note: incomplete run, {len(meta.get('missing_cells', []))} cell(s) missing "
              f"(finish it with python -m agrs_bench.run --resume {args.run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
