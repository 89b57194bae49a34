"""The results contract: a pytest-benchmark document, one benchmark per cell. Defined here only.

Top level: machine_info, commit_info, benchmarks, datetime, version (pytest-benchmark's), and
`agrs_bench` {schema_version, complete, missing_cells, config}. Each benchmark: name, fullname,
group, params {mode, buffer, source, size_bytes, dtype, world_size, group_size}, param, options,
stats (seconds per iteration; data = raw samples; iterations = ops per sample), extra_info.
Report, plots and compare read these files and nothing else.
"""

from __future__ import annotations

import errno
import json
import math
import re
from collections.abc import Callable
from typing import Any

from agrs_bench import safe_files
from agrs_bench.config.cell import OPTIONAL_PARAMS, key_of, name_of
from agrs_bench.vocab import DEFAULT_ISSUE, size_label  # noqa: F401 (cell names use it; renderers import it here)

SCHEMA_VERSION = 2
# 1: each cell timed alone (before the paired engine); 2: the cells of a comparison sampled in
# the same rounds, with intervals. Both read; the gate never compares one with the other.
READABLE_SCHEMA_VERSIONS = (1, 2)
PARAM_KEYS = ("mode", "buffer", "source", "size_bytes", "dtype", "world_size", "group_size")
STATS_KEYS = ("min", "max", "mean", "stddev", "rounds", "median", "iqr", "q1", "q3",
              "iqr_outliers", "stddev_outliers", "outliers", "ld15iqr", "hd15iqr", "ops",
              "total", "data", "iterations")


class SchemaError(ValueError):
    """A file that is not an agrs_bench results document."""




def cell_key(params: dict[str, Any]) -> tuple:
    """What makes two cells the same measurement (for matching runs and resuming); Cell.key."""
    return key_of(params)


def cell_id(params: dict[str, Any]) -> str:
    """A cell's name from its params as a file stores them; Cell.name."""
    return name_of(params)


def benchmark_entry(params: dict[str, Any], stats: dict[str, Any], extra_info: dict[str, Any],
                    options: dict[str, Any]) -> dict[str, Any]:
    name = f"agrs[{cell_id(params)}]"
    return {
        "group": f"{params['mode']} {params['buffer']} {size_label(int(params['size_bytes']))}",
        "name": name,
        "fullname": f"agrs_bench::{name}",
        "params": {**{k: params[k] for k in PARAM_KEYS},
                   **{k: params[k] for k in OPTIONAL_PARAMS if k in params}},
        "param": cell_id(params),
        "extra_info": extra_info,
        "options": options,
        "stats": stats,
    }


# The one validation layer for every file a command reads (results.json, cells.jsonl lines,
# config.json): shape and type first, so that nothing downstream meets a surprise. Each check
# names the file, the field and the value; optional fields are checked only when present.


def _show(value: Any) -> str:
    text = json.dumps(value) if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
        return True
    except (TypeError, ValueError, RecursionError):
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_positive_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value) and value > 0


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _need(ok: bool, origin: str, field: str, value: Any, what: str) -> None:
    if not ok:
        raise SchemaError(f"{origin}: {field} = {_show(value)} is not {what}")


def _object(value: Any, origin: str, field: str) -> dict[str, Any]:
    _need(isinstance(value, dict), origin, field, value, "an object")
    return value


def _optional(table: dict[str, Any], key: str, check: Callable[[Any], bool], origin: str,
              field: str, what: str) -> None:
    if key in table:
        _need(check(table[key]), origin, f"{field}.{key}", table[key], what)


def _launch_id(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{32}", value) is not None


def _str_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _line_or_none(value: Any) -> bool:
    """Reports print it in a line of Markdown: no newline or other control character."""
    return value is None or (isinstance(value, str) and len(value) <= 200
                             and not any(ord(c) < 32 or ord(c) == 127 for c in value))


def _number_or_none(value: Any) -> bool:
    return value is None or _is_number(value)


def _interval_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, list) and len(value) == 2
                             and all(_is_number(v) for v in value))


def _name(value: Any) -> bool:
    """A cell's names go into file names, table rows and Markdown: no spaces, newlines or '|'."""
    return isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.:=+/-]{1,120}", value) is not None


