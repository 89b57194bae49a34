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
from collections.abc import Mapping
from dataclasses import dataclass

from agrs_bench.topology.layout import DEFAULT_ORDER, Layout

SIGNAL_VAR = "AGRS_BENCH_TEST_SIGNAL"
CORRUPT_AG_VAR = "AGRS_BENCH_TEST_CORRUPT_AG"


def megatron_ag_layout(layout: Layout) -> Layout:
    """The layout megatron-core's create_all_gather_groups() derives AG groups from: the run's
    sizes, order tp-cp-ep-dp-pp, rank offset 0 (its RankGenerators are built with both fixed)."""
    return dataclasses.replace(layout, order=DEFAULT_ORDER, rank_offset=0)


@dataclass(frozen=True)
class Faults:
    """The one seam of fault injection: read from the environment once per run, inert unless a
    test set a variable. Production code asks it two questions and never reads the variables."""

    signal_at: tuple[str, int, int] | None = None
    """(SIGNAME, rank, cell number): that rank signals itself before the comparison of that cell."""
    corrupt_sources: tuple[str, ...] = ()
    """Sources whose AG groups are built the way megatron-core's create_all_gather_groups() does."""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Faults:
        environ = os.environ if environ is None else environ
        signal_at = None
        spec = environ.get(SIGNAL_VAR, "")
        if spec:
            name, _, where = spec.partition("@")
            target_rank, _, target_cell = where.partition(":")
            signal_at = (name, int(target_rank), int(target_cell))
        corrupt = environ.get(CORRUPT_AG_VAR, "")
        sources = ("pg_collection",) if corrupt == "1" else tuple(
            s.strip() for s in corrupt.split(",") if s.strip() and s.strip() != "0")
        return cls(signal_at, sources)

    def before_cells(self, rank: int, first: int, last: int) -> None:
        """Just before this rank measures cells first..last (1-based, inclusive)."""
        if self.signal_at is None:
            return
        name, target_rank, target_cell = self.signal_at
        if target_rank == rank and first <= target_cell <= last:
            print(f"test hook: rank {rank} sends itself SIG{name} before cell {target_cell}",
                  file=sys.stderr, flush=True)
            os.kill(os.getpid(), getattr(signal, f"SIG{name}"))

    def ag_layout(self, layout: Layout, source: str) -> Layout | None:
        """The layout to derive `source`'s AG groups from when the hook is on for it, else None."""
        return megatron_ag_layout(layout) if source in self.corrupt_sources else None
