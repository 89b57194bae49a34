"""The benchmark with faults injected, for the tests: `torchrun -m tests.support.fault_entry ARGS`, or
`python -m tests.support.fault_entry ARGS` (which self-launches this very module). It wraps real functions
of agrs_bench, then runs `agrs_bench.run.main`; nothing in the package knows it exists.

The faults come from environment variables, so that the ranks torchrun starts see them too:

- `AGRS_BENCH_TEST_SIGNAL=SIGNAME@RANK:CELL` — rank RANK sends itself SIGNAME (KILL or STOP)
  just before it measures the comparison holding cell number CELL (1-based), while its peers go
  on into its collectives: a rank that dies, or one that stops answering, at a known point of the run.
- `AGRS_BENCH_TEST_CORRUPT_AG=SOURCES` — the named sources (a comma list; `1` means
  `pg_collection`) get their AG groups the way megatron-core's `create_all_gather_groups()`
  really builds them (NVIDIA/Megatron-LM#4261, open): from the run's sizes with the order fixed
  to tp-cp-ep-dp-pp and rank offset 0, whatever order and offset the run uses. For our own
  sources the membership check is then skipped, so that only the output check (`--check`) is left
  to catch the wrong group members. For `megatron_core` the AG groups are rebuilt by
  megatron-core's own `create_group`, so megatron-core 0.16.1 shows 0.19.2's behaviour and the
  run's Megatron check (not timed, exit 5) is what catches it.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agrs_bench.topology.layout import DEFAULT_ORDER, Layout

SIGNAL_VAR = "AGRS_BENCH_TEST_SIGNAL"
CORRUPT_AG_VAR = "AGRS_BENCH_TEST_CORRUPT_AG"
MODULE = "tests.support.fault_entry"


def megatron_ag_layout(layout: Layout) -> Layout:
    """The layout megatron-core's create_all_gather_groups() derives AG groups from: the run's
    sizes, order tp-cp-ep-dp-pp, rank offset 0 (its RankGenerators are built with both fixed)."""
    return dataclasses.replace(layout, order=DEFAULT_ORDER, rank_offset=0)


@dataclass(frozen=True)
class Faults:
    """What the environment asks for; inert when no variable is set."""

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


def corrupting_group_maker(make_group: Callable[..., Any], ag_layout: Layout) -> Callable[..., Any]:
    """`make_group` with the AG groups' rank lists taken from `ag_layout` (the RS groups untouched).
    Our sources name their AG groups `.../dp_cp_ag` and `.../expt_dp_ag`."""
    def make(rank_lists: list[list[int]], rank: int, role: str, desc: str) -> Any:
        if desc.endswith("/dp_cp_ag"):
            rank_lists = ag_layout.dense("dp_cp")
        elif desc.endswith("/expt_dp_ag"):
            rank_lists = ag_layout.expert("expt_dp")
        return make_group(rank_lists, rank, role, desc)
    return make


def rebuild_megatron_ag_groups(source: Any, ag_layout: Layout, rank: int, timeout_s: float) -> Any:
    """Collective: `source`'s AG groups replaced by groups megatron-core's own create_group makes
    from `ag_layout`'s rank lists, the way 0.19.2's create_all_gather_groups makes them (every
    rank, every list)."""
    from megatron.core import parallel_state as ps

    timeout = datetime.timedelta(seconds=timeout_s)

    def made(lists: list[list[int]], desc: str) -> Any:
        mine = None
        for ranks in lists:
            group = ps.create_group(ranks, timeout=timeout, group_desc=desc)
            if rank in ranks:
                mine = group
        return mine

    source.dp_cp_ag = made(ag_layout.dense("dp_cp"), "DATA_PARALLEL_GROUP_WITH_CP_AG")
    if ag_layout.ep > 1:  # 0.19.2: `if for_expert_parallelism and ep_size > 1`
        source.expt_dp_ag = made(ag_layout.expert("expt_dp"), "EXPERT_DATA_PARALLEL_GROUP_AG")
    return source


def _signal_before(faults: Faults) -> None:
    """Wrap measure_comparison: the target rank signals itself before its comparison starts."""
    from agrs_bench.measure import cells

    name, target_rank, target_cell = faults.signal_at  # type: ignore[misc]
    measure_comparison = cells.measure_comparison

    def measure(ctx: Any, comparison: str, todo: list) -> Any:
        # The run's numbering: every cell of a timed source, in order (measure/runner.py).
        numbered = [c.key for c in ctx.cfg.cells() if (c.source, c.nccl_options) in ctx.sources]
        first = numbered.index(todo[0].key) + 1
        if ctx.rank == target_rank and first <= target_cell < first + len(todo):
            print(f"fault entry: rank {ctx.rank} sends itself SIG{name} before cell {target_cell}",
                  file=sys.stderr, flush=True)
            os.kill(os.getpid(), getattr(signal, f"SIG{name}"))
        return measure_comparison(ctx, comparison, todo)

    cells.measure_comparison = measure


def _corrupt_ag_groups(faults: Faults) -> None:
    """Wrap the runner's build_source and membership check for the corrupted sources."""
    from agrs_bench.measure import runner

    build_source, check_membership = runner.build_source, runner.check_membership
    ours = [name for name in faults.corrupt_sources if name != "megatron_core"]

    def build(name: str, layout: Layout, rank: int, *, make_group: Callable[..., Any],
              timeout_s: float = 600.0) -> Any:
        if name not in faults.corrupt_sources:
            return build_source(name, layout, rank, make_group=make_group, timeout_s=timeout_s)
        ag_layout = megatron_ag_layout(layout)
        if name == "megatron_core":
            source = build_source(name, layout, rank, make_group=make_group, timeout_s=timeout_s)
            return rebuild_megatron_ag_groups(source, ag_layout, rank, timeout_s)
        return build_source(name, layout, rank, make_group=corrupting_group_maker(make_group, ag_layout),
                            timeout_s=timeout_s)

    def check(sources: list[Any], layout: Layout, rank: int) -> None:
        if not ours:
            check_membership(sources, layout, rank)
        elif rank == 0:
            print(f"fault entry {CORRUPT_AG_VAR}: AG groups of {', '.join(ours)} from order "
                  f"{megatron_ag_layout(layout).order!r}, membership check skipped", flush=True)

    runner.build_source, runner.check_membership = build, check


def install(faults: Faults) -> None:
    """Wrap the package's functions for `faults` (in this process only)."""
    if faults.signal_at is not None:
        _signal_before(faults)
    if faults.corrupt_sources:
        _corrupt_ag_groups(faults)


def main(argv: list[str] | None = None) -> int:
    from agrs_bench import run

    install(Faults.from_environment())
    return run.main(argv, rank_module=MODULE)


if __name__ == "__main__":
    sys.exit(main())
