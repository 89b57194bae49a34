"""The watchdog in a real process: it names the phase, saves, and exits on a deadline or SIGTERM."""

import signal
import subprocess
import sys

# Starts real processes (no process group): the gloo tier, not the pure one.

SCRIPT = """
import sys, time
from agrs_bench.measure.watchdog import Watchdog
dog = Watchdog("prog", 0, on_expire=lambda phase: print("saved during", phase, flush=True))
dog.catch_sigterm()
dog.arm("cell ag-dense-x-4KiB (3/8)", float(sys.argv[1]))
print("armed", flush=True)
time.sleep(60)
"""


def _start(budget_s):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(budget_s)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_deadline_exits_with_the_phase_named():
    proc = _start(0.5)
    # The script sleeps 60 s: ending within communicate's 30 s, with status 3 and the message
    # below, is the watchdog's doing, however slow a loaded machine starts the process.
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "cell ag-dense-x-4KiB (3/8) still running after 0 s" in err
    assert "saved during cell ag-dense-x-4KiB (3/8)" in out


def test_sigterm_exits_with_the_phase_named():
    proc = _start(60)
    assert proc.stdout.readline().strip() == "armed"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM (the launcher ends the job) during cell ag-dense-x-4KiB (3/8)" in err
    assert "saved during" in out


def test_disarmed_watchdog_stays_quiet():
    script = ("import time\nfrom agrs_bench.measure.watchdog import Watchdog\nd = Watchdog('p', 0)\n"
              "d.arm('x', 0.3)\nd.disarm()\ntime.sleep(1)\nd.stop()\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok"
