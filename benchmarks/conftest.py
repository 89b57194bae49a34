"""pytest-benchmark suite over agrs_bench's timing engine, for CI that keeps pytest-benchmark history.

    torchrun --nproc-per-node=N -m pytest benchmarks/ --benchmark-json=FILE

The numbers are `agrs_bench.run`'s: the first test of a (buffer, size) runs that comparison
through the same engine (every source's ag, rs and ag_rs interleaved, samples held, max over
ranks), and each test hands its cell's samples to pytest-benchmark through a replaying timer (the
`timer` option of the `benchmark` marker, public API; see test_collectives.ReplayClock). Every
rank runs every test in the same order; only rank 0 writes FILE. Without torchrun (or with one
rank) every test is skipped, never left waiting.

Environment: AGRS_BENCH_SIZES (full-buffer sizes, default 64KiB,1MiB on CPU, 1MiB,64MiB on GPU),
AGRS_BENCH_ROUNDS (20), AGRS_BENCH_WARMUP (3), AGRS_BENCH_DTYPE (bf16), AGRS_BENCH_EP (1),
AGRS_BENCH_TIMEOUT_S (120), AGRS_BENCH_SAMPLE_MS (run's default), AGRS_BENCH_REFERENCE (1).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from agrs_bench.config.run_config import DEFAULT_SAMPLE_MS, RunConfig
from agrs_bench.groups import distributed
from agrs_bench.measure import cells as cellmod
from agrs_bench.measure import runner
from agrs_bench.results import files as results
from agrs_bench.topology.layout import Layout
from agrs_bench.vocab import BUFFERS, COLLECTIVE_MODES
from agrs_bench.vocab import DEFAULT_SOURCES as SOURCES  # megatron_core needs the megatron extra


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _multi_rank() -> bool:
    return distributed.launched_by_torchrun() and int(os.environ.get("WORLD_SIZE", "1")) >= 2


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's own configure reads the option
def pytest_configure(config: pytest.Config) -> None:
    if _rank() != 0 and getattr(config.option, "benchmark_json", None) is not None:
        # Rank 0 alone writes FILE. The option is an open file before pytest-benchmark 5.3.1 and
        # a path from then on: drop it either way, never touch it (the open file just goes away).
        config.option.benchmark_json = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _multi_rank():
        skip = pytest.mark.skip(reason="needs >= 2 ranks: torchrun --nproc-per-node=N -m pytest benchmarks/")
        for item in items:
            item.add_marker(skip)


@dataclass
class BenchEnv:
    """What every benchmark of the session shares: the run configuration, this rank's context,
    and the cells measured so far (one comparison at a time, on first use)."""

    info: distributed.DistInfo
    ctx: cellmod.Context
    cells: dict[tuple, dict[str, Any]] = field(default_factory=dict)

    def cell(self, mode: str, buffer: str, source: str, size_bytes: int) -> dict[str, Any]:
        """The benchmark `run` would write for this cell (measuring its comparison if needed)."""
        key = (mode, buffer, source, size_bytes)
        if key not in self.cells:
            cfg = dataclasses.replace(self.ctx.cfg, sizes_bytes=(size_bytes,))
            wanted = [c for c in cfg.cells() if c.buffer == buffer]
            for comparison, group in cellmod.group_comparisons(wanted):
                benches = runner.benchmarks_of(self.ctx, cellmod.measure_comparison(self.ctx, comparison, group))
                results.derive(benches)  # overlap efficiency and speedup, paired, as in results.json
                for bench in benches:
                    p = bench["params"]
                    self.cells[(p["mode"], p["buffer"], p["source"], p["size_bytes"])] = bench
        return self.cells[key]


@pytest.fixture(scope="session")
def bench_env():
    timeout_s = float(os.environ.get("AGRS_BENCH_TIMEOUT_S", "120"))
    info = distributed.init(timeout_s)
    try:
        cfg = RunConfig(
            layout=Layout(world_size=info.world_size, ep=int(os.environ.get("AGRS_BENCH_EP", "1"))),
            backend=info.backend, sizes_bytes=(1,),  # each test names its own size
            dtype=os.environ.get("AGRS_BENCH_DTYPE", "bf16"), modes=COLLECTIVE_MODES, buffers=BUFFERS,
            sources=SOURCES, num_warmup=int(os.environ.get("AGRS_BENCH_WARMUP", "3")),
            num_samples=int(os.environ.get("AGRS_BENCH_ROUNDS", "20")),
            target_sample_ms=float(os.environ.get("AGRS_BENCH_SAMPLE_MS", DEFAULT_SAMPLE_MS)),
            timeout_s=timeout_s, telemetry=False, reference=os.environ.get("AGRS_BENCH_REFERENCE", "1") != "0")
        yield BenchEnv(info, runner.context(cfg, info, runner.Fixtures(cfg, info)))
    finally:
        distributed.teardown()
