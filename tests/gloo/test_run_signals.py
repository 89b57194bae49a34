"""Signals and concurrent runs, on real gloo launches: SIGINT/SIGTERM to the self-launch parent,
SIGTERM and SIGKILL to its torchrun, two runs into one folder. Afterwards no process of the run
is left, results.json is valid and marked incomplete, and `--resume RUN_DIR` alone finishes it.
Waits are bounded by generous deadlines and assert on states, not on durations."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from agrs_bench.results import schema
from tests.support import launch

# 4 sizes x 3 sources x 2 modes: long enough that a signal lands mid-run on a fast machine.
ARGS = ["--sizes", "4KiB,8KiB,16KiB,32KiB", "--iters", "2", "--warmup", "1", "--modes", "ag,ag_rs",
        "--buffers", "dense", "--timeout", "30"]
CELLS = 4 * 3 * 2
DEADLINE_S = 240


def _self_launch(*args):
    return [sys.executable, "-m", "agrs_bench.run", *args]


def _wait_for(what, predicate, proc, deadline_s=DEADLINE_S):
    end = time.monotonic() + deadline_s
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < end, f"no {what} after {deadline_s} s"
        time.sleep(0.1)


def _cells_done(out, n=1):
    path = out / "cells.jsonl"
    return lambda: path.exists() and path.read_text().count("\n") >= n


def _torchrun_pid(proc):
    for pid in launch._descendants(proc.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"torch.distributed.run" in fh.read():
                    return pid
        except OSError:
            pass
    return None


def _incomplete(out):
    doc = schema.load(str(out / "results.json"))
    assert doc["agrs_bench"]["complete"] is False
    assert 1 <= len(doc["benchmarks"]) < CELLS
    assert not [p for p in os.listdir(out) if p.startswith(".tmp-")]
    return doc


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_to_the_parent_ends_the_whole_run(tmp_path, signum):
    out = tmp_path / "run"
    started = time.monotonic()
    proc = launch.start(_self_launch("--out", str(out), *ARGS))
    _wait_for("finished cell", _cells_done(out), proc)
    os.kill(proc.pid, signum)
    done = launch.finish(proc, DEADLINE_S, started)
    assert not done.leftover_pids
    assert done.returncode == 128 + signum, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert f"stopped by {signal.Signals(signum).name}" in last and "--resume" in last
    _incomplete(out)
    if signum == signal.SIGINT:  # `--resume RUN_DIR` alone finishes it, with the run's own flags
        resumed = launch.run(_self_launch("--resume", str(out)), DEADLINE_S)
        assert resumed.returncode == 0 and not resumed.leftover_pids, resumed.stderr[-2000:]
        doc = schema.load(str(out / "results.json"))
        assert doc["agrs_bench"]["complete"] is True and len(doc["benchmarks"]) == CELLS


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_signal_to_torchrun_leaves_no_rank_and_no_late_write(tmp_path, signum):
    """SIGKILL of torchrun orphans the ranks: the parent ends them and writes nothing while one
    may still write."""
    out = tmp_path / "run"
    started = time.monotonic()
    proc = launch.start(_self_launch("--out", str(out), *ARGS))
    _wait_for("finished cell", _cells_done(out), proc)
    torchrun = _torchrun_pid(proc)
    assert torchrun
    os.kill(torchrun, signum)
    done = launch.finish(proc, DEADLINE_S, started)
    assert not done.leftover_pids and done.returncode != 0
    _incomplete(out)
    assert os.stat(out / "results.json").st_mtime <= done.ended_at


def test_two_runs_into_one_folder(tmp_path):
    out = tmp_path / "run"
    started = time.monotonic()
    # many cells, so that it is still running while the second one tries; stopped afterwards
    first = launch.start(_self_launch("--out", str(out), *ARGS, "--iters", "100", "--sources",
                                      "single_comm,global_state,pg_collection", "--buffers", "dense,expert",
                                      "--sizes", "4KiB,8KiB,16KiB,32KiB,64KiB,128KiB,256KiB"))
    _wait_for("config.json", lambda: (out / "config.json").exists(), first)
    before = {p: os.stat(out / p).st_mtime_ns for p in os.listdir(out)}
    for argv in (["--out", str(out), *ARGS], ["--resume", str(out)]):
        second = subprocess.run(_self_launch(*argv), capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, OMP_NUM_THREADS="1"))
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert "already holds a run" in lines[0] or "in use by another run" in lines[0], lines
    assert {p: os.stat(out / p).st_mtime_ns for p in before if p != "cells.jsonl"} == \
        {p: t for p, t in before.items() if p != "cells.jsonl"}
    assert first.poll() is None, "the first run ended before the second one tried"
    os.kill(first.pid, signal.SIGTERM)
    done = launch.finish(first, DEADLINE_S, started)
    assert done.returncode == 128 + signal.SIGTERM and not done.leftover_pids, done.stderr[-2000:]
    assert schema.load(str(out / "results.json"))["agrs_bench"]["complete"] is False


def test_full_disk_mid_run_names_the_file_and_keeps_the_cells(tmpfs):
    """A run on a 120 KiB tmpfs: the disk fills; rank 0 says which file it could not write and
    where the measured cells are; no traceback of ours, no process left."""
    mount = tmpfs("120k")
    done = launch.run(_self_launch("--out", str(mount / "run"), *ARGS, "--iters", "30"), DEADLINE_S)
    assert done.returncode == 1 and not done.leftover_pids
    ours = [line for line in done.stderr.splitlines() if line.startswith("agrs_bench.run: ")]
    assert any("No space left on device" in line and "cannot write" in line for line in ours), ours
    assert any("cells.jsonl" in line for line in ours), ours
    # torchrun prints its own failure summary; no frame of this package may be in it
    assert not re.search(r'File "[^"]*agrs_bench/', done.stderr), done.stderr[-3000:]


def test_killed_parent_takes_the_launch_with_it(tmp_path):
    """SIGKILL cannot be forwarded: torchrun learns of it from the kernel (parent-death signal),
    stops its ranks, and rank 0 saves."""
    out = tmp_path / "run"
    proc = launch.start(_self_launch("--out", str(out), *ARGS))
    seen = {}
    try:
        _wait_for("finished cell", _cells_done(out), proc)
        seen = launch._descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        end = time.monotonic() + 120
        while launch._alive(seen) and time.monotonic() < end:
            time.sleep(0.2)
        assert not launch._alive(seen)
    finally:
        for pid in launch._alive(seen):
            os.kill(pid, signal.SIGKILL)
        launch.finish(proc, 10, time.monotonic())
    _incomplete(out)
