"""`python -m agrs_bench.baseline RUN_DIR NAME [--force]`: keep a run's results.json as a baseline.

Copies RUN_DIR/results.json to results/baselines/NAME.json (atomically) for `compare` to judge
later runs against. An existing baseline is never replaced without --force, and an incomplete
run never becomes one: finish it with `agrs_bench.run --resume RUN_DIR` first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from agrs_bench import schema
from agrs_bench.errors import ConfigError, cli_entry
from agrs_bench.results import RESULTS_FILE, write_atomic

PROG = "agrs_bench.baseline"
DEFAULT_DIR = os.path.join("results", "baselines")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ConfigError(message)


def keep(run_dir: str, name: str, *, folder: str = DEFAULT_DIR, force: bool = False) -> str:
    """Copy the run's results.json to FOLDER/NAME.json; returns the path written."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"baseline name {name!r} must be letters, digits, '.', '_' or '-'")
    try:
        doc = schema.load(os.path.join(run_dir, RESULTS_FILE))
    except schema.SchemaError as err:
        raise ConfigError(str(err)) from None
    missing = doc["agrs_bench"].get("missing_cells", [])
    if not doc["agrs_bench"].get("complete", True):
        raise ConfigError(f"run {run_dir!r} is incomplete ({len(missing)} cell(s) missing); "
                          f"finish it with `python -m agrs_bench.run --resume {run_dir}` first")
    path = os.path.join(folder, f"{name}.json")
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
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a finished run directory")
    parser.add_argument("name", help="baseline name: results/baselines/NAME.json")
    parser.add_argument("--dir", default=DEFAULT_DIR, help="baseline folder (default results/baselines)")
    parser.add_argument("--force", action="store_true", help="replace an existing baseline")
    args = parser.parse_args(argv)
    print(keep(args.run_dir, args.name, folder=args.dir, force=args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
