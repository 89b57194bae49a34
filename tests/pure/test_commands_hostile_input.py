"""Hostile input that starts no torch process, in-process: flags, TOML, environment, the files
that run --resume, report, compare and baseline read, run directories, file modes, a full disk.
Every refusal is exit 2 (or ConfigError/SchemaError) with one line naming the file, the field
and the value, and nothing is written."""

import json
import os
import stat

import pytest

from agrs_bench import compare
from agrs_bench.config import run_config
from agrs_bench.config.cli import default_out_dir, parse_run_args
from agrs_bench.errors import ConfigError
from agrs_bench.groups import distributed
from agrs_bench.render import report
from agrs_bench.results import baseline, resume, rundir
from agrs_bench.results import files as results
from tests.support import synthetic


def _cfg(*argv, world=2, **kwargs):
    return parse_run_args(list(argv), world_size=world, backend=kwargs.pop("backend", "gloo"), **kwargs)


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root)
                  for f in files + dirs)


def _exit_2(main, argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1, err
    return err[0]


# --- flags and TOML -------------------------------------------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["--tp", "0"], "--tp 0"), (["--pp", "0"], "--pp 0"), (["--cp", "-1"], "--cp -1"),
    (["--ep", "0"], "--ep 0"), (["--etp", "0"], "--etp 0"),
    (["--sizes", ""], "sizes '' name no size"), (["--step-sizes", ","], "name no size"),
    (["--gemm", ""], "gemm shape ''"), (["--out", ""], "--out '' names no directory"),
    (["--resume", " "], "--resume ' ' names no directory"), (["--backend", "tpu"], "invalid choice: 'tpu'"),
])
def test_bad_flags_name_the_value(argv, needle):
    with pytest.raises(ConfigError, match=None) as info:
        _cfg(*argv)
    assert needle in str(info.value)


def test_zero_parallel_size_in_toml(tmp_path):
    (tmp_path / "c.toml").write_text("tp = 0\n")
    with pytest.raises(ConfigError, match="--tp 0"):
        _cfg("--config", str(tmp_path / "c.toml"))


def test_one_byte_size_is_recorded_as_the_bytes_moved():
    # 2 ranks, 16-byte shards: a 1-byte buffer moves 32 bytes, and says so
    assert _cfg("--sizes", "1,4KiB").sizes_bytes == (32, 4096)
    assert run_config.moved_bytes(1, (2, 4)) == 64 and run_config.moved_bytes(4096, (2,)) == 4096


def test_default_out_names_differ_within_one_second():
    assert len({default_out_dir() for _ in range(50)}) == 50
    assert default_out_dir("run-id").endswith("-run-id")


# --- environment and backend -----------------------------------------------------------------

RENDEZVOUS = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


