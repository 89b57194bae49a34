"""Launch identity: each run records a unique launch id, and the gate and `baseline` take every
launch once.

The gate's argument is that launches are independent units: launch-to-launch noise is measured
from their spread. The same run directory named three times (or spelled `R`, `R/`,
`R/results.json`, through a symbolic link, or copied) would pass for three launches that agree
perfectly, and a 10% slower copy of it would read as a regression on every cell. So a launch is
known by the id its run recorded (config.json and results.json `agrs_bench.launch_id`), and a
file written before ids existed by a fingerprint of its samples: two independent launches never
draw the same samples for every cell.
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


def identities(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """What names a launch: its recorded id, and the fingerprint of its samples (a file older
    than ids, or a copy whose id was edited, is still known by them). Empty for a file with
    neither (no cells: nothing in it can count twice)."""
    keys = []
    launch_id = doc["agrs_bench"].get(LAUNCH_ID_KEY)
    if launch_id:
        keys.append(("launch id", launch_id))
    samples = sorted((schema.cell_id(b["params"]), b["stats"]["data"]) for b in doc["benchmarks"])
    if samples:
        keys.append(("samples fingerprint", hashlib.sha256(json.dumps(samples).encode()).hexdigest()[:16]))
    return keys


def refuse_repeats(launches: Sequence[tuple[str, dict[str, Any], str]]) -> None:
    """(path, document, side) of every launch given: SchemaError naming both paths when one
    launch is given twice, on one side or across the two."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    for path, doc, side in launches:
        for key in identities(doc):
            if key in seen:
                first_path, first_side = seen[key]
                where = f"in {side}" if first_side == side else f"in {first_side} and in {side}"
                raise schema.SchemaError(
                    f"the same launch is given twice {where}: {first_path!r} and {path!r} (same "
                    f"{key[0]} {key[1]}); each launch counts once (run it again for another launch)")
        for key in identities(doc):
            seen[key] = (path, side)
