"""Write a run directory: cells.jsonl as cells finish, then results.json, results.csv. Rank 0 only.

Every final file is written atomically (a temporary file, then a rename), so a reader never sees
half a file; cells.jsonl is appended and flushed per cell, so a crash loses no finished cell.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from agrs_bench import safe_files
from agrs_bench.analysis import measures, stats, summary
from agrs_bench.results import launches, schema
from agrs_bench.results.measured import Measured
from agrs_bench.vocab import STEP_MODES

CELLS_FILE = "cells.jsonl"
RESULTS_FILE = "results.json"
CSV_FILE = "results.csv"
CONFIG_FILE = "config.json"
RUN_FILES = (CONFIG_FILE, CELLS_FILE, RESULTS_FILE)
"""A directory holding any of these holds a run."""


def write_atomic(path: str, text: str | bytes) -> None:
    """Replace `path` (a regular file, or the one its link points to) in one rename; never a
    link, pipe or device (safe_files.write_atomic). OSError naming the file on failure."""
    try:
        safe_files.write_atomic(path, text)
    except OSError as err:  # disk full, read-only, a pipe in the way: say which file
        raise OSError(err.errno, f"cannot write {path}: {err.strerror}") from None


def make_benchmark(params: dict[str, Any], samples_s: Iterable[float], ops_per_sample: int,
                   extra_info: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """One cell as a pytest-benchmark benchmark; its own measures (analysis.measures) added."""
    data = [float(x) for x in samples_s]
    block = dict(stats.summarize(data), data=data, iterations=ops_per_sample)
    extra = dict(extra_info)
    figures: measures.StepFigures | measures.CollectiveFigures
    if params["mode"] in STEP_MODES:
        figures = measures.step_figures(
            step=data, compute_only=extra["compute_only_data"], comm_only=extra.get("comm_only_data"),
            compute_in_step=extra.get("compute_in_step_data"), compute_alone=extra.get("compute_alone_data"))
    else:
        figures = measures.collective_figures(
            params["mode"], int(params["size_bytes"]), int(params["group_size"]), data,
            reference_s=extra.get("reference_s"), link_gbps=extra.get("link_gbps_per_direction"))
    extra.update(figures.extra_info())
    extra["ops_per_sample"] = ops_per_sample
    return schema.benchmark_entry(params, block, extra, options)


def cell_benchmark(measured: Measured, *, world_size: int, options: dict[str, Any], spans_nodes: bool | None = None,
                   telemetry: dict[str, Any] | None = None, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """A measured cell as a benchmark: the one place a Measured becomes results.json (params from
    its Cell, extra_info from its parts, then its figures). The run adds what it learned around
    the cell: whether its groups span nodes, the GPUs' telemetry and its warnings (throttling),
    which follow the cell's own; the pytest-benchmark suite (benchmarks/) knows none of them."""
    params = dict(measured.cell.params(), world_size=world_size, group_size=measured.group_size)
    bench = make_benchmark(params, measured.data, measured.samples.ops_per_sample, measured.extra_info(), options)
    extra = bench["extra_info"]
    if spans_nodes is not None:
        extra["spans_nodes"] = spans_nodes
    if telemetry is not None:
        extra["telemetry"] = telemetry
    if measured.warnings or warnings:
        extra["warnings"] = [*measured.warnings, *warnings]
    return bench