@pytest.mark.parametrize("env, needle", [
    ({"TORCHELASTIC_RUN_ID": "x"}, "RANK is not set"),
    ({"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_ADDR is not set"),
    ({"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "99999"}, "MASTER_PORT=99999"),
    ({"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "http"}, "MASTER_PORT='http'"),
    ({"RANK": "٠", "WORLD_SIZE": "2", **RENDEZVOUS}, "RANK='٠'"),
    ({"RANK": "0"}, "WORLD_SIZE is not set"),
    ({"RANK": "zero", "WORLD_SIZE": "2"}, "RANK='zero' is not an integer"),
    ({"RANK": "0", "WORLD_SIZE": "2.5"}, "WORLD_SIZE='2.5'"),
    ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "two"}, "LOCAL_WORLD_SIZE='two'"),
    ({"RANK": "3", "WORLD_SIZE": "2"}, "need 0 <= RANK < WORLD_SIZE"),
    ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "4"}, "do not fit"),
])
def test_launch_environment_is_checked(env, needle):
    with pytest.raises(ConfigError) as info:
        distributed.launch_env(env)
    assert needle in str(info.value)


def test_launch_environment_through_main(monkeypatch, capsys):
    from agrs_bench import run
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc")
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert "RANK is not set" in _exit_2(run.main, [], capsys)


def test_no_launch_environment_means_self_launch():
    assert distributed.launch_env({}) is None
    assert distributed.launch_env({"RANK": "1", "WORLD_SIZE": "2", **RENDEZVOUS}).rank == 1


@pytest.mark.parametrize("requested, gpus, ranks, expected", [
    ("auto", 0, 2, "gloo"), ("auto", 2, 2, "nccl"), ("auto", 8, 4, "nccl"), ("gloo", 8, 2, "gloo"),
    ("gloo", 1, 2, "gloo"), ("nccl", 2, 2, "nccl"),
    ("auto", 1, 2, "2 ranks on this node but 1 GPU(s) found"),
    ("auto", 3, 4, "4 ranks on this node but 3 GPU(s) found"),
    ("nccl", 0, 2, "--backend nccl: no GPU found"),
])
def test_backend_decision(requested, gpus, ranks, expected):
    if expected in ("gloo", "nccl"):
        assert run_config.decide_backend(requested, gpus, ranks) == expected
    else:
        with pytest.raises(ConfigError) as info:
            run_config.decide_backend(requested, gpus, ranks)
        assert expected in str(info.value) and ("--backend gloo" in str(info.value) or gpus == 0)


def test_one_gpu_host_refuses_self_launch(monkeypatch, tmp_path, capsys):
    """A one-GPU host, simulated: self-launch refuses unless --backend gloo, and writes nothing."""
    from agrs_bench import run
    monkeypatch.setattr(distributed, "visible_gpus", lambda: 1)
    for name in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    line = _exit_2(run.main, ["--out", str(tmp_path / "r"), "--sizes", "4KiB"], capsys)
    assert "2 ranks on this node but 1 GPU(s) found" in line and "--backend gloo" in line
    assert _tree(tmp_path) == []
    cfg = parse_run_args(["--backend", "gloo"], world_size=2, gpus=1, local_world_size=2)
    assert cfg.backend == "gloo"


def test_hidden_devices_mean_cpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert distributed.visible_gpus() == 0
    assert parse_run_args([], world_size=2, gpus=distributed.visible_gpus()).backend == "gloo"


# --- documents read by report / compare / baseline ----------------------------------------------

def _doc(**changes):
    doc = synthetic.launch()
    for path, value in changes.items():
        target = doc
        keys = path.split("/")
        for key in keys[:-1]:
            target = target[int(key) if isinstance(target, list) else key]
        target[int(keys[-1]) if isinstance(target, list) else keys[-1]] = value
    return doc


BAD_DOCS = {
    "NaN sample": ({"benchmarks/0/stats/data/0": float("nan")}, "stats.data[0] = NaN"),
    "zero sample": ({"benchmarks/0/stats/data/1": 0.0}, "stats.data[1] = 0.0"),
    "negative sample": ({"benchmarks/2/stats/data/0": -1e-3}, "benchmarks[2].stats.data[0] = -0.001"),
    "infinite median": ({"benchmarks/0/stats/median": float("inf")}, "stats.median = Infinity"),
    "size not a number": ({"benchmarks/0/params/size_bytes": "abc"}, 'params.size_bytes = "abc"'),
    "machine_info a list": ({"machine_info": []}, "machine_info = [] is not an object"),
    "extra_info a list": ({"benchmarks/0/extra_info": []}, "extra_info = [] is not an object"),
    "missing_cells null": ({"agrs_bench/missing_cells": None}, "agrs_bench.missing_cells = null"),
    "complete a string": ({"agrs_bench/complete": "yes"}, 'agrs_bench.complete = "yes"'),
    "interval not a pair": ({"benchmarks/0/extra_info/busbw_gbps_ci": [1]}, "busbw_gbps_ci = [1]"),
    "rounds a float": ({"benchmarks/0/stats/rounds": 2.5}, "stats.rounds = 2.5"),
    "env a string": ({"machine_info/env": "x"}, 'machine_info.env = "x"'),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCS))
