"""ag, rs and ag_rs of every buffer and group source, one synchronized iteration per round."""

from __future__ import annotations

import os

import pytest
import torch

from agrs_bench.measure import buffers as bufs
from agrs_bench.config.run_config import parse_sizes
from agrs_bench.groups import BUFFERS, RS_GROUP_KIND, SOURCES
from agrs_bench.measure.kernels import CollectiveKernel
from agrs_bench.vocab import COLLECTIVE_MODES
from agrs_bench.results.schema import size_label

DEFAULT_SIZES = "1MiB,64MiB" if torch.cuda.is_available() else "64KiB,1MiB"
SIZES = parse_sizes(os.environ.get("AGRS_BENCH_SIZES", DEFAULT_SIZES))
ROUNDS = int(os.environ.get("AGRS_BENCH_ROUNDS", "20"))
WARMUP = int(os.environ.get("AGRS_BENCH_WARMUP", "3"))


@pytest.mark.parametrize("size_bytes", SIZES, ids=size_label)
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("buffer", BUFFERS)
@pytest.mark.parametrize("mode", COLLECTIVE_MODES)
def test_collective(benchmark, bench_env, mode, buffer, source, size_bytes):
    env = bench_env
    ranks = env.layout.group_of(RS_GROUP_KIND[buffer], env.info.rank)
    buf = bufs.make_buffer(buffer, size_bytes, bufs.DTYPES[env.dtype], ranks, env.dev.device)
    group = env.sources[source].group
    kernel = CollectiveKernel(env.dev, mode, buf, group(buffer, "ag"), group(buffer, "rs"))

    def one_iteration() -> None:
        pending: list = []
        env.dev.fork(kernel.roles)
        kernel(pending)
        env.dev.join(pending)
        env.dev.synchronize()

    benchmark.group = f"{mode} {buffer} {size_label(size_bytes)}"
    benchmark.extra_info.update(mode=mode, buffer=buffer, source=source, size_bytes=size_bytes,
                                dtype=env.dtype, world_size=env.info.world_size, group_size=len(ranks),
                                backend=env.info.backend)
    # Same rounds on every rank, no calibration; the barrier (CPU) runs untimed before each round.
    benchmark.pedantic(one_iteration, setup=env.dev.sample_start, rounds=ROUNDS, iterations=1,
                       warmup_rounds=WARMUP)
