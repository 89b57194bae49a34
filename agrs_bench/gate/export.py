"""HEAD's cells in the `customSmallerIsBetter` JSON that github-action-benchmark reads.

`python -m agrs_bench.gate.export HEAD --out FILE` (HEAD: run dirs / results.json / a folder of
runs, comma-separated) needs no baseline, so the first night already records history.

One entry per cell: {"name", "unit", "value", "range", "extra"}. name = the cell id with the card
and GPU count (a history must never mix cards); value = geometric mean of the launch medians, in
ms (the gate's own estimator); range = half-width of its 95% interval (t over launches with 2 or
more, else the order-statistic interval of the one launch's median), left out where none exists.
results.json itself stays a pytest-benchmark document; this is a second view of it for dashboards.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from agrs_bench.analysis import stats
from agrs_bench.errors import ArgumentParser, ConfigError, cli_entry, fail
from agrs_bench.gate import verdicts as gate
from agrs_bench.results import baseline, schema
from agrs_bench.results.files import write_atomic

PROG = "agrs_bench.gate.export"


def machine_label(doc: dict[str, Any]) -> str:
    info = doc["machine_info"]
    return f"{info.get('gpu_name') or 'cpu'} x{info.get('world_size')}"


def _interval_ms(launches: list[list[float]]) -> tuple[float, tuple[float, float] | None]:
    value_s, (low, high) = gate.center_interval(launches)
    if math.isnan(low) and len(launches) == 1:
        found = stats.median_interval(launches[0])
        low, high = (found.low, found.high) if found else (math.nan, math.nan)
    return value_s * 1e3, None if math.isnan(low) else (low * 1e3, high * 1e3)


def github_benchmark(head: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    launches = gate.launches_by_cell(head)
    machine = machine_label(head[0])
    entries = []
    for key, params in gate.params_by_cell(head).items():
        value_ms, interval = _interval_ms(launches[key])
        entry: dict[str, Any] = {"name": f"{schema.cell_id(params)} ({machine})", "unit": "ms", "value": value_ms}
        if interval:
            entry["range"] = f"± {(interval[1] - interval[0]) / 2:.6g}"
        samples = sum(len(launch) for launch in launches[key])
        entry["extra"] = (f"{len(launches[key])} launch(es), {samples} samples; {machine}, {params['dtype']}; "
                          + ("range: half-width of the 95% interval" if interval else "no 95% interval"))
        entries.append(entry)
    return entries


@cli_entry(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("head", help="launches: run dirs / results.json / a folder of runs, comma-separated")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    args = parser.parse_args(argv)
    try:
        head = [schema.load(p) for p in baseline.run_files(args.head)]
    except schema.SchemaError as err:
        fail(str(err), PROG)
    try:
        write_atomic(args.out, json.dumps(github_benchmark(head), indent=1) + "\n")
    except OSError as err:
        raise ConfigError(f"--out {args.out!r} cannot be written ({err.strerror})") from None
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
