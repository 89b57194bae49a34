"""Write a run directory: cells.jsonl as cells finish, then results.json, results.csv. Rank 0 only.

Every final file is written atomically (a temporary file, then a rename), so a reader never sees
half a file; cells.jsonl is appended and flushed per cell, so a crash loses no finished cell.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

from agrs_bench.analysis import measures, stats, summary
from agrs_bench.results import schema

CELLS_FILE = "cells.jsonl"
RESULTS_FILE = "results.json"
CSV_FILE = "results.csv"
CONFIG_FILE = "config.json"
RUN_FILES = (CONFIG_FILE, CELLS_FILE, RESULTS_FILE)
"""A directory holding any of these holds a run."""


def _umask() -> int:
    try:  # Linux >= 4.7 shows it without changing it (os.umask would, for every thread)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    except OSError as err:
        raise OSError(err.errno, f"cannot write {path}: {err.strerror}") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a final file gets the user's mode
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno is not None:  # disk full, read-only: say which file
            raise OSError(err.errno, f"cannot write {path}: {err.strerror}") from None
        raise


def make_benchmark(params: dict[str, Any], samples_s: Iterable[float], ops_per_sample: int,
                   extra_info: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """One cell as a pytest-benchmark benchmark; its own measures (analysis.measures) added."""
    data = [float(x) for x in samples_s]
    block = dict(stats.summarize(data), data=data, iterations=ops_per_sample)
    extra = dict(extra_info)
    if params["mode"] == "fsdp_step":
        extra.update(measures.step_measures(
            step=data, compute_only=extra["compute_only_data"], comm_only=extra["comm_only_data"],
            compute_in_step=extra.get("compute_in_step_data"), compute_alone=extra.get("compute_alone_data")))
    else:
        extra.update(measures.collective_measures(
            params["mode"], int(params["size_bytes"]), int(params["group_size"]), data,
            reference_s=extra.get("reference_s"), link_gbps=extra.get("link_gbps_per_direction")))
    extra["ops_per_sample"] = ops_per_sample
    return schema.benchmark_entry(params, block, extra, options)


def append_cell(run_dir: str, benchmark: dict[str, Any]) -> None:
    path = os.path.join(run_dir, CELLS_FILE)
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(benchmark) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:  # disk full, a read-only remount: say which cell was lost
        raise OSError(err.errno, f"cannot append cell {benchmark.get('name')} to {path}: "
                                 f"{err.strerror}") from None


def drop_partial_line(run_dir: str) -> None:
    """Before a resumed run appends: cut a last line that a crash left without its newline."""
    path = os.path.join(run_dir, CELLS_FILE)
    if not os.path.exists(path):
        return
    with open(path, "r+b") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            fh.truncate(data.rfind(b"\n") + 1)


def read_cells(run_dir: str, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Finished cells of a run, each checked (schema.parse_cells): a last line cut short by a
    crash is ignored, a damaged line is skipped with a warning passed to `warn`, anything else
    raises SchemaError naming the line."""
    path = os.path.join(run_dir, CELLS_FILE)
    if not os.path.exists(path):
        return []
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise schema.SchemaError(f"{path}: cannot read ({err.strerror})") from None
    cells, warnings = schema.parse_cells(raw, path)
    for line in warnings:
        if warn:
            warn(line)
    return cells


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
        bench["extra_info"].update(measures.pair_measures(
            ag=ag, rs=rs, ag_rs=bench["stats"]["data"], single=_paired_data(bench, single)))


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


def to_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One tidy row per cell: params, the usual stats, and every scalar of extra_info."""
    rows = []
    for bench in doc["benchmarks"]:
        row = dict(bench["params"])
        for key in ("median", "mean", "min", "max", "stddev", "q1", "q3", "iqr", "rounds", "iterations"):
            row[f"{key}_s" if key not in ("rounds", "iterations") else key] = bench["stats"][key]
        for key, value in bench["extra_info"].items():
            if isinstance(value, (int, float, str, bool)) or value is None:
                row[key] = value
        rows.append(row)
    return rows


def write_run(run_dir: str, doc: dict[str, Any]) -> None:
    import pandas as pd

    write_atomic(os.path.join(run_dir, RESULTS_FILE), json.dumps(doc, indent=1) + "\n")
    write_atomic(os.path.join(run_dir, CSV_FILE), pd.DataFrame(to_rows(doc)).to_csv(index=False))