_NAME = (_name, "a name (letters, digits and _ . : = + / -)")
PARAM_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "mode": _NAME,
    "buffer": _NAME,
    "source": _NAME,
    "size_bytes": (lambda v: _is_count(v) and v > 0, "a positive integer"),
    "dtype": _NAME,
    "world_size": (lambda v: _is_count(v) and v > 0, "a positive integer"),
    "group_size": (lambda v: _is_count(v) and v > 0, "a positive integer"),
}
MIN_SAMPLE_S = 1e-12
MAX_SAMPLE_S = 86400.0
"""Samples outside these are no measurement (no clock resolves a picosecond; no run waits more
than a day): read as such, their ratios overflow the gate's arithmetic."""
COUNT_STATS = ("rounds", "iqr_outliers", "stddev_outliers", "iterations")
# Times that are differences of samples (stddev, iqr) may be 0; every other time must be > 0.
SPREAD_STATS = ("stddev", "iqr")


def validate_cell(bench: Any, origin: str, field: str = "cell") -> dict[str, Any]:
    """One benchmark entry (a results.json benchmark or a cells.jsonl line)."""
    bench = _object(bench, origin, field)
    for key in ("name", "params", "stats", "extra_info"):
        if key not in bench:
            raise SchemaError(f"{origin}: {field} has no {key!r}")
    _need(isinstance(bench["name"], str), origin, f"{field}.name", bench["name"], "a string")
    params = _object(bench["params"], origin, f"{field}.params")
    for key, (check, what) in PARAM_CHECKS.items():
        if key not in params:
            raise SchemaError(f"{origin}: {field}.params lacks {key!r}")
        _need(check(params[key]), origin, f"{field}.params.{key}", params[key], what)
    for key in OPTIONAL_PARAMS:
        _optional(params, key, _name, origin, f"{field}.params", _NAME[1])
    stats = _object(bench["stats"], origin, f"{field}.stats")
    lacking = [k for k in STATS_KEYS if k not in stats]
    if lacking:  # pytest-benchmark compare and our renderers read every one of these
        raise SchemaError(f"{origin}: {field}.stats lacks {lacking[0]!r}")
    data = stats["data"]
    _need(isinstance(data, list) and bool(data), origin, f"{field}.stats.data", data,
          "a non-empty list of samples")
    for i, sample in enumerate(data):
        _need(_is_positive_finite(sample) and MIN_SAMPLE_S <= sample <= MAX_SAMPLE_S, origin,
              f"{field}.stats.data[{i}]", sample,
              f"a time in seconds from {MIN_SAMPLE_S:g} to {MAX_SAMPLE_S:g} (a day, the longest --timeout)")
    for key in STATS_KEYS:
        value = stats[key]
        if key in ("data", "outliers"):
            continue
        if key in COUNT_STATS:
            _need(_is_count(value), origin, f"{field}.stats.{key}", value, "a count (integer >= 0)")
        elif key in SPREAD_STATS:
            _need(_is_number(value) and math.isfinite(value) and value >= 0, origin,
                  f"{field}.stats.{key}", value, "a finite number >= 0")
        else:
            _need(_is_positive_finite(value), origin, f"{field}.stats.{key}", value,
                  "a finite number > 0")
    _need(isinstance(stats["outliers"], str), origin, f"{field}.stats.outliers", stats["outliers"],
          "a string")
    extra = _object(bench["extra_info"], origin, f"{field}.extra_info")
    for key, value in extra.items():
        if key.endswith("_ci") or "_ci_" in key:  # busbw_gbps_ci, median_ci_s: [low, high]
            _need(_interval_or_none(value), origin, f"{field}.extra_info.{key}", value,
                  "an interval [low, high] or null")
        elif key.endswith(("_s", "_gbps", "_fraction", "_efficiency", "_slowdown")) or \
                key.startswith(("speedup", "busbw", "time_over")):
            _need(_number_or_none(value), origin, f"{field}.extra_info.{key}", value,
                  "a number or null")
    _optional(extra, "warnings", lambda v: isinstance(v, list) and all(isinstance(w, str) for w in v),
              origin, f"{field}.extra_info", "a list of strings")
    for key in ("options",):
        _optional(bench, key, lambda v: isinstance(v, dict), origin, field, "an object")
    return bench


