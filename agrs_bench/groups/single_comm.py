"""`single_comm`: no all-gather groups. AG and RS share the DP communicator, so NCCL runs them
one after the other whatever streams issue them: the baseline every other source is judged by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agrs_bench.topology.layout import Layout


@dataclass(frozen=True)
class SingleCommSource:
    dp_cp: Any
    expt_dp: Any
    name: str = "single_comm"

    def group(self, buffer: str, op: str) -> Any:
        return self.dp_cp if buffer == "dense" else self.expt_dp


def build(layout: Layout, rank: int, make_group) -> SingleCommSource:
    return SingleCommSource(
        dp_cp=make_group(layout.dense("dp_cp"), rank, "rs", "single_comm/dp_cp"),
        expt_dp=make_group(layout.expert("expt_dp"), rank, "rs", "single_comm/expt_dp"),
    )
