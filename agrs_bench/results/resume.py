"""`--resume RUN_DIR`: finish an incomplete run with the very configuration that started it.

The run's configuration is read from its config.json (written when the run directory was made),
or from results.json when that is all there is; its finished cells from cells.jsonl. A resumed
run measures only the cells that are missing, appends them to the same cells.jsonl, and writes
results.json over all cells, so derived measures (overlap efficiency, speedup) span both parts.
"""

from __future__ import annotations

import json
import os
from typing import Any

from agrs_bench.results import files as results
from agrs_bench.results import schema
from agrs_bench.config.run_config import RunConfig
from agrs_bench.errors import ConfigError

# Fields that may change between the two parts of a run without changing what is measured.
NOT_COMPARED = ("argv", "timeout_s", "cells")


def stored_config(run_dir: str) -> dict[str, Any]:
    for name, pick in ((results.CONFIG_FILE, lambda d: d),
                       (results.RESULTS_FILE, lambda d: d["agrs_bench"]["config"])):
        path = os.path.join(run_dir, name)
        if not os.path.exists(path):
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                return pick(json.load(fh))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"--resume {run_dir!r}: cannot read the run's configuration from "
                              f"{path} ({type(err).__name__})") from None
    raise ConfigError(f"--resume {run_dir!r} holds no run (no {results.CONFIG_FILE} or "
                      f"{results.RESULTS_FILE})")


def first_difference(stored: dict[str, Any], now: dict[str, Any]) -> str | None:
    for key in sorted(set(stored) | set(now)):
        if key in NOT_COMPARED:
            continue
        if stored.get(key) != now.get(key):
            return f"{key} was {stored.get(key)!r}, now {now.get(key)!r}"
    return None


def finished_cells(cfg: RunConfig) -> list[dict[str, Any]]:
    """Check that `cfg` may resume its out_dir (touches nothing); return the finished cells."""
    run_dir = cfg.out_dir
    if not os.path.isdir(run_dir):
        raise ConfigError(f"--resume {run_dir!r} is not a directory")
    difference = first_difference(stored_config(run_dir), cfg.record())
    if difference:
        raise ConfigError(f"--resume {run_dir!r}: configuration differs from the run's: {difference}")
    wanted = {schema.cell_key(c) for c in cfg.cells()}
    done = [b for b in results.read_cells(run_dir) if schema.cell_key(b["params"]) in wanted]
    done = list({schema.cell_key(b["params"]): b for b in done}.values())
    if len(done) == len(wanted) and _is_complete(run_dir):
        raise ConfigError(f"--resume {run_dir!r}: the run is already complete ({len(wanted)} cells)")
    return done


def _is_complete(run_dir: str) -> bool:
    try:
        with open(os.path.join(run_dir, results.RESULTS_FILE), encoding="utf-8") as fh:
            return json.load(fh)["agrs_bench"]["complete"] is True
    except (OSError, ValueError, KeyError, TypeError):
        return False
