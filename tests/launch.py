"""Launch agrs_bench.run the way users do (torchrun, or self-launch) with a deadline, in its own
session so a test can check that no process of the job is left and clean up whatever is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

FAST = ["--sizes", "4KiB,32KiB", "--iters", "2", "--warmup", "1", "--layers", "2",
        "--step-sizes", "8KiB", "--gemm", "16x16x16"]


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    leftover_pids: list[int]
    ended_at: float
    """time.time() when the launcher had exited, to compare with file modification times."""


def torchrun_cmd(nproc: int, *args: str, rdzv: list[str] | None = None) -> list[str]:
    launch = rdzv if rdzv is not None else ["--standalone"]
    return [sys.executable, "-m", "torch.distributed.run", *launch, f"--nproc-per-node={nproc}",
            "-m", "agrs_bench.run", *args]


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


def start(cmd: list[str], env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env_extra or {}))
    # Files, not pipes: a launcher nobody reads from while it runs must never block on a full pipe.
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
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


def run(cmd: list[str], deadline_s: float = 240, env_extra: dict[str, str] | None = None) -> Finished:
    started = time.monotonic()
    return finish(start(cmd, env_extra), deadline_s, started)
