"""A rank that dies or stops mid-run: every process ends within --timeout plus a margin, the
finished cells are kept, results.json is marked incomplete, and --resume completes the run."""

import json
import sys

from tests.support import fault_entry, launch

TIMEOUT_S = 10
# The watchdog margin (5 s at --timeout 10), writing results and torchrun's reaction, measured
# from the last finished cell, which is when the injected fault happens. Generous, because a
# loaded 2-core CI machine slows every step of that; what ended the run is checked by state (the
# message, no process left), and a hang would still run into launch.run's 240 s deadline.
MARGIN_S = 60
ARGS = [*launch.FAST, "--modes", "ag,ag_rs", "--sources", "single_comm,pg_collection",
        "--buffers", "dense", "--timeout", str(TIMEOUT_S)]
CELLS = 2 * 2 * 2  # sizes x sources x modes
DONE = 4  # the first comparison (4KiB: both sources, both modes) finishes before the fault


def _doc(run_dir):
    return json.loads((run_dir / "results.json").read_text())


def _fault_time(run_dir):
    """The fault fires right after the last finished cell was appended."""
    return (run_dir / "cells.jsonl").stat().st_mtime


def _cells(run_dir):
    return (run_dir / "cells.jsonl").read_text().splitlines()


def _faulted_run(tmp_path, signal_name):
    """A 2-rank run whose rank 1 gets `signal_name` before cell 5, the first of the second
    comparison: (run dir, result, seconds from the fault to the end). Every such run fails, names
    that comparison and leaves no process behind."""
    out = tmp_path / "run"
    done = launch.run(launch.torchrun_cmd(2, "--out", str(out), *ARGS, module=fault_entry.MODULE),
                      env_extra={"AGRS_BENCH_TEST_SIGNAL": f"{signal_name}@1:5"})
    assert done.returncode != 0
    assert not done.leftover_pids
    assert "comparison dense-32KiB-eager (cells 5-8/8: ag-dense-single_comm-32KiB" in done.stderr
    return out, done, done.ended_at - _fault_time(out)


def test_killed_rank_keeps_finished_cells_and_resume_completes(tmp_path):
    out, done, took_s = _faulted_run(tmp_path, "KILL")
    assert took_s < TIMEOUT_S + MARGIN_S, (took_s, done.stderr[-2000:])
    assert len(_cells(out)) == DONE
    doc = _doc(out)
    assert doc["agrs_bench"]["complete"] is False
    assert len(doc["benchmarks"]) == DONE and len(doc["agrs_bench"]["missing_cells"]) == CELLS - DONE
    assert "ag_rs-dense-pg_collection-32KiB" in doc["agrs_bench"]["missing_cells"]

    resumed = launch.run(launch.torchrun_cmd(2, "--resume", str(out), *ARGS))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming: {DONE} finished" in resumed.stdout
    doc = _doc(out)
    assert doc["agrs_bench"]["complete"] is True and doc["agrs_bench"]["resumed_cells"] == DONE
    assert len(doc["benchmarks"]) == CELLS and len(_cells(out)) == CELLS
    for size in ("4KiB", "32KiB"):  # each comparison measured whole, in one part of the run or the other
        pair = next(b for b in doc["benchmarks"] if b["name"] == f"agrs[ag_rs-dense-pg_collection-{size}]")
        assert "speedup_vs_single_comm_ci" in pair["extra_info"]  # paired within its comparison


def test_stopped_rank_times_out_and_every_process_ends(tmp_path):
    out, done, took_s = _faulted_run(tmp_path, "STOP")
    assert TIMEOUT_S <= took_s < TIMEOUT_S + MARGIN_S, (took_s, done.stderr[-2000:])
    # What fired: gloo's own timeout ("Timed out ...") or, when that loses the race, our watchdog.
    assert any(word in done.stderr for word in ("Timed out", "timed out", "still running after")), \
        done.stderr[-3000:]
    assert _doc(out)["agrs_bench"]["complete"] is False and len(_cells(out)) == DONE


def test_self_launch_rebuilds_results_when_rank_0_dies(tmp_path):
    out = tmp_path / "run"
    done = launch.run([sys.executable, "-m", fault_entry.MODULE, "--out", str(out), *ARGS],
                      env_extra={"AGRS_BENCH_TEST_SIGNAL": "KILL@0:5"})
    assert done.returncode != 0 and not done.leftover_pids
    assert "rebuilt" in done.stderr
    doc = _doc(out)
    assert doc["agrs_bench"]["complete"] is False and doc["agrs_bench"]["rebuilt_from_cells"] is True
    assert len(doc["benchmarks"]) == DONE and len(doc["agrs_bench"]["missing_cells"]) == CELLS - DONE
    assert (out / "report.md").exists()
