"""HEAD's cells in the `customSmallerIsBetter` JSON that github-action-benchmark reads.

One entry per cell: {"name", "unit", "value", "range", "extra"}; value = median of all launches'
samples pooled, in ms; range = half the pooled interquartile range. results.json itself stays a
pytest-benchmark document; this is a second view of it for CI dashboards.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from agrs_bench.analysis import stats
from agrs_bench.gate import verdicts as gate
from agrs_bench.results import schema


def github_benchmark(head: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    launches = gate.launches_by_cell(head)
    entries = []
    for key, params in gate.params_by_cell(head).items():
        pooled = [x for launch in launches[key] for x in launch]
        q1, q3 = stats.quartiles(pooled)
        info = head[0]["machine_info"]
        entries.append({
            "name": schema.cell_id(params),
            "unit": "ms",
            "value": statistics.median(pooled) * 1e3,
            "range": f"± {(q3 - q1) / 2 * 1e3:.6g}",
            "extra": (f"{len(launches[key])} launch(es), {len(pooled)} samples; "
                      f"{info.get('gpu_name') or 'cpu'} x{info.get('world_size')}, {params['dtype']}"),
        })
    return entries
