"""The command end to end on CPU: torchrun with 2 gloo ranks writes a full run directory."""

import csv
import json
import sys

import pytest

from tests.support import launch
from tests.support.launch import FAST


def _torchrun(nproc, *args, timeout=240):
    return launch.run(launch.torchrun_cmd(nproc, *args), deadline_s=timeout)


def test_run_writes_results_csv_report(cpu_run):  # cpu_run: tests/gloo/conftest.py
    out, proc = cpu_run
    doc = json.loads((out / "results.json").read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(doc)
    assert doc["agrs_bench"]["complete"] is True
    cells = {(b["params"]["mode"], b["params"]["buffer"], b["params"]["source"], b["params"]["size_bytes"])
             for b in doc["benchmarks"]}
    assert len(cells) == 3 * 2 * 3 * 1 + 3  # modes x buffers x sources x one size, and 3 step cells
    for bench in doc["benchmarks"]:
        assert len(bench["stats"]["data"]) == launch.FAST_ITERS
        assert bench["stats"]["min"] <= bench["stats"]["median"] <= bench["stats"]["max"]
        if bench["params"]["mode"] == "ag_rs":
            assert "overlap_efficiency" in bench["extra_info"]
            assert "speedup_vs_single_comm" in bench["extra_info"]
        if bench["params"]["mode"] == "fsdp_step":
            for key in ("exposed_comm_s", "compute_slowdown", "compute_only_s", "comm_only_s"):
                assert key in bench["extra_info"]
    assert doc["machine_info"]["backend"] == "gloo"
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == len(doc["benchmarks"])
    assert "| ag_rs |" in (out / "report.md").read_text()
    assert "report.md" in proc.stdout


def test_pytest_benchmark_compare_accepts_results(cpu_run):
    out, _ = cpu_run
    proc = launch.run([sys.executable, "-m", "pytest_benchmark", "compare", str(out / "results.json")],
                      deadline_s=120)
    assert proc.returncode == 0, proc.stderr
    assert "ag_rs-dense-pg_collection" in proc.stdout


def test_output_dir_holding_a_run_is_refused(cpu_run):
    out, _ = cpu_run
    proc = launch.run([sys.executable, "-m", "agrs_bench.run", "--out", str(out), *FAST], deadline_s=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "already holds a run" in proc.stderr


# One case through a process of the module entry: the flags themselves ("allreduce", "--iters 0"
# and twenty more) run in-process, on the same self-launch path, in tests/pure/test_commands_bad_input.py.
@pytest.mark.parametrize("args, needle", [(["--sizes", "lots"], "'lots'")])
def test_self_launch_bad_flags_exit_2(tmp_path, args, needle):
    proc = launch.run([sys.executable, "-m", "agrs_bench.run", "--out", str(tmp_path / "x"), *args],
                      deadline_s=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_single_rank_explains_and_exits_2(tmp_path):
    proc = _torchrun(1, "--out", str(tmp_path / "x"))
    assert "at least 2 ranks" in proc.stderr
    assert proc.returncode != 0
    assert not (tmp_path / "x").exists()


def test_self_launch_without_torchrun(tmp_path):
    out = tmp_path / "self"
    proc = launch.run([sys.executable, "-m", "agrs_bench.run", "--out", str(out), *FAST,
                       "--modes", "ag_rs", "--sources", "single_comm,pg_collection"], deadline_s=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "results.json").read_text())["machine_info"]["world_size"] == 2
