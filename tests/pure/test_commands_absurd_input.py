"""Numbers that overflow, depth that recurses, sizes and counts no run can finish, digits that are
not 0-9, names that would split a line: one line, exit 2, decided before any work, in well under
10 s. The gate's exit 1 stays reserved for a regression."""

import errno
import json
import math
import os
import time

import pytest

from agrs_bench import __main__ as entry
from agrs_bench.config.cli import parse_run_args
from agrs_bench.errors import ConfigError
from agrs_bench.gate import verdicts
from agrs_bench.results import files as results
from agrs_bench.results import machine, rundir, schema
from tests.support import synthetic
from tests.support.launch import FAST


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root)
                  for f in files + dirs)


def _exit_2(argv, capsys, monkeypatch, tmp_path, env=None):
    monkeypatch.chdir(tmp_path)
    for name in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    before, started = _tree(tmp_path), time.monotonic()
    with pytest.raises(SystemExit) as info:
        entry.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1, err
    assert time.monotonic() - started < 10 and _tree(tmp_path) == before
    return err[0]


def _write_run(folder, doc):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(doc))
    return str(folder)


def _with_sample(doc, value):
    doc = json.loads(json.dumps(doc))
    doc["benchmarks"][0]["stats"]["data"][0] = value
    return doc


@pytest.mark.parametrize("value", [1e308, 1e300, 86401.0, 1e-300, 5e-324])
def test_absurd_samples_are_bad_input_not_a_regression(value, tmp_path, capsys, monkeypatch):
    base = _write_run(tmp_path / "base", synthetic.launch(seed=1))
    head = _write_run(tmp_path / "head", _with_sample(synthetic.launch(seed=2), value))
    line = _exit_2(["compare", base, head, "--no-plots", "--out", "cmp"], capsys, monkeypatch, tmp_path)
    assert "stats.data[0]" in line


def test_gate_interval_never_overflows():
    assert verdicts._exp(800.0) == math.inf and verdicts._exp(1.0) == math.e


@pytest.mark.parametrize("text, needle", ids=lambda v: str(v)[:20], argvalues=[
    ("sizes = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("a = " + "{b = " * 3000 + "1" + "}" * 3000 + "\n", "nested too deeply"),
    ("iters = " + "9" * 5000 + "\n", "not valid TOML"),
    ("iters = 1000000000\n", "--iters 1000000000"),
    ("sample-ms = 1e9\ntimeout = 5.0\n", "outlast --timeout"),
    ("world-size = 1000000000000000000\n", "--world-size 1000000000000000000"),
])
def test_toml_that_recurses_or_overflows(text, needle, tmp_path, capsys, monkeypatch):
    (tmp_path / "c.toml").write_text(text)
    line = _exit_2(["run", "--out", "r", "--config", "c.toml"], capsys, monkeypatch, tmp_path)
    assert needle in line, line


@pytest.mark.parametrize("text, needle", ids=lambda v: str(v)[:20], argvalues=[
    ('{"a": ' + "9" * 5000 + "}", "not valid JSON"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
])
def test_json_that_recurses_or_overflows(text, needle, tmp_path, capsys, monkeypatch):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "results.json").write_text(text)
    assert needle in _exit_2(["report", "r"], capsys, monkeypatch, tmp_path)


@pytest.mark.parametrize("argv, needle", [
    (["--world-size", "1000000000000000000"], "at most 65536"),
    (["--world-size", "10000000", "--tp", "2", "--pp", "2", "--ep", "2"], "at most 65536"),
    (["--world-size", "65537"], "at most 65536"),
    (["--world-size", "9" * 5000], "not an integer"),
    (["--world-size", "8", "--rank-offset", str(10**18)], "rank-offset"),
    (["--world-size", "٨"], "'٨' is not an integer"),
])
def test_topology_sizes_refused_before_any_work(argv, needle, tmp_path, capsys, monkeypatch):
    assert needle in _exit_2(["topology", *argv], capsys, monkeypatch, tmp_path)


@pytest.mark.parametrize("argv, needle", [
    (["--ops-per-sample", "0", "--sample-ms", "1e9", "--timeout", "5"], "outlast --timeout 5"),
    (["--ops-per-sample", "0", "--sample-ms", "5000", "--timeout", "5"], "outlast --timeout 5"),
    (["--iters", str(10**9)], "--iters 1000000000 is more than"),
    (["--ops-per-sample", "0", "--iters", "9000", "--sample-ms", "1", "--timeout", "5"], "more than --timeout 5"),
    (["--iters", "99999", "--ops-per-sample", "100000", "--timeout", "60"], "--ops-per-sample 100000"),
    (["--warmup", str(10**8)], "--warmup 100000000"),
    (["--ops-per-sample", str(10**6)], "--ops-per-sample 1000000"),
    (["--layers", str(10**6)], "--layers 1000000"),
    (["--iters", "٤"], "'٤' is not an integer"),
    (["--tp", "٢"], "'٢' is not an integer"),
    (["--sizes", "٤KiB"], "'٤KiB'"),
    (["--sizes", "4KiB:٨KiB:x2"], "'٨KiB'"),
    (["--gemm", "٤x4x4"], "'٤x4x4'"),
    (["--sample-ms", "١.٥"], "'١.٥' is not a number"),
    (["--ag-nccl-options", "max_ctas=٤"], "'٤'"),
    (["--sizes", "9" * 5000], "is not a number"),
    (["--gemm", "1x1x" + "9" * 5000], "gemm shape"),
    (["--gemm", "100000x100000x100000"], "--gemm 100000x100000x100000 needs about"),
])
def test_run_flags_no_run_can_finish(argv, needle, tmp_path, capsys, monkeypatch):
    line = _exit_2(["run", "--out", "r", *FAST, *argv], capsys, monkeypatch, tmp_path)
    assert needle in line, line


def test_resume_of_a_huge_recorded_world(tmp_path, capsys, monkeypatch):
    record = parse_run_args([*FAST], world_size=2, backend="gloo").record()
    record["layout"].update(world_size=10**7, dp=10**7, expert_dp=10**7)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(record))
    assert "the run had 10000000 ranks" in _exit_2(["run", "--resume", "old"], capsys, monkeypatch, tmp_path)
    with pytest.raises(ConfigError, match="at most 65536"):  # the same record under torchrun
        parse_run_args(["--resume", str(tmp_path / "old")], world_size=10**7, backend="gloo",
                       stored=lambda d: schema.load_config(os.path.join(d, "config.json")))