def test_documents_are_typed(case, tmp_path, capsys):
    changes, needle = BAD_DOCS[case]
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(_doc(**changes)))
    good = tmp_path / "good"
    good.mkdir()
    (good / "results.json").write_text(json.dumps(synthetic.launch(missing=())))
    before = _tree(tmp_path)
    for main, argv in ((report.main, [str(run)]),
                       (compare.main, [str(good), str(run), "--out", str(tmp_path / "cmp")]),
                       (compare.main, [str(run), str(good), "--out", str(tmp_path / "cmp")]),
                       (baseline.main, [str(run), "x", "--dir", str(tmp_path / "b")])):
        line = _exit_2(main, argv, capsys)
        assert needle in line and "results.json" in line, line
        assert _tree(tmp_path) == before


def test_export_into_a_missing_folder_writes_nothing(tmp_path, capsys):
    for seed, side in enumerate(("a", "b")):
        (tmp_path / side).mkdir()
        (tmp_path / side / "results.json").write_text(json.dumps(synthetic.launch(seed=seed)))
    before = _tree(tmp_path)
    line = _exit_2(compare.main, [str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp"),
                                  "--export-github-benchmark", str(tmp_path / "no" / "x.json")], capsys)
    assert "does not exist" in line and _tree(tmp_path) == before


# --- resume files ------------------------------------------------------------------------------

