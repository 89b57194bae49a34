"""Pure pieces of fault handling: TOML config, memory estimate, resume rule, flight recorder."""

import json

import pytest

from agrs_bench.config.cli import parse_run_args
from agrs_bench.errors import ConfigError
from agrs_bench.groups import distributed
from agrs_bench.measure import preflight
from agrs_bench.measure.runner import groups_span_nodes
from agrs_bench.results import resume


def _cfg(*argv, world=2):
    return parse_run_args(list(argv), world_size=world, backend="gloo")


def test_toml_config_sets_flags_and_flags_win(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('sizes = "4KiB,8KiB"\nmodes = ["ag", "rs"]\niters = 7\nno-check = true\n'
                    'timeout = 30\n')
    cfg = _cfg("--config", str(path), "--iters", "3")
    assert cfg.sizes_bytes == (4096, 8192) and cfg.modes == ("ag", "rs")
    assert cfg.num_samples == 3 and cfg.check is False and cfg.timeout_s == 30.0


@pytest.mark.parametrize("text, needle", [
    ("iters = 1.5\n", "'iters' = 1.5 is not an int"),
    ("no-check = 1\n", "'no-check' = 1 is not a bool"),
    ("config = 'x.toml'\n", "unknown key 'config'"),
    ("[sizes]\n", "'sizes' = {} is not a str"),
])
def test_toml_config_names_the_key(tmp_path, text, needle):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        _cfg("--config", str(path))
    assert needle in str(info.value) and str(path) in str(info.value)


def test_memory_estimate_grows_with_size_and_check():
    small, large = _cfg("--sizes", "1MiB"), _cfg("--sizes", "1GiB")
    assert preflight.needed_bytes(large)[0][0] > 1000 * preflight.needed_bytes(small)[0][0]
    unchecked = _cfg("--sizes", "1GiB", "--no-check")
    need = preflight.needed_bytes(unchecked)[0][0]
    assert 2 * 1024**3 < need < 4 * 1024**3  # 2S + 2S/n with n = 2: 3 GiB
    with pytest.raises(ConfigError, match="--sizes 1GiB needs about 3.0 GiB per rank"):
        preflight.check_memory(unchecked, 1024**3, "free on cuda:0")
    preflight.check_memory(unchecked, 4 * 1024**3, "free on cuda:0")


def test_resume_names_the_first_difference(tmp_path):
    old = _cfg("--sizes", "4KiB", "--out", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(old.record()))
    same_but_timeout = _cfg("--sizes", "4KiB", "--resume", str(tmp_path), "--timeout", "5")
    assert resume.finished_cells(same_but_timeout) == []
    with pytest.raises(ConfigError, match=r"num_samples was 6, now 9"):
        resume.finished_cells(_cfg("--sizes", "4KiB", "--resume", str(tmp_path), "--iters", "9"))


def test_nccl_fault_env_keeps_the_users_settings(tmp_path):
    env = distributed.nccl_fault_env(str(tmp_path), {"TORCH_NCCL_TRACE_BUFFER_SIZE": "5"})
    assert "TORCH_NCCL_TRACE_BUFFER_SIZE" not in env
    assert env["TORCH_NCCL_DUMP_ON_TIMEOUT"] == "1" and env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "2"
    assert env["NCCL_NVLS_ENABLE"] == "0"
    assert "NCCL_NVLS_ENABLE" not in distributed.nccl_fault_env(str(tmp_path), {"NCCL_NVLS_ENABLE": "1"})
    assert env["TORCH_FR_DUMP_TEMP_FILE"] == env["TORCH_NCCL_DEBUG_INFO_TEMP_FILE"] \
        == str(tmp_path / "flight_recorder" / "rank_")


def test_groups_span_nodes():
    nodes = ["a:0", "a:0", "b:1", "b:1"]
    # tp=2 (and etp=2): the DP and expert-DP groups are [0,2] [1,3], across the two nodes; with dp
    # first in the order they are [0,1] [2,3], each on one node.
    assert groups_span_nodes(_cfg("--tp", "2", "--ep", "1", world=4), nodes) == {"dense": True, "expert": True}
    assert groups_span_nodes(_cfg("--tp", "2", "--ep", "1", "--order", "dp-tp", world=4), nodes) \
        == {"dense": False, "expert": False}


def test_partial_last_line_is_dropped_before_appending(tmp_path):
    from agrs_bench.results import files as results
    cell = json.dumps(results.make_benchmark(
        {"mode": "ag", "buffer": "dense", "source": "single_comm", "size_bytes": 4096, "dtype": "bf16",
         "world_size": 2, "group_size": 2}, [1e-3], 1, {}, {}))
    (tmp_path / "cells.jsonl").write_text(cell + '\n{"b": ')
    assert len(results.read_cells(str(tmp_path))) == 1
    results.drop_partial_line(str(tmp_path))
    assert (tmp_path / "cells.jsonl").read_text() == cell + "\n"