@pytest.mark.parametrize("value", ["abc\n# injected heading", "x" * 10_000, "a b", "\x1b[31mred"])
def test_commit_variable_is_a_name(value, tmp_path, capsys, monkeypatch):
    line = _exit_2(["run", "--out", "r", *FAST], capsys, monkeypatch, tmp_path, env={"AGRS_BENCH_COMMIT": value})
    assert "AGRS_BENCH_COMMIT" in line
    info = machine.commit_info(root=str(tmp_path), environ={"AGRS_BENCH_COMMIT": value})
    assert "\n" not in info["id"] and len(info["id"]) <= 100


@pytest.mark.parametrize("flag", ["--out", "--resume"])
def test_control_characters_in_run_directories(flag, tmp_path, capsys, monkeypatch):
    assert "control character" in _exit_2(["run", flag, "a\nb", *FAST], capsys, monkeypatch, tmp_path)


def test_over_long_out_leaves_no_folders(tmp_path, capsys, monkeypatch):
    out = "/".join(["d" * 200] * 25)
    assert "bytes long" in _exit_2(["run", "--out", out, *FAST], capsys, monkeypatch, tmp_path)


def test_a_run_directory_that_cannot_be_made_leaves_no_parents(tmp_path, monkeypatch):
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777, **kwargs):
        if str(path).endswith("leaf"):  # the disk fills after the parents were made
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_mkdir(path, mode, **kwargs)

    cfg = parse_run_args(["--out", str(tmp_path / "a" / "b" / "leaf"), *FAST], world_size=2, backend="gloo")
    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(ConfigError, match="No space left"):
        rundir.take_run_dir(cfg)
    assert os.listdir(tmp_path) == []


def test_proc_is_not_blamed_as_read_only(tmp_path, capsys, monkeypatch):
    line = _exit_2(["run", "--out", "/proc/agrs-x", *FAST], capsys, monkeypatch, tmp_path)
    assert "cannot be created" in line and "not writable" not in line


def test_stop_after_the_last_cell_is_not_called_incomplete(tmp_path):
    assert "no cell had finished" in rundir.stopped_line(str(tmp_path), "SIGINT")
    doc = synthetic.launch()
    (tmp_path / "results.json").write_text(json.dumps(doc))
    assert "after the run completed; all 18 cell(s)" in rundir.stopped_line(str(tmp_path), "SIGINT")
    doc["agrs_bench"].update(complete=False, missing_cells=["x"])
    (tmp_path / "results.json").write_text(json.dumps(doc))
    assert "marked incomplete" in rundir.stopped_line(str(tmp_path), "SIGTERM")


def test_report_of_a_run_in_progress(tmp_path, capsys, monkeypatch):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text("{}")
    assert "in progress" in _exit_2(["report", "r"], capsys, monkeypatch, tmp_path)


