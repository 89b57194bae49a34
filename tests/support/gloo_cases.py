"""A family of cases on one world size in ONE set of gloo ranks (tests/support/gloo_harness.py).

Starting ranks is most of a gloo test's time, so `run_gloo_cases` runs every case in turn on every
rank, keeps a case's exception as that case's result (so one bad case hides no other), and hands
each test its own case, which fails with the ranks' tracebacks if the case raised on any of them.
"""

from __future__ import annotations

import datetime
import traceback
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

from tests.support.gloo_harness import free_port, run_gloo


class Case(NamedTuple):
    """One case of a family run in one set of ranks: `fn(rank, world_size, *args)` under `key`."""

    key: Hashable
    fn: Callable
    args: tuple = ()


# How long a rank waits for the others to finish a case: past gloo's own 60 s timeout, so a rank
# stuck in a collective whose peer raised has ended it (with an error) by then.
CASE_SYNC_S = 120.0


def _every_case(rank: int, world_size: int, store_port: int, cases: Sequence[Case]) -> dict:
    """Each case in turn; after each, the ranks compare on a store of their own whether it raised.
    Raised on every rank or on none: they are still in step, go on. Raised on some only (the others
    may have waited in a collective it never joined): the ranks are out of step, so the cases left
    are reported as not run rather than run against the wrong peers."""
    import torch.distributed as dist

    store = dist.TCPStore("127.0.0.1", store_port, world_size, is_master=rank == 0,
                          timeout=datetime.timedelta(seconds=CASE_SYNC_S))
    outcomes: dict = {}
    for index, case in enumerate(cases):
        try:
            outcomes[case.key] = ("ok", case.fn(rank, world_size, *case.args))
        except Exception as err:  # this case's result; the next case still runs
            outcomes[case.key] = ("error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
        try:
            store.set(f"{index}/{rank}", outcomes[case.key][0])
            store.wait([f"{index}/{peer}" for peer in range(world_size)])
            statuses = [store.get(f"{index}/{peer}").decode() for peer in range(world_size)]
            out_of_step = [peer for peer, status in enumerate(statuses) if status == "error"] \
                if len(set(statuses)) > 1 else []
        except Exception as err:  # a peer never finished the case
            out_of_step = [f"a peer ({type(err).__name__}: {err})"]
        if out_of_step:
            for later in cases[index + 1:]:
                outcomes[later.key] = ("error", f"not run: case {case.key!r} raised on rank(s) {out_of_step} only")
            return outcomes
    dist.barrier()  # rank 0 serves the store: it stays until every rank has read it
    return outcomes


class CaseResults:
    """What every rank returned for each case; `results[key]` is the list over ranks, or an
    AssertionError naming the ranks where that case raised, with their tracebacks."""

    def __init__(self, per_rank: list[dict]):
        self._per_rank = per_rank

    def __getitem__(self, key: Hashable) -> list[Any]:
        outcomes = [by_case[key] for by_case in self._per_rank]
        errors = [f"rank {rank}: {value}" for rank, (status, value) in enumerate(outcomes) if status == "error"]
        if errors:
            raise AssertionError(f"case {key!r} raised\n" + "\n".join(errors))
        return [value for _, value in outcomes]


def run_gloo_cases(world_size: int, cases: Sequence[Case], timeout_s_per_case: float = 20.0) -> CaseResults:
    """Every case in one set of `world_size` gloo ranks, in order (every rank runs the same cases,
    so the collectives and new groups of each case line up across ranks)."""
    keys = [case.key for case in cases]
    assert len(set(keys)) == len(keys), f"case keys repeat: {keys}"
    per_rank = run_gloo(world_size, _every_case, free_port(), list(cases),
                        timeout_s=CASE_SYNC_S + 60.0 + timeout_s_per_case * len(cases))
    return CaseResults(per_rank)