def append_cell(run_dir: str, benchmark: dict[str, Any]) -> None:
    path = os.path.join(run_dir, CELLS_FILE)
    try:  # O_NONBLOCK: a named pipe put in its place fails at once instead of holding the run
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise safe_files.NotRegularFile(errno.EINVAL, f"is {safe_files.kind_of(os.fstat(fd).st_mode)}, "
                                                              "not a regular file")
            fh.write(json.dumps(benchmark) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:  # disk full, a read-only remount: say which cell was lost
        raise OSError(err.errno, f"cannot append cell {benchmark.get('name')} to {path}: "
                                 f"{err.strerror}") from None


def drop_partial_line(run_dir: str) -> None:
    """Before a resumed run appends: cut a last line that a crash left without its newline."""
    path = os.path.join(run_dir, CELLS_FILE)
    if not os.path.lexists(path):
        return
    data = safe_files.read_bytes(path, safe_files.RESULTS_LIMIT_BYTES)  # read_cells checked it
    if data and not data.endswith(b"\n"):
        os.truncate(path, data.rfind(b"\n") + 1)


def read_cells(run_dir: str, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Finished cells of a run, each checked (schema.parse_cells): a last line cut short by a
    crash is ignored, a damaged line is skipped with a warning passed to `warn`, anything else
    raises SchemaError naming the line."""
    path = os.path.join(run_dir, CELLS_FILE)
    if not os.path.lexists(path):
        return []
    try:
        raw = safe_files.read_bytes(path, safe_files.RESULTS_LIMIT_BYTES)
    except OSError as err:
        raise schema.SchemaError(f"{path}: cannot read ({err.strerror})") from None
    cells, warnings = schema.parse_cells(raw, path)
    for line in warnings:
        if warn:
            warn(line)
    return cells


def cells_disagreement(run_dir: str, doc: dict[str, Any]) -> str | None:
    """How the run's cells.jsonl disagrees with its results.json (None: it agrees, or there is
    none, as in a kept baseline): cells one file has and the other lacks, or other samples."""
    try:
        cells = {schema.cell_key(b["params"]): b for b in read_cells(run_dir)}  # the last copy wins
    except schema.SchemaError as err:
        return str(err)
    if not cells:
        return None
    kept = {schema.cell_key(b["params"]): b for b in doc["benchmarks"]}
    only_cells = [schema.cell_id(c["params"]) for k, c in cells.items() if k not in kept]
    only_doc = [schema.cell_id(b["params"]) for k, b in kept.items() if k not in cells]
    other = [schema.cell_id(b["params"]) for k, b in kept.items()
             if k in cells and cells[k]["stats"]["data"] != b["stats"]["data"]]
    parts = [f"{len(names)} cell(s) {what} (first {names[0]})" for names, what in (
        (only_cells, f"in {CELLS_FILE} but not in {RESULTS_FILE}"),
        (only_doc, f"in {RESULTS_FILE} but not in {CELLS_FILE}"),
        (other, f"with other samples in {CELLS_FILE} than in {RESULTS_FILE}")) if names]
    return f"{'; '.join(parts)}; the report shows {RESULTS_FILE}" if parts else None


def unfinished(run_dir: str) -> str | None:
    """Why a run directory has no results.json to report yet (None when it has one, or holds no run)."""
    if os.path.lexists(os.path.join(run_dir, RESULTS_FILE)) or not any(
            os.path.lexists(os.path.join(run_dir, name)) for name in (CONFIG_FILE, CELLS_FILE)):
        return None
    return (f"run directory {run_dir!r} has no {RESULTS_FILE} yet: its run is in progress, or ended "
            f"before writing it (finish it with --resume {run_dir})")


def _paired_data(bench: dict[str, Any], other: dict[str, Any] | None) -> list[float] | None:
    """`other`'s samples when they pair with `bench`'s round by round (same comparison, same
    number of rounds), else None."""
    if other is None:
        return None
    comparison = bench["extra_info"].get("comparison")
    if comparison is None or other["extra_info"].get("comparison") != comparison:
        return None
    data = other["stats"]["data"]
    return data if len(data) == len(bench["stats"]["data"]) else None


def derive(benchmarks: list[dict[str, Any]]) -> None:
    """Add the cross-cell measures of `ag_rs` cells in place, paired over the rounds of their
    comparison: overlap efficiency (the same source's ag and rs cells) and speedup over
    single_comm's ag_rs. Cells that were not sampled together get no figure: unpaired medians
    of separately timed cells were what read as overlap above 1."""
    by_key = {schema.cell_key(b["params"]): b for b in benchmarks}

    def sibling(params: dict[str, Any], **changes: Any) -> dict[str, Any] | None:
        return by_key.get(schema.cell_key({**params, **changes}))

    for bench in benchmarks:
        params = bench["params"]
        if params["mode"] != "ag_rs":
            continue
        # single_comm is the reference: on the same NCCL options when it was measured under
        # them, else on the defaults (an options sweep tunes pg_collection only).
        single = (sibling(params, source="single_comm")
                  or sibling(params, source="single_comm", nccl_options="default"))
        ag = _paired_data(bench, sibling(params, mode="ag"))
        rs = _paired_data(bench, sibling(params, mode="rs"))
        bench["extra_info"].update(measures.pair_figures(
            ag=ag, rs=rs, ag_rs=bench["stats"]["data"], single=_paired_data(bench, single)).extra_info())


def build_document(benchmarks: list[dict[str, Any]], *, machine_info: dict[str, Any],
                   commit_info: dict[str, Any], config: dict[str, Any],
                   missing_cells: list[str], started_utc: str,
                   notes: dict[str, Any] | None = None) -> dict[str, Any]:
    benchmarks = [json.loads(json.dumps(b)) for b in benchmarks]  # derive() must not touch callers'
    derive(benchmarks)
    try:
        from importlib.metadata import version
        pb_version = version("pytest-benchmark")
    except Exception:  # the document stays valid without it
        pb_version = "5.0.0"
    return {
        "machine_info": machine_info,
        "commit_info": commit_info,
        "benchmarks": benchmarks,
        "datetime": started_utc,
        "version": pb_version,
        "agrs_bench": {
            "schema_version": schema.SCHEMA_VERSION,
            "complete": not missing_cells,
            "missing_cells": list(missing_cells),
            "summary": summary.summarize_run(benchmarks),
            "finished_utc": datetime.datetime.now(datetime.UTC).isoformat(),
            "config": config,
            **(notes or {}),
        },
    }


def salvage(run_dir: str) -> bool:
    """When a run ended with no results.json (rank 0 itself died, or NCCL's own watchdog aborted
    it), build one from config.json and cells.jsonl, marked incomplete. False: nothing to do."""
    config_path = os.path.join(run_dir, CONFIG_FILE)
    if os.path.exists(os.path.join(run_dir, RESULTS_FILE)) or not os.path.exists(config_path):
        return False
    config = schema.load_config(config_path)
    # A resumed run measures a half-written comparison again whole: the last copy of a cell wins.
    cells = list({schema.cell_key(b["params"]): b for b in read_cells(run_dir)}.values())
    done = {schema.cell_id(b["params"]) for b in cells}
    missing = [c for c in config.get("cells", []) if c not in done]
    info = {"backend": config.get("backend"), "world_size": config.get("layout", {}).get("world_size")}
    doc = build_document(cells, machine_info=info, commit_info={}, config=config,
                         missing_cells=missing or ["(unknown: the run ended before it finished)"],
                         started_utc=datetime.datetime.fromtimestamp(
                             os.path.getmtime(config_path), datetime.UTC).isoformat(),
                         notes={"rebuilt_from_cells": True})
    write_run(run_dir, doc)
    return True


STATS_IN_ROWS = ("median", "mean", "min", "max", "stddev", "q1", "q3", "iqr", "rounds", "iterations")
ROW_STATS = tuple(f"{k}_s" if k not in ("rounds", "iterations") else k for k in STATS_IN_ROWS)


def to_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One tidy row per cell: params, the usual stats, and every scalar of extra_info."""
    rows = []
    for bench in doc["benchmarks"]:
        row = dict(bench["params"])
        for key, column in zip(STATS_IN_ROWS, ROW_STATS):
            row[column] = bench["stats"][key]
        for key, value in bench["extra_info"].items():
            if isinstance(value, (int, float, str, bool)) or value is None:
                row[key] = value
        rows.append(row)
    return rows


def write_run(run_dir: str, doc: dict[str, Any]) -> None:
    """results.json and results.csv; results.json carries the launch id of the run's config.json."""
    import pandas as pd

    launch_id = launches.recorded_id(run_dir, CONFIG_FILE)
    if launch_id and not doc["agrs_bench"].get(launches.LAUNCH_ID_KEY):
        doc = {**doc, "agrs_bench": {**doc["agrs_bench"], launches.LAUNCH_ID_KEY: launch_id}}
    write_atomic(os.path.join(run_dir, RESULTS_FILE), json.dumps(doc, indent=1) + "\n")
    rows = to_rows(doc)  # no cell at all: still the header line, not a lone newline
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=[*schema.PARAM_KEYS, *schema.OPTIONAL_PARAMS,
                                                                  *ROW_STATS])
    write_atomic(os.path.join(run_dir, CSV_FILE), table.to_csv(index=False))
