"""pytest-benchmark suite over agrs_bench's kernels, for CI that keeps pytest-benchmark history.

    torchrun --nproc-per-node=N -m pytest benchmarks/ --benchmark-json=FILE

Every rank runs every test with the same number of rounds (pedantic mode, no calibration: ranks
that calibrated on their own would issue different numbers of collectives and hang). Only rank 0
writes FILE; the numbers are rank 0's own times of one synchronized iteration per round. Without
torchrun (or with one rank) every test is skipped, never left waiting for peers.

Environment: AGRS_BENCH_SIZES (full-buffer sizes, default 64KiB,1MiB on CPU, 1MiB,64MiB on GPU),
AGRS_BENCH_ROUNDS (20), AGRS_BENCH_WARMUP (3), AGRS_BENCH_DTYPE (bf16), AGRS_BENCH_EP (1),
AGRS_BENCH_TIMEOUT_S (120).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from agrs_bench.groups import distributed
from agrs_bench.measure.device import make_handle
from agrs_bench.groups import SOURCES, build_source
from agrs_bench.topology.layout import Layout


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _multi_rank() -> bool:
    return distributed.launched_by_torchrun() and int(os.environ.get("WORLD_SIZE", "1")) >= 2


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's own configure reads the option
def pytest_configure(config: pytest.Config) -> None:
    if _rank() != 0 and getattr(config.option, "benchmark_json", None) is not None:
        config.option.benchmark_json.close()  # argparse opened it; rank 0 alone writes it
        config.option.benchmark_json = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _multi_rank():
        skip = pytest.mark.skip(reason="needs >= 2 ranks: torchrun --nproc-per-node=N -m pytest benchmarks/")
        for item in items:
            item.add_marker(skip)


@dataclass(frozen=True)
class BenchEnv:
    """What every benchmark of the session shares: this rank, its device handle, the groups."""

    info: distributed.DistInfo
    dev: Any
    layout: Layout
    sources: dict[str, Any]
    dtype: str


@pytest.fixture(scope="session")
def bench_env():
    timeout_s = float(os.environ.get("AGRS_BENCH_TIMEOUT_S", "120"))
    info = distributed.init(timeout_s)
    try:
        layout = Layout(world_size=info.world_size, ep=int(os.environ.get("AGRS_BENCH_EP", "1")))
        make_group = distributed.group_maker(timeout_s)
        sources = {name: build_source(name, layout, info.rank, make_group=make_group) for name in SOURCES}
        yield BenchEnv(info, make_handle(info.backend, info.local_rank), layout, sources,
                       os.environ.get("AGRS_BENCH_DTYPE", "bf16"))
    finally:
        distributed.teardown()
