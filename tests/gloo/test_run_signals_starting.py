"""Ctrl-C while a command starts (Python importing torch, numpy, pandas): one line on stderr, no
traceback, nothing written, the process ended by SIGINT (a signal that comes once the run has
started stops it, with its own one line). Signals later in a run are
tests/gloo/test_run_signals.py's; a stop after the last cell is tests/pure/test_commands_absurd_input.py's."""

import os
import signal
import sys
import time

import pytest

from tests.support import launch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("delay_s", [0.8, 1.5, 3.0])  # before ~0.5 s: the interpreter still starts
@pytest.mark.parametrize("command", [["-m", "agrs_bench.run"], ["-m", "agrs_bench", "run"],
                                     ["-m", "agrs_bench", "compare", "a", "b"]], ids=" ".join)
def test_interrupt_while_starting(command, delay_s, tmp_path):
    out = tmp_path / "run"
    argv = [*command, "--out", str(out), *launch.FAST] if "compare" not in command else command
    started = time.monotonic()
    proc = launch.start([sys.executable, *argv], cwd=str(tmp_path),
                        env_extra={"PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])})
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    done = launch.finish(proc, 120, started)
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and done.leftover_pids == [], done.stderr
    if "compare" in command and lines == ["agrs_bench.compare: error: a: no such file"]:
        # it had ended, or was on its way out, before the signal came (on an idle machine
        # compare starts well within the longest delay): its own one line, then 2 or SIGINT's 130
        assert done.returncode in (2, 130, -signal.SIGINT), done.returncode
        return
    assert done.returncode in (130, -signal.SIGINT), done.stderr
    assert len(lines) <= 1, lines  # a late signal stops a started run: its own one line
    if lines and "while starting" in lines[0]:
        assert not out.exists()
    else:
        assert not lines or "interrupted (SIGINT)" in lines[0] or "stopped by SIGINT" in lines[0], lines
