"""Ctrl-C while a command starts (Python importing torch, numpy, pandas): one line on stderr, no
traceback, nothing written, the process ended by SIGINT. Signals later in a run are
tests/test_signals.py's; a stop after the last cell is tests/test_absurd_input.py's."""

import os
import signal
import sys
import time

import pytest

from tests import launch

pytestmark = pytest.mark.gloo
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("delay_s", [0.8, 1.5, 3.0])  # before ~0.5 s: the interpreter still starts
@pytest.mark.parametrize("command", [["-m", "agrs_bench.run"], ["-m", "agrs_bench", "run"],
                                     ["-m", "agrs_bench", "compare", "a", "b"]], ids=" ".join)
def test_interrupt_while_starting(command, delay_s, tmp_path):
    out = tmp_path / "run"
    argv = [*command, "--out", str(out), *launch.FAST] if "run" in command else command
    started = time.monotonic()
    proc = launch.start([sys.executable, *argv], cwd=str(tmp_path),
                        env_extra={"PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])})
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    done = launch.finish(proc, 120, started)
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and done.leftover_pids == [], done.stderr
    if done.returncode in (130, -signal.SIGINT):
        assert len(lines) <= 1 and (not lines or "interrupted (SIGINT)" in lines[0]), lines
    if lines and "while starting" in lines[0]:
        assert not out.exists()