def validate(doc: Any, origin: str) -> dict[str, Any]:
    """Raise SchemaError naming `origin`, the field and the value of the first thing wrong;
    return the document."""
    if not isinstance(doc, dict):
        raise SchemaError(f"{origin}: top level is {type(doc).__name__}, not an object")
    for key in ("machine_info", "commit_info", "benchmarks", "datetime", "version", "agrs_bench"):
        if key not in doc:
            raise SchemaError(f"{origin}: no {key!r} key (not an agrs_bench results.json)")
    meta = doc["agrs_bench"]
    if not isinstance(meta, dict) or meta.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
        raise SchemaError(f"{origin}: agrs_bench.schema_version is "
                          f"{_show(meta.get('schema_version')) if isinstance(meta, dict) else _show(meta)}, "
                          f"expected one of {', '.join(map(str, READABLE_SCHEMA_VERSIONS))}")
    _optional(meta, "complete", lambda v: isinstance(v, bool), origin, "agrs_bench", "true or false")
    _optional(meta, "missing_cells", lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
              origin, "agrs_bench", "a list of cell names")
    _optional(meta, "launch_id", _launch_id, origin, "agrs_bench", "a launch id (32 hex digits)")
    for key in ("config", "summary", "megatron_core"):
        _optional(meta, key, lambda v: isinstance(v, dict), origin, "agrs_bench", "an object")
    info = _object(doc["machine_info"], origin, "machine_info")
    _optional(info, "gpu_name", _line_or_none, origin, "machine_info", "one line of text or null")
    _optional(info, "backend", _str_or_none, origin, "machine_info", "a string or null")
    _optional(info, "world_size", lambda v: v is None or (_is_count(v) and v > 0), origin, "machine_info",
              "a positive integer")
    _optional(info, "num_hosts", lambda v: _is_count(v) and v > 0, origin, "machine_info",
              "a positive integer")
    _optional(info, "env", lambda v: isinstance(v, dict), origin, "machine_info", "an object")
    _optional(info, "layout", lambda v: v is None or isinstance(v, (dict, str)), origin, "machine_info",
              "an object")
    commit = _object(doc["commit_info"], origin, "commit_info")
    _optional(commit, "id", _line_or_none, origin, "commit_info", "one line of text or null")
    _need(isinstance(doc["datetime"], str), origin, "datetime", doc["datetime"], "a string")
    _need(isinstance(doc["version"], str), origin, "version", doc["version"], "a string")
    _need(isinstance(doc["benchmarks"], list), origin, "benchmarks", doc["benchmarks"], "a list")
    first_of: dict[tuple, int] = {}
    for i, bench in enumerate(doc["benchmarks"]):
        validate_cell(bench, origin, f"benchmarks[{i}]")
        key = cell_key(bench["params"])
        if key in first_of:  # a cell counted twice would pass for a second launch of it
            raise SchemaError(f"{origin}: benchmarks[{first_of[key]}] and benchmarks[{i}] are the same "
                              f"cell {cell_id(bench['params'])}; a launch measures each cell once")
        first_of[key] = i
    return doc


# config.json (and agrs_bench.config): the fields `--resume RUN_DIR` restores a run from.
_INT_LIST = (lambda v: isinstance(v, list) and bool(v) and all(_is_count(x) and x > 0 for x in v),
             "a non-empty list of positive integers")
_STR_LIST = (lambda v: isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v),
             "a non-empty list of strings")
_BOOL = (lambda v: isinstance(v, bool), "true or false")
_STR = (lambda v: isinstance(v, str), "a string")
_COUNT = (_is_count, "an integer >= 0")
_POSITIVE = (_is_positive_finite, "a finite number > 0")
CONFIG_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "sizes_bytes": _INT_LIST, "dtype": _STR, "modes": _STR_LIST, "buffers": _STR_LIST,
    "sources": _STR_LIST, "num_warmup": _COUNT, "num_samples": _COUNT, "ops_per_sample": _COUNT,
    "target_sample_ms": _POSITIVE, "step_layers": _COUNT, "step_sizes_bytes": _INT_LIST,
    "gemm_mnk": (lambda v: _INT_LIST[0](v) and len(v) == 3, "three positive integers"),
    "timeout_s": _POSITIVE, "check": _BOOL, "backend": _STR, "reference": _BOOL,
    "hide_launch": _BOOL, "telemetry": _BOOL, "graph": _BOOL, "ag_options": _STR, "rs_options": _STR,
    "sweep_nccl_options": _BOOL,
    "layout": (lambda v: isinstance(v, dict) and all(_is_count(v.get(k)) and v.get(k) > 0 for k in
                                                     ("world_size", "tp", "cp", "ep", "pp"))
               and isinstance(v.get("order"), str)
               and (v.get("etp") is None or (_is_count(v["etp"]) and v["etp"] > 0)),
               "an object with positive world_size, tp, cp, ep, pp and an order"),
}
CONFIG_OPTIONAL = {"argv": (lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v),
                            "a list of strings"),
                   "cells": (lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
                             "a list of cell names"),
                   "trace": (lambda v: isinstance(v, bool), "true or false"),
                   "launch_id": (_launch_id, "a launch id (32 hex digits)"),
                   "issues": (lambda v: isinstance(v, list) and bool(v) and all(isinstance(i, str) for i in v),
                              "a non-empty list of issue styles")}


