"""Fault injection for the test suite, driven by environment variables. Never set them for real runs.

- `AGRS_BENCH_TEST_SIGNAL=SIGNAME@RANK:CELL` — rank RANK sends itself SIGNAME (KILL or STOP)
  just before it starts the comparison holding cell number CELL (1-based), while its peers go on into its
  collectives: a rank that dies, or one that stops answering, at a known point of the run.
- `AGRS_BENCH_TEST_CORRUPT_AG=1` — the `pg_collection` source builds its AG groups from the
  layout with the dp axis moved to the front of the order (what Megatron's
  `create_all_gather_groups()` did by rebuilding the groups with a fixed order), and the run skips
  the membership check, so that only the output check (`--check`) is left to catch the wrong
  group members.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys

from agrs_bench.topology.layout import Layout

SIGNAL_VAR = "AGRS_BENCH_TEST_SIGNAL"
CORRUPT_AG_VAR = "AGRS_BENCH_TEST_CORRUPT_AG"


def maybe_signal_self(rank: int, cell_index: int) -> None:
    spec = os.environ.get(SIGNAL_VAR)
    if not spec:
        return
    name, _, where = spec.partition("@")
    target_rank, _, target_cell = where.partition(":")
    if int(target_rank) == rank and int(target_cell) == cell_index:
        print(f"test hook: rank {rank} sends itself SIG{name} before cell {cell_index}",
              file=sys.stderr, flush=True)
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))


def corrupt_ag_layout(layout: Layout) -> Layout | None:
    """The layout to derive pg_collection's AG groups from when the hook is on, else None."""
    if os.environ.get(CORRUPT_AG_VAR) != "1":
        return None
    axes = [a for a in layout.order.split("-") if a != "dp"]
    return dataclasses.replace(layout, order="-".join(["dp", *axes]))
