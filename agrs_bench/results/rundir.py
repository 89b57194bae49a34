"""The run directory: checked before launch (touching nothing), created by rank 0 once the
preflight checks passed, with config.json naming every cell the run will measure."""

from __future__ import annotations

import json
import os
import tempfile

from agrs_bench.config.run_config import RunConfig
from agrs_bench.errors import ConfigError
from agrs_bench.results import files as results
from agrs_bench.results import resume
from agrs_bench.results import schema


def check_out_dir(out: str) -> None:
    """The run directory must be new (or hold no run) and creatable; leaves nothing behind."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out!r} exists and is not a directory")
    if os.path.isdir(out) and any(os.path.exists(os.path.join(out, f)) for f in results.RUN_FILES):
        raise ConfigError(f"--out {out!r} already holds a run; choose another directory "
                          "(or --resume it)")
    ancestor = os.path.abspath(out)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ConfigError(f"--out {out!r} is not writable ({ancestor!r} is not a directory)")
    try:  # os.access says yes to root on read-only mounts and on folders without w bits
        os.rmdir(tempfile.mkdtemp(prefix=".agrs-probe-", dir=ancestor))
    except OSError as err:
        raise ConfigError(f"--out {out!r} is not writable ({ancestor!r}: {err.strerror})") from None


def check_run_dir(cfg: RunConfig) -> list[dict]:
    """Touches nothing: a new run needs a usable --out; a resumed one, a matching run.
    Returns the finished cells of a resumed run."""
    if cfg.resume:
        return resume.finished_cells(cfg)
    check_out_dir(cfg.out_dir)
    return []


def prepare_run_dir(cfg: RunConfig) -> None:
    """Rank 0 only, once the preflight checks passed: create the run directory and config.json."""
    if cfg.resume:
        results.drop_partial_line(cfg.out_dir)
        return
    check_out_dir(cfg.out_dir)
    try:
        os.makedirs(cfg.out_dir, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {cfg.out_dir!r} cannot be created ({err.strerror})") from None
    cell_ids = [schema.cell_id(dict(c, world_size=cfg.layout.world_size)) for c in cfg.cells()]
    results.write_atomic(os.path.join(cfg.out_dir, results.CONFIG_FILE),
                         json.dumps(dict(cfg.record(), cells=cell_ids), indent=1) + "\n")


