"""ag, rs and ag_rs of every buffer and group source: the engine's samples, as `run` takes them."""

from __future__ import annotations

import os

import pytest
import torch

from agrs_bench.config.run_config import parse_sizes
from agrs_bench.groups import BUFFERS
from agrs_bench.vocab import COLLECTIVE_MODES, size_label
from agrs_bench.vocab import DEFAULT_SOURCES as SOURCES  # megatron_core needs the megatron extra

SIZES = parse_sizes(os.environ.get("AGRS_BENCH_SIZES")
                    or ("1MiB,64MiB" if torch.cuda.is_available() else "64KiB,1MiB"))


class ReplayClock:
    """A pytest-benchmark timer that replays samples the engine took: a round's start reads 0,
    its end reads the round's sample. Load the samples, then run `pedantic` with one iteration
    per round, no warm-up rounds, and as many rounds as samples."""

    __name__ = "engine_samples_max_over_ranks"

    def __init__(self) -> None:
        self._samples: list[float] = []
        self._calls = 0

    def load(self, samples: list[float]) -> None:
        self._samples, self._calls = list(samples), 0

    def __call__(self) -> float:
        index, end = divmod(self._calls, 2)
        self._calls += 1
        return self._samples[index] if end else 0.0


CLOCK = ReplayClock()


@pytest.mark.benchmark(timer=CLOCK)
@pytest.mark.parametrize("size_bytes", SIZES, ids=size_label)
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("buffer", BUFFERS)
@pytest.mark.parametrize("mode", COLLECTIVE_MODES)
def test_collective(benchmark, bench_env, mode, buffer, source, size_bytes):
    cell = bench_env.cell(mode, buffer, source, size_bytes)
    samples = cell["stats"]["data"]
    benchmark.group = f"{mode} {buffer} {size_label(size_bytes)}"
    benchmark.extra_info.update(
        {k: v for k, v in cell["extra_info"].items() if isinstance(v, (int, float, str, bool, list)) or v is None},
        **cell["params"], backend=bench_env.info.backend)
    CLOCK.load(samples)
    benchmark.pedantic(lambda: None, rounds=len(samples), iterations=1, warmup_rounds=0)
