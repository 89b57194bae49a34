"""Launch identity: each run records a unique launch id, and the gate and `baseline` take every
launch once.

The gate's argument is that launches are independent units: launch-to-launch noise is measured
from their spread. The same run directory named three times (or spelled `R`, `R/`,
`R/results.json`, through a symbolic link, or copied) would pass for three launches that agree
perfectly, and a 10% slower copy of it would read as a regression on every cell. So a launch is
known by the id its run recorded (config.json and results.json `agrs_bench.launch_id`), and by
the samples of each of its cells: two independent launches never draw the same samples for a
cell, so a file written before ids existed, or a copy with its id edited, is known too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Sequence
from typing import Any

from agrs_bench import safe_files
from agrs_bench.results import schema

LAUNCH_ID_KEY = "launch_id"
LAUNCH_ID_RE = re.compile(r"[0-9a-f]{32}")


def new_launch_id() -> str:
    """128 random bits as 32 hex digits: unique without any coordination between hosts."""
    return secrets.token_hex(16)


def recorded_id(run_dir: str, config_file: str) -> str | None:
    """The launch id in a run directory's config.json, or None (a run older than launch ids,
    or a config.json that cannot be read: results.json is still written, known by its samples)."""
    try:
        record = json.loads(safe_files.read_bytes(os.path.join(run_dir, config_file),
                                                  safe_files.CONFIG_LIMIT_BYTES))
    except (OSError, ValueError, RecursionError):
        return None
    value = record.get(LAUNCH_ID_KEY) if isinstance(record, dict) else None
    return value if isinstance(value, str) and LAUNCH_ID_RE.fullmatch(value) else None


MIN_DISTINCT_TO_MATCH = 5
"""A cell is matched by its samples only when it has this many distinct values: CUDA events tick
in 0.5 us, so a few samples of a steady kernel may coincide between two real launches by chance;
five distinct ticks coincide with odds of about one in a million, twenty practically never."""


def identities(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """What names a launch: its recorded id, all its samples, and the samples of each of its
    cells, in any order (a file older than ids, a copy whose id was edited, a copy with cells
    dropped or samples shuffled is still known by them: independent launches never draw the same
    samples for a cell). Empty for a file with neither."""
    keys = []
    launch_id = doc["agrs_bench"].get(LAUNCH_ID_KEY)
    if launch_id:
        keys.append(("launch id", launch_id))
    cells = sorted((schema.cell_id(b["params"]), sorted(b["stats"]["data"])) for b in doc["benchmarks"])
    if cells:  # the whole file's samples: a copy of a launch whose cells have few samples
        keys.append(("samples in every cell", _digest(cells)))
    for name, data in cells:
        if len(set(data)) >= MIN_DISTINCT_TO_MATCH:
            keys.append((f"samples of cell {name}", _digest(data)))
    return keys


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


def refuse_repeats(launches: Sequence[tuple[str, dict[str, Any], str]]) -> None:
    """(path, document, side) of every launch given: SchemaError naming both paths when one
    launch is given twice, on one side or across the two."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for path, doc, side in launches:
        for key in identities(doc):
            if key in seen:
                first_path, first_side = seen[key]
                where = f"in {side}" if first_side == side else f"in {first_side} and in {side}"
                same = f"{key[0]} {key[1]}" if key[0] == "launch id" else key[0]
                raise schema.SchemaError(
                    f"the same launch is given twice {where}: {first_path!r} and {path!r} (same "
                    f"{same}); each launch counts once (run it again for another launch)")
        for key in identities(doc):
            seen[key] = (path, side)