# Fields the record gained after runs had been recorded without them, each with the value such
# a run used: the feature did not exist yet (so it was off), or the value was the only one.
ADDED_FIELDS: dict[str, Any] = {
    # 2026-11-27 (merge of the first resume code): held timing, telemetry, the reference,
    # CUDA graphs and NCCL options; the runs recorded before timed launch-bound, without them.
    "reference": False, "hide_launch": False, "telemetry": False, "graph": False,
    "ag_options": "default", "rs_options": "default", "sweep_nccl_options": False,
    # 2026-11-29: --trace (the paired engine) and --issue (megatron_fsdp issue style).
    "trace": False, "issues": [DEFAULT_ISSUE],
}


def complete_record(record: Any) -> Any:
    """An older version's record with the fields it lacks filled in as that version ran."""
    if not isinstance(record, dict):
        return record  # validate_config names what it is
    return {**{k: v for k, v in ADDED_FIELDS.items() if k not in record}, **record}


def validate_config(record: Any, origin: str) -> dict[str, Any]:
    """A run's recorded configuration (RunConfig.record(), plus `cells` in config.json)."""
    if not isinstance(record, dict):
        raise SchemaError(f"{origin}: top level is {type(record).__name__}, not an object "
                          "(not an agrs_bench config.json)")
    for key, (check, what) in CONFIG_CHECKS.items():
        if key not in record:
            raise SchemaError(f"{origin}: no {key!r} key (not an agrs_bench config.json)")
        _need(check(record[key]), origin, key, record[key], what)
    for key, (check, what) in CONFIG_OPTIONAL.items():
        if key in record:
            _need(check(record[key]), origin, key, record[key], what)
    return record


def read_json(path: str, expected: str = "", limit_bytes: int = safe_files.RESULTS_LIMIT_BYTES) -> Any:
    """The JSON value in `path`; SchemaError (with the path) when it cannot be read as JSON."""
    try:
        raw = safe_files.read_bytes(path, limit_bytes)
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such file") from None
    except OSError as err:
        if err.errno == errno.EISDIR:
            raise SchemaError(f"{path}: is a directory{' without ' + expected if expected else ''}") from None
        raise SchemaError(f"{path}: cannot read ({err.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SchemaError(f"{path}: not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise SchemaError(f"{path}: file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SchemaError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    except RecursionError:
        raise SchemaError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError as err:  # an integer of more than 4300 digits
        raise SchemaError(f"{path}: not valid JSON ({' '.join(str(err).split(';')[0].split())})") from None


def load(path: str) -> dict[str, Any]:
    """Read and validate one results.json; SchemaError (with the path) on anything wrong."""
    return validate(read_json(path, "results.json"), path)


def load_config(path: str) -> dict[str, Any]:
    """Read and validate a config.json."""
    return validate_config(complete_record(read_json(path, limit_bytes=safe_files.CONFIG_LIMIT_BYTES)), path)


def parse_cells(raw: bytes, origin: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The cells of a cells.jsonl and one warning per damaged line (skipped; later cells kept).

    A line that is not JSON (a torn write) is damaged; a last line without its newline was cut by
    a crash and is dropped silently. A line that is JSON but not a cell, or bytes that are not
    UTF-8, mean the file is not what this program wrote: SchemaError naming the line.
    """
    cells, warnings = [], []
    lines = raw.split(b"\n")
    complete_lines = lines[:-1]  # after the last newline: empty, or a line a crash cut short
    for number, line in enumerate(complete_lines, start=1):
        where = f"{origin} line {number}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise SchemaError(f"{where}: not UTF-8 text (byte {err.start})") from None
        if not text.strip():
            continue
        try:
            cell = json.loads(text)
        except (ValueError, RecursionError) as err:  # JSONDecodeError, or 4300+ digits
            warnings.append(f"{where}: damaged, skipped ({getattr(err, 'msg', 'nested too deeply or too long')}); "
                            "the cells after it are kept")
            continue
        cells.append(validate_cell(cell, where))
    return cells, warnings
