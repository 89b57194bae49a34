"""`agrs-bench baseline RUN_DIR [NAME] [--force] [--path-only]`: keep a run as a baseline.

Baselines live in results/baselines/<card>-x<N>.json: card = the short lowercase GPU model
("NVIDIA H100 80GB HBM3" -> h100), N = the GPU count; NAME overrides that name. The run's
results.json is copied atomically; an existing baseline is never replaced without --force, and
an incomplete run never becomes one (finish it with `agrs_bench.run --resume RUN_DIR` first).
`--path-only` prints where the run's baseline lives and writes nothing (scripts/nightly.sh).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from agrs_bench.results import schema
from agrs_bench.errors import ArgumentParser, ConfigError, cli_entry
from agrs_bench.results.files import RESULTS_FILE, write_atomic

PROG = "agrs-bench baseline"
DEFAULT_DIR = os.path.join("results", "baselines")
VENDOR_WORDS = {"nvidia", "tesla", "geforce", "amd", "instinct", "radeon"}


def card_name(gpu_name: str | None) -> str:
    """The short lowercase model: the first word that mixes letters and digits (h100, a100, l40s,
    mi300x), else the remaining words joined with '-'; 'cpu' for a CPU run."""
    words = [w for w in re.split(r"[\s_-]+", (gpu_name or "cpu").lower()) if w and w not in VENDOR_WORDS]
    for word in words:
        if re.fullmatch(r"[a-z]+\d+[a-z]*", word):
            return word
    return "-".join(words) or "cpu"


def default_name(machine_info: dict[str, Any]) -> str:
    return f"{card_name(machine_info.get('gpu_name'))}-x{machine_info.get('world_size')}"


def baseline_path(machine_info: dict[str, Any], root: str = DEFAULT_DIR) -> str:
    return os.path.join(root, f"{default_name(machine_info)}.json")


def _load(run: str) -> dict[str, Any]:
    path = os.path.join(run, RESULTS_FILE) if os.path.isdir(run) else run
    try:
        return schema.load(path)
    except schema.SchemaError as err:
        raise ConfigError(str(err)) from None


def keep(run_dir: str, name: str | None = None, *, folder: str = DEFAULT_DIR, force: bool = False) -> str:
    """Copy the run's results.json to FOLDER/NAME.json; returns the path written."""
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"baseline name {name!r} must be letters, digits, '.', '_' or '-'")
    doc = _load(run_dir)
    missing = doc["agrs_bench"].get("missing_cells", [])
    if not doc["agrs_bench"].get("complete", True):
        raise ConfigError(f"run {run_dir!r} is incomplete ({len(missing)} cell(s) missing); "
                          f"finish it with `python -m agrs_bench.run --resume {run_dir}` first")
    path = os.path.join(folder, f"{name or default_name(doc['machine_info'])}.json")
    if os.path.exists(path) and not force:
        raise ConfigError(f"baseline {path!r} already exists; pass --force to replace it")
    try:
        os.makedirs(folder, exist_ok=True)
        write_atomic(path, json.dumps(doc, indent=1) + "\n")
    except OSError as err:
        raise ConfigError(f"baseline folder {folder!r} is not writable ({err.strerror})") from None
    return path


@cli_entry(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a finished run directory (or its results.json)")
    parser.add_argument("name", nargs="?", help="baseline name (default <card>-x<N>)")
    parser.add_argument("--dir", default=DEFAULT_DIR, help="baseline folder (default results/baselines)")
    parser.add_argument("--force", action="store_true", help="replace an existing baseline")
    parser.add_argument("--path-only", action="store_true", help="print the run's baseline path; write nothing")
    args = parser.parse_args(argv)
    if args.path_only:
        print(baseline_path(_load(args.run_dir)["machine_info"], args.dir))
    else:
        print(keep(args.run_dir, args.name, folder=args.dir, force=args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
