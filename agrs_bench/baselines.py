"""Where a run's committed baseline lives: results/baselines/<card>-x<N>.json.

`python -m agrs_bench.baselines RUN_DIR [--root DIR]` prints that path (scripts/nightly.sh uses it).
card = the short lowercase GPU model ("NVIDIA H100 80GB HBM3" -> h100), N = the GPU count.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from agrs_bench import schema
from agrs_bench.errors import cli_entry, fail

DEFAULT_ROOT = os.path.join("results", "baselines")
VENDOR_WORDS = {"nvidia", "tesla", "geforce", "amd", "instinct", "radeon"}


def card_name(gpu_name: str | None) -> str:
    """The short lowercase model: the first word that mixes letters and digits (h100, a100, l40s,
    mi300x), else the remaining words joined with '-'; 'cpu' for a CPU run."""
    words = [w for w in re.split(r"[\s_-]+", (gpu_name or "cpu").lower()) if w and w not in VENDOR_WORDS]
    for word in words:
        if re.fullmatch(r"[a-z]+\d+[a-z]*", word):
            return word
    return "-".join(words) or "cpu"


def baseline_path(machine_info: dict[str, Any], root: str = DEFAULT_ROOT) -> str:
    return os.path.join(root, f"{card_name(machine_info.get('gpu_name'))}-x{machine_info.get('world_size')}.json")


@cli_entry("agrs_bench.baselines")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agrs_bench.baselines", description=__doc__)
    parser.add_argument("run", help="a run directory or its results.json")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="folder of the baselines (default %(default)s)")
    args = parser.parse_args(argv)
    path = os.path.join(args.run, "results.json") if os.path.isdir(args.run) else args.run
    try:
        doc = schema.load(path)
    except schema.SchemaError as err:
        fail(str(err), "agrs_bench.baselines")
    print(baseline_path(doc["machine_info"], args.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