def test_report_names_a_cells_file_that_disagrees(tmp_path, capsys):
    doc = synthetic.launch()
    (tmp_path / "results.json").write_text(json.dumps(doc))
    assert results.cells_disagreement(str(tmp_path), doc) is None  # no cells.jsonl: a kept baseline
    other = synthetic.launch(seed=3)["benchmarks"]
    (tmp_path / "cells.jsonl").write_text("".join(json.dumps(b) + "\n" for b in other[:-1]))
    text = results.cells_disagreement(str(tmp_path), doc)
    assert "17 cell(s) with other samples" in text and "1 cell(s) in results.json but not in cells.jsonl" in text


def test_a_bug_in_the_gate_is_not_a_regression(tmp_path, capsys, monkeypatch):
    from agrs_bench import compare

    base = _write_run(tmp_path / "base", synthetic.launch(seed=1))
    head = _write_run(tmp_path / "head", synthetic.launch(seed=2))
    monkeypatch.setattr(compare.gate, "compare", lambda *a, **k: 1 / 0)
    assert compare.main([base, head, "--no-plots", "--out", str(tmp_path / "cmp")]) == compare.EXIT_INTERNAL
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error: ZeroDivisionError" in err[0]


@pytest.mark.parametrize("flag", ["--out", "--export-github-benchmark"])
def test_control_characters_in_compare_outputs(flag, tmp_path, capsys, monkeypatch):
    base = _write_run(tmp_path / "base", synthetic.launch(seed=1))
    head = _write_run(tmp_path / "head", synthetic.launch(seed=2))
    argv = ["compare", base, head, "--no-plots", *(["--out", "cmp"] if flag != "--out" else []), flag, "x\ny"]
    assert "control character" in _exit_2(argv, capsys, monkeypatch, tmp_path)


@pytest.mark.parametrize("argv, needle", [
    (["--threshold", "٥"], "--threshold '٥' is not a number"),
    (["--threshold", "1e-400"], "strictly between 0 and 100"),
    (["--threshold", "nan"], "strictly between 0 and 100"),
])
def test_gate_threshold_digits(argv, needle, tmp_path, capsys, monkeypatch):
    base = _write_run(tmp_path / "base", synthetic.launch(seed=1))
    head = _write_run(tmp_path / "head", synthetic.launch(seed=2))
    assert needle in _exit_2(["compare", base, head, "--no-plots", "--out", "cmp", *argv], capsys, monkeypatch,
                             tmp_path)


@pytest.mark.parametrize("name, root, needle", [
    ("x" * 300, "b", "at most 100"),
    ("x", "fifo/c/d", "is not writable"),
])
def test_baseline_refusals_leave_no_folders(name, root, needle, tmp_path, capsys, monkeypatch):
    os.mkfifo(tmp_path / "fifo")
    run = _write_run(tmp_path / "r", synthetic.launch(seed=1))
    assert needle in _exit_2(["baseline", run, name, "--allow-few", "--dir", root], capsys, monkeypatch, tmp_path)


def test_sizes_beyond_what_a_run_holds(tmp_path):
    sizes = ",".join(f"{32 * i}B" for i in range(1, 1100))
    with pytest.raises(ConfigError, match="--sizes names 1099 sizes"):
        parse_run_args(["--sizes", sizes, "--out", str(tmp_path / "r")], world_size=2, backend="gloo")


@pytest.mark.parametrize("gpu_name", ["../../escaped", "/abs/path", "..", "x" * 200], ids=lambda v: v[:12])
def test_a_gpu_name_cannot_move_the_baseline(gpu_name, tmp_path, monkeypatch):
    from agrs_bench.results import baseline

    runs = []
    for k in range(3):
        doc = synthetic.launch(seed=k)
        doc["machine_info"]["gpu_name"] = gpu_name
        runs.append(_write_run(tmp_path / "in" / f"l{k}", doc))
    folder = baseline.keep(",".join(runs), root=str(tmp_path / "root"))
    assert os.path.realpath(folder).startswith(str(tmp_path / "root") + os.sep)
    assert len(os.path.basename(os.path.dirname(folder))) <= 60


@pytest.mark.parametrize("where, value", [
    (("machine_info", "gpu_name"), "H100\n## PASS"), (("commit_info", "id"), "abc\n# injected"),
    (("benchmarks", 0, "params", "source"), "single_comm\n| x |"), (("benchmarks", 0, "params", "mode"), "a b"),
])
def test_names_from_a_results_file_are_one_line(where, value, tmp_path, capsys, monkeypatch):
    doc = synthetic.launch(seed=1)
    target = doc
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    base = _write_run(tmp_path / "base", doc)
    head = _write_run(tmp_path / "head", synthetic.launch(seed=2))
    assert where[-1] in _exit_2(["compare", base, head, "--no-plots", "--out", "cmp"], capsys, monkeypatch, tmp_path)
