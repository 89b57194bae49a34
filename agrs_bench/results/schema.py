"""The results contract: a pytest-benchmark document, one benchmark per cell. Defined here only.

Top level: machine_info, commit_info, benchmarks, datetime, version (pytest-benchmark's), and
`agrs_bench` {schema_version, complete, missing_cells, config}. Each benchmark: name, fullname,
group, params {mode, buffer, source, size_bytes, dtype, world_size, group_size}, param, options,
stats (seconds per iteration; data = raw samples; iterations = ops per sample), extra_info.
Report, plots and compare read these files and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from agrs_bench.vocab import size_label  # noqa: F401 (cell names use it; renderers import it here)

SCHEMA_VERSION = 1
PARAM_KEYS = ("mode", "buffer", "source", "size_bytes", "dtype", "world_size", "group_size")
# Optional params with their defaults: a cell without them is an eager cell on default options.
OPTIONAL_PARAMS = {"exec": "eager", "nccl_options": "default", "issue": "role_streams"}
STATS_KEYS = ("min", "max", "mean", "stddev", "rounds", "median", "iqr", "q1", "q3",
              "iqr_outliers", "stddev_outliers", "outliers", "ld15iqr", "hd15iqr", "ops",
              "total", "data", "iterations")


class SchemaError(ValueError):
    """A file that is not an agrs_bench results document."""




def cell_key(params: dict[str, Any]) -> tuple:
    """What makes two cells the same measurement (for matching runs and resuming)."""
    return (params["mode"], params["buffer"], params["source"], int(params["size_bytes"]), params["dtype"],
            *(params.get(k, default) for k, default in OPTIONAL_PARAMS.items()))


def cell_id(params: dict[str, Any]) -> str:
    name = f"{params['mode']}-{params['buffer']}-{params['source']}-{size_label(int(params['size_bytes']))}"
    for key, default in OPTIONAL_PARAMS.items():
        if params.get(key, default) != default:
            name += f"-{params[key]}"
    return name


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


def validate(doc: Any, origin: str) -> dict[str, Any]:
    """Raise SchemaError naming `origin` and the first thing wrong; return the document."""
    if not isinstance(doc, dict):
        raise SchemaError(f"{origin}: top level is {type(doc).__name__}, not an object")
    for key in ("machine_info", "commit_info", "benchmarks", "datetime", "version", "agrs_bench"):
        if key not in doc:
            raise SchemaError(f"{origin}: no {key!r} key (not an agrs_bench results.json)")
    meta = doc["agrs_bench"]
    if not isinstance(meta, dict) or meta.get("schema_version") != SCHEMA_VERSION:
        raise SchemaError(f"{origin}: agrs_bench.schema_version is "
                          f"{meta.get('schema_version') if isinstance(meta, dict) else meta!r}, "
                          f"expected {SCHEMA_VERSION}")
    if not isinstance(doc["benchmarks"], list):
        raise SchemaError(f"{origin}: 'benchmarks' is not a list")
    for i, bench in enumerate(doc["benchmarks"]):
        if not isinstance(bench, dict):
            raise SchemaError(f"{origin}: benchmarks[{i}] is not an object")
        for key in ("name", "params", "stats", "extra_info"):
            if key not in bench:
                raise SchemaError(f"{origin}: benchmarks[{i}] has no {key!r}")
        missing = [k for k in PARAM_KEYS if k not in bench["params"]]
        if missing:
            raise SchemaError(f"{origin}: benchmarks[{i}].params lacks {missing[0]!r}")
        if not isinstance(bench["stats"], dict):
            raise SchemaError(f"{origin}: benchmarks[{i}].stats is not an object")
        lacking = [k for k in STATS_KEYS if k not in bench["stats"]]
        if lacking:  # pytest-benchmark compare and our renderers read every one of these
            raise SchemaError(f"{origin}: benchmarks[{i}].stats lacks {lacking[0]!r}")
        data = bench["stats"].get("data")
        if not isinstance(data, list) or not data or not all(isinstance(x, (int, float)) for x in data):
            raise SchemaError(f"{origin}: benchmarks[{i}].stats.data is not a non-empty list of numbers")
    return doc


def load(path: str) -> dict[str, Any]:
    """Read and validate one results.json; SchemaError (with the path) on anything wrong."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SchemaError(f"{path}: is a directory without results.json") from None
    except OSError as err:
        raise SchemaError(f"{path}: cannot read ({err.strerror})") from None
    if not text.strip():
        raise SchemaError(f"{path}: file is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise SchemaError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    return validate(doc, path)
