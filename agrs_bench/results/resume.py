"""`--resume RUN_DIR`: finish an incomplete run with the very configuration that started it.

The run's configuration is read from its config.json (written when the run directory was made),
or from results.json when that is all there is, and checked field by field (schema.py); with no
other flags it is the resumed run's configuration, and a flag given with another value is refused.
Its finished cells come from cells.jsonl: a damaged line is reported with its number and skipped,
the cells after it are kept; a line that is JSON but no cell is refused (exit 2). A resumed
run measures only the cells that are missing, appends them to the same cells.jsonl, and writes
results.json over all cells, so derived measures (overlap efficiency, speedup) span both parts.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from agrs_bench.config.run_config import RunConfig
from agrs_bench.errors import ConfigError
from agrs_bench.results import files as results
from agrs_bench.results import schema

# Fields that may change between the two parts of a run without changing what is measured.
NOT_COMPARED = ("argv", "timeout_s", "cells", "launch_id")


def stored_config(run_dir: str) -> dict[str, Any]:
    """The run's recorded configuration, checked (ConfigError naming the file, field and value)."""
    for name in (results.CONFIG_FILE, results.RESULTS_FILE):
        path = os.path.join(run_dir, name)
        if not os.path.lexists(path):
            continue
        try:
            if name == results.CONFIG_FILE:
                return schema.load_config(path)
            meta = schema.load(path)["agrs_bench"]
            return schema.validate_config(schema.complete_record(meta.get("config")),
                                          f"{path} agrs_bench.config")
        except schema.SchemaError as err:
            raise ConfigError(f"--resume {run_dir!r}: {err}") from None
    raise ConfigError(f"--resume {run_dir!r} holds no run (no {results.CONFIG_FILE} or "
                      f"{results.RESULTS_FILE})")


def stored_for_flags(run_dir: str) -> dict[str, Any]:
    """For config.cli: the recorded configuration of `--resume RUN_DIR` (checked)."""
    if not os.path.isdir(run_dir):
        raise ConfigError(f"--resume {run_dir!r} is not a directory")
    return stored_config(run_dir)


def first_difference(stored: dict[str, Any], now: dict[str, Any]) -> str | None:
    for key in sorted(set(stored) | set(now)):
        if key in NOT_COMPARED:
            continue
        if stored.get(key) != now.get(key):
            return f"{key} was {stored.get(key)!r}, now {now.get(key)!r}"
    return None


def finished_cells(cfg: RunConfig, warn: bool = True) -> list[dict[str, Any]]:
    """Check that `cfg` may resume its out_dir (touches nothing); return the finished cells."""
    run_dir = cfg.out_dir
    if not os.path.isdir(run_dir):
        raise ConfigError(f"--resume {run_dir!r} is not a directory")
    difference = first_difference(stored_config(run_dir), cfg.record())
    if difference:
        raise ConfigError(f"--resume {run_dir!r}: configuration differs from the run's: {difference}")
    wanted = {c.key for c in cfg.cells()}
    try:
        cells = results.read_cells(run_dir, warn=(lambda line: print(
            f"agrs_bench.run: warning: {line}", file=sys.stderr, flush=True)) if warn else None)
    except schema.SchemaError as err:
        raise ConfigError(f"--resume {run_dir!r}: {err}") from None
    done = [b for b in cells if schema.cell_key(b["params"]) in wanted]
    done = list({schema.cell_key(b["params"]): b for b in done}.values())
    if len(done) == len(wanted) and _is_complete(run_dir):
        raise ConfigError(f"--resume {run_dir!r}: the run is already complete ({len(wanted)} cells)")
    return done


def _is_complete(run_dir: str) -> bool:
    try:
        return schema.load(os.path.join(run_dir, results.RESULTS_FILE))["agrs_bench"].get("complete") is True
    except schema.SchemaError:
        return False
