"""Pure tests of flag parsing into RunConfig."""

import pytest

from agrs_bench.config.cli import parse_run_args
from agrs_bench.config.run_config import parse_size, parse_sizes
from agrs_bench.errors import ConfigError


def test_sizes_list_and_range():
    assert parse_sizes("1MiB,64MiB") == (1 << 20, 64 << 20)
    assert parse_sizes("1MiB:1GiB:x4") == tuple((1 << 20) * 4**i for i in range(6))
    assert parse_sizes("1KiB:10KiB:x2") == (1024, 2048, 4096, 8192)
    assert parse_size("512") == 512 and parse_size("1GB") == 10**9


@pytest.mark.parametrize("text", ["", "abc", "0", "-1MiB", "1XB", "1MiB:1KiB:x2", "1MiB:4MiB", "1MiB:4MiB:x1", "2TiB"])
def test_bad_sizes(text):
    with pytest.raises(ConfigError):
        parse_sizes(text)


def test_defaults_follow_the_backend():
    gpu = parse_run_args([], world_size=4, backend="nccl")
    cpu = parse_run_args([], world_size=2, backend="gloo")
    assert gpu.sizes_bytes[0] == 1 << 20 and gpu.sizes_bytes[-1] == 1 << 30
    assert max(cpu.sizes_bytes) <= 1 << 20
    assert gpu.layout.ep == 2 and cpu.layout.ep == 1  # ep=2 from 4 ranks on
    assert set(gpu.sources) == {"single_comm", "global_state", "pg_collection"}
    assert set(gpu.modes) >= {"ag", "rs", "ag_rs"}


@pytest.mark.parametrize("argv, needle", [
    (["--modes", "ag,bogus"], "'bogus'"),
    (["--sources", "nope"], "'nope'"),
    (["--buffers", "sparse"], "'sparse'"),
    (["--dtype", "fp8"], "'fp8'"),
    (["--iters", "0"], "--iters must be >= 1, got 0"),
    (["--layers", "0"], "--layers must be >= 1, got 0"),
    (["--warmup", "-1"], "--warmup and --ops-per-sample must be >= 0, got -1"),
    (["--world-size", "3"], "--world-size 3"),
    (["--tp", "3"], "tp*cp*pp"),
    (["--gemm", "12x12"], "'12x12'"),
    (["--timeout", "0"], "got 0"),
    (["--rank-offset", "2"], "--rank-offset 2"),
    (["--frobnicate"], "--frobnicate"),
])
def test_bad_flags_name_the_value(argv, needle):
    with pytest.raises(ConfigError) as info:
        parse_run_args(argv, world_size=4, backend="gloo")
    assert needle in str(info.value)


def test_cells_cover_modes_buffers_sources_sizes():
    cfg = parse_run_args(["--sizes", "1KiB,2KiB", "--modes", "ag,ag_rs,fsdp_step"], world_size=2, backend="gloo")
    cells = cfg.cells()
    collective = [c for c in cells if c.mode != "fsdp_step"]
    assert len(collective) == 2 * 2 * 3 * 2
    assert len([c for c in cells if c.mode == "fsdp_step"]) == 3


@pytest.mark.parametrize("world, argv, ep", [
    (4, [], 2), (8, ["--tp", "2"], 2), (4, ["--tp", "2", "--buffers", "dense"], 1),
    (6, ["--tp", "2"], 1), (8, ["--tp", "2", "--pp", "2"], 1), (2, [], 1),
])
def test_default_ep_keeps_expert_groups_of_two(world, argv, ep):
    cfg = parse_run_args(argv, world_size=world, backend="nccl")
    assert cfg.layout.ep == ep
    assert cfg.layout.expert_dp >= 2


@pytest.mark.parametrize("world, argv, needle", [
    (2, ["--tp", "2"], "buffer 'dense': its dp_cp group has 1 rank"),
    (4, ["--ep", "4"], "buffer 'expert': its expt_dp group has 1 rank"),
    (4, ["--timeout", "inf"], "at most a day, got inf"),
    (4, ["--timeout", "nan"], "got nan"),
    (4, ["--sample-ms", "nan"], "finite number > 0 ms, got nan"),
])
def test_layouts_and_numbers_that_cannot_measure(world, argv, needle):
    with pytest.raises(ConfigError) as info:
        parse_run_args(argv, world_size=world, backend="gloo")
    assert needle in str(info.value)
