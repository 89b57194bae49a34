"""The one way tests start processes: agrs_bench under torchrun, self-launched, as a CLI, or any
command, with a deadline, in files rather than pipes, checking that no process of the job is left
(and killing whatever is). FAST is the one set of fast flags every test run starts from; a test
that needs something else appends its own flags after it (argparse: the last one wins).

Tests that start processes live in tests/gloo/ (or tests/gpu/); tests/conftest.py fails a test
under tests/pure/ that tries, so the pure tier stays pure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

FAST_SIZES = "4KiB,32KiB"
FAST_ITERS = 3
FAST_WARMUP = 1
# One op per sample: on CPU the fsdp_step comparison's ops count would come from its fastest part
# (a tiny GEMM), so a sample budget multiplies the step's time (~3 s of every run); timings of
# these runs mean nothing anyway. The test of the budget itself (gloo/test_measure_engine.py)
# asks for it back with `--ops-per-sample 0`.
FAST = ["--sizes", FAST_SIZES, "--iters", str(FAST_ITERS), "--warmup", str(FAST_WARMUP), "--layers", "2",
        "--step-sizes", "8KiB", "--gemm", "16x16x16", "--sample-ms", "0.5", "--ops-per-sample", "1"]
# The pytest-benchmark suite (benchmarks/) takes the same settings through its environment.
FAST_BENCH_ENV = {"AGRS_BENCH_SIZES": FAST_SIZES.split(",")[0], "AGRS_BENCH_ROUNDS": str(FAST_ITERS),
                  "AGRS_BENCH_WARMUP": str(FAST_WARMUP), "AGRS_BENCH_SAMPLE_MS": "0.5",
                  "AGRS_BENCH_TIMEOUT_S": "60", "OMP_NUM_THREADS": "1"}
# A launch from a test never inherits a torchrun environment (a test itself run under torchrun).
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                      "MASTER_PORT", "TORCHELASTIC_RUN_ID")
# Nor a pytest-xdist worker's, where someone runs the suite with `-n` (.ci/run runs it serially):
# pytest-benchmark reads them and turns itself off in a pytest started beneath, so the benchmarks/
# suite would write an empty JSON.
XDIST_VARIABLES_PREFIX = "PYTEST_XDIST_"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    leftover_pids: list[int]
    ended_at: float
    """time.time() when the launcher had exited, to compare with file modification times."""


def torchrun_cmd(nproc: int, *args: str, rdzv: list[str] | None = None, module: str = "agrs_bench.run"
                 ) -> list[str]:
    """`torchrun --nproc-per-node=nproc -m module args` (standalone unless `rdzv` is given)."""
    launch = rdzv if rdzv is not None else ["--standalone"]
    return [sys.executable, "-m", "torch.distributed.run", *launch, f"--nproc-per-node={nproc}",
            "-m", module, *args]


def cli_cmd(*args: str) -> list[str]:
    """The `agrs-bench` console script's program: `python -m agrs_bench COMMAND ...`."""
    return [sys.executable, "-m", "agrs_bench", *args]


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _descendants(root: int) -> dict[int, str]:
    """pid -> start time of every live descendant of `root`."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            fields = _stat(child)
            if fields:
                found[child] = fields[19]
                todo.append(child)
    return found


def _alive(pids: dict[int, str]) -> list[int]:
    """Those of `pids` still running (same start time, so not a reused pid; zombies count as gone)."""
    return [pid for pid, started in pids.items()
            if (fields := _stat(pid)) and fields[19] == started and fields[0] != "Z"]


def start(cmd: list[str], env_extra: dict[str, str] | None = None, cwd: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if k not in TORCHRUN_VARIABLES and not k.startswith(XDIST_VARIABLES_PREFIX)}
    env.update({"OMP_NUM_THREADS": "1", **(env_extra or {})})
    # Files, not pipes: a launcher nobody reads from while it runs must never block on a full pipe.
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env, cwd=cwd)
    proc.output_files = (out, err)  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen, deadline_s: float, started: float) -> Finished:
    """Wait for the launcher, watching its process tree; kill whatever of it is left after."""
    seen: dict[int, str] = {}
    try:
        while proc.poll() is None:
            seen.update(_descendants(proc.pid))
            if time.monotonic() - started > deadline_s:
                raise TimeoutError(f"launcher still running after {deadline_s} s")
            time.sleep(0.2)
        wall, ended_at = time.monotonic() - started, time.time()
        if seen:  # a launcher with no child seen (topology, compare, a refusal) has none to reap
            time.sleep(0.5)  # let the last workers be reaped
        leftover = _alive(seen)
    finally:
        for pid in ([proc.pid] if proc.poll() is None else []) + _alive(seen):
            try:
                os.kill(pid, signal.SIGKILL)  # only processes this test started
            except OSError:
                pass
    proc.wait()
    out, err = (_read(stream) for stream in proc.output_files)  # type: ignore[attr-defined]
    return Finished(proc.returncode, out, err, wall, leftover, ended_at)


def _read(stream) -> str:
    stream.seek(0)
    text = stream.read()
    stream.close()
    return text


def run(cmd: list[str], deadline_s: float = 240, env_extra: dict[str, str] | None = None,
        cwd: str | None = None) -> Finished:
    """Start `cmd` and wait for it, at most `deadline_s` (then it fails the test, killing the job)."""
    started = time.monotonic()
    return finish(start(cmd, env_extra, cwd), deadline_s, started)
