"""Fault injection for the test suite, driven by environment variables. Never set them for real runs.

- `AGRS_BENCH_TEST_SIGNAL=SIGNAME@RANK:CELL` — rank RANK sends itself SIGNAME (KILL or STOP)
  just before it starts the comparison holding cell number CELL (1-based), while its peers go on into its
  collectives: a rank that dies, or one that stops answering, at a known point of the run.
- `AGRS_BENCH_TEST_CORRUPT_AG=SOURCES` — the named sources (a comma list; `1` means
  `pg_collection`) build their AG groups the way megatron-core's `create_all_gather_groups()`
  really does (NVIDIA/Megatron-LM#4261, open): from the run's sizes with the order fixed to
  tp-cp-ep-dp-pp and rank offset 0, whatever order and offset the run uses. For our own sources
  the run then skips the membership check, so that only the output check (`--check`) is left to
  catch the wrong group members. For `megatron_core` the AG groups are rebuilt by megatron-core's
  own `create_group`, so megatron-core 0.16.1 shows 0.19.2's behaviour and the run's Megatron
  check (not timed, exit 5) is what catches it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys

from agrs_bench.topology.layout import DEFAULT_ORDER, Layout

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


def corrupt_ag_sources() -> tuple[str, ...]:
    """The sources whose AG groups the hook corrupts (none when it is off)."""
    spec = os.environ.get(CORRUPT_AG_VAR, "")
    if spec == "1":
        return ("pg_collection",)
    return tuple(s.strip() for s in spec.split(",") if s.strip() and s.strip() != "0")


def megatron_ag_layout(layout: Layout) -> Layout:
    """The layout megatron-core's create_all_gather_groups() derives AG groups from: the run's
    sizes, order tp-cp-ep-dp-pp, rank offset 0 (its RankGenerators are built with both fixed)."""
    return dataclasses.replace(layout, order=DEFAULT_ORDER, rank_offset=0)


def corrupt_ag_layout(layout: Layout, source: str) -> Layout | None:
    """The layout to derive `source`'s AG groups from when the hook is on for it, else None."""
    return megatron_ag_layout(layout) if source in corrupt_ag_sources() else None