def _old_run(tmp_path, lines=None, config=None):
    cfg = _cfg("--sizes", "4KiB,8KiB", "--modes", "ag", "--buffers", "dense", "--sources", "single_comm",
               "--iters", "3", "--out", str(tmp_path / "old"))
    lock = rundir.prepare_run_dir(cfg)
    lock.release()
    if config is not None:
        (tmp_path / "old" / "config.json").write_text(config)
    if lines is None:
        lines = [json.dumps(results.make_benchmark(dict(c.params(), world_size=2, group_size=2), [1e-3, 2e-3],
                                                   1, {}, {}))
                 for c in cfg.cells()]
    (tmp_path / "old" / "cells.jsonl").write_bytes(b"".join(
        (line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
    return tmp_path / "old"


def _cells(tmp_path):
    cfg = _cfg("--sizes", "4KiB,8KiB", "--modes", "ag", "--buffers", "dense", "--sources", "single_comm")
    return [json.dumps(results.make_benchmark(dict(c.params(), world_size=2, group_size=2), [1e-3], 1, {}, {}))
            for c in cfg.cells()]


def _resume(run_dir, *argv):
    return parse_run_args(["--resume", str(run_dir), *argv], world_size=2, backend="gloo",
                          stored=resume.stored_for_flags)


def test_resume_alone_restores_the_configuration(tmp_path):
    old = _old_run(tmp_path)
    cfg = _resume(old)
    assert cfg.sizes_bytes == (4096, 8192) and cfg.modes == ("ag",) and cfg.num_samples == 3
    assert cfg.sources == ("single_comm",) and cfg.buffers == ("dense",)
    assert _resume(old, "--iters", "3").num_samples == 3  # given and equal: fine
    with pytest.raises(ConfigError, match=r"num_samples was 3, now 9"):
        resume.finished_cells(_resume(old, "--iters", "9"))


@pytest.mark.parametrize("lines, needle", [
    (["{}"], "line 1: cell has no 'name'"),
    (["null"], "line 1: cell = null is not an object"),
    ([b"\xff\xfe{}"], "line 1: not UTF-8 text"),
    (["CELL_WITHOUT_SIZE"], "line 1: cell.params lacks 'size_bytes'"),
])
def test_resume_refuses_lines_that_are_not_cells(tmp_path, lines, needle):
    if lines == ["CELL_WITHOUT_SIZE"]:
        cell = json.loads(_cells(tmp_path)[0])
        del cell["params"]["size_bytes"]
        lines = [json.dumps(cell)]
    old = _old_run(tmp_path, lines=lines)
    with pytest.raises(ConfigError) as info:
        resume.finished_cells(_resume(old))
    assert needle in str(info.value) and "cells.jsonl" in str(info.value)


def test_damaged_line_is_reported_and_later_cells_kept(tmp_path, capsys):
    first, second = _cells(tmp_path)
    old = _old_run(tmp_path, lines=[first, '{"name": "ag-dens', second])
    done = resume.finished_cells(_resume(old))
    assert len(done) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cells.jsonl line 2: damaged" in err[0]


@pytest.mark.parametrize("config, needle", [
    ("[]", "top level is list"), ("{}", "no 'sizes_bytes' key"), ("", "file is empty"),
    ('{"sizes_bytes": "x"}', 'sizes_bytes = "x"'),
])
def test_resume_refuses_a_broken_config(tmp_path, config, needle, capsys):
    from agrs_bench import run
    old = _old_run(tmp_path, config=config)
    with pytest.raises(ConfigError) as info:
        _resume(old)
    assert needle in str(info.value) and "config.json" in str(info.value)
    assert needle in _exit_2(run.main, ["--resume", str(old)], capsys)


# --- run directories -------------------------------------------------------------------------

def test_a_run_directory_is_taken_once(tmp_path):
    cfg = _cfg("--out", str(tmp_path / "r"))
    lock = rundir.take_run_dir(cfg)
    with pytest.raises(ConfigError, match="already holds a run"):
        rundir.take_run_dir(cfg)
    resumed = _cfg("--resume", str(tmp_path / "r"))
    with pytest.raises(ConfigError, match="in use by another run"):
        rundir.take_run_dir(resumed)
    lock.release()
    rundir.take_run_dir(resumed).release()  # free again once the first run ended


@pytest.mark.parametrize("name", ["report.md", "results.csv", "plots"])
def test_a_users_files_are_never_replaced(tmp_path, name):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / name).write_text("mine")
    with pytest.raises(ConfigError, match=f"already holds {name}"):
        rundir.check_out_dir(str(tmp_path / "mine"))
    rundir.check_out_dir(str(tmp_path))  # other files are fine


def test_out_dir_names_that_cannot_work(tmp_path):
    os.symlink(tmp_path / "nowhere", tmp_path / "link")
    with pytest.raises(ConfigError, match="dangling symbolic link"):
        rundir.check_out_dir(str(tmp_path / "link"))
    with pytest.raises(ConfigError, match="300 bytes long"):
        rundir.check_out_dir(str(tmp_path / ("x" * 300)))


def test_bad_input_found_by_the_ranks_leaves_no_directory(tmp_path):
    lock = rundir.take_run_dir(_cfg("--out", str(tmp_path / "r")))
    lock.release(remove_if_unused=True)
    assert _tree(tmp_path) == []


# --- file modes and a full disk ------------------------------------------------------------------

def test_final_files_get_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        results.write_atomic(str(tmp_path / "a.json"), "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o640


@pytest.fixture
def tiny_disk(tmpfs):
    return tmpfs("64k")


def test_full_disk_names_the_cell_and_salvage_says_one_line(tiny_disk, capsys):
    run_dir = tiny_disk / "run"
    cfg = _cfg("--out", str(run_dir), "--sizes", "4KiB", "--modes", "ag", "--buffers", "dense",
               "--sources", "single_comm")
    rundir.prepare_run_dir(cfg).release()
    bench = results.make_benchmark(dict(cfg.cells()[0].params(), world_size=2, group_size=2), [1e-3] * 200, 1, {}, {})
    fd = os.open(tiny_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk, but for less than one cell needs
        while True:
            os.write(fd, b"x" * 1024)
    except OSError:
        pass
    finally:
        os.close(fd)
    with pytest.raises(OSError) as info:
        for _ in range(100):
            results.append_cell(str(run_dir), bench)
    assert "cannot append cell agrs[ag-dense-single_comm-4KiB]" in str(info.value)
    from agrs_bench.launch.self_launch import salvage
    salvage(str(run_dir), "agrs_bench.run", quiet=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not rebuild" in err[0] and "No space left" in err[0], err
    assert not (run_dir / "results.json").exists()
