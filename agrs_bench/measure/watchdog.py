"""A last line of defence against hangs: hard-exit a rank whose current phase overran its budget.

PyTorch's process-group timeout fails a stuck collective on its own, and then every rank exits
through the ordinary error path. The watchdog covers what that timeout misses: a hang outside a
collective (a wedged device, a peer that keeps the connection open but never answers in time),
and `destroy_process_group()` hanging at exit. It names the phase that was running (the cell),
lets the caller save what it can (rank 0 writes the incomplete results), then calls `os._exit`.

It also answers SIGTERM, which torchrun sends to every rank as soon as one rank fails: the main
thread may sit inside a collective where no Python signal handler can run, so the signal is
passed to the watchdog thread through `signal.set_wakeup_fd`, and the rank saves and exits the
same way.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

EXIT_HUNG = 3
"""Exit status of a rank the watchdog ended."""
EXIT_TERMINATED = 128 + signal.SIGTERM
"""Exit status of a rank that the launcher stopped with SIGTERM."""
SAVE_BUDGET_S = 20.0
"""How long the watchdog lets `on_expire` save results before it exits anyway."""


# On NCCL, PyTorch's watchdog needs time after --timeout to notice the hung collective and
# dump the flight recorder; a 2xH200 run with --timeout 20 and a 5 s margin exited first.
NCCL_MIN_MARGIN_S = 30.0


def margin_s(timeout_s: float, backend: str = "gloo") -> float:
    """Slack on top of --timeout before the watchdog acts: PyTorch's own timeout fires first."""
    margin = min(30.0, max(5.0, 0.1 * timeout_s))
    return max(margin, NCCL_MIN_MARGIN_S) if backend == "nccl" else margin


class Watchdog:
    """`arm(phase, budget_s)` before each phase, `disarm()` after; `stop()` at the end."""

    def __init__(self, prog: str, rank: int, on_expire: Callable[[str], None] | None = None) -> None:
        self._prog, self._rank = prog, rank
        self.on_expire = on_expire
        """Called (in the watchdog thread) with the phase, before the exit: save what can be saved."""
        self._cond = threading.Condition()
        self._phase: str | None = None
        self._deadline = 0.0
        self._budget_s = 0.0
        self._last_phase = "start-up"
        self._expiring = threading.Lock()  # the deadline and SIGTERM may both fire: act once
        self._stopped = False
        self._thread = threading.Thread(target=self._watch, daemon=True, name="agrs-watchdog")
        self._thread.start()

    def catch_sigterm(self) -> None:
        """Main thread only: on SIGTERM, say which phase was running, save, exit."""
        receiver, sender = socket.socketpair()
        sender.setblocking(False)
        signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, lambda signum, frame: None)  # the thread below acts on it
        self._wakeup = (receiver, sender)  # kept open for the life of the process

        def wait_for_sigterm() -> None:
            while signal.SIGTERM not in receiver.recv(64):
                pass
            self._expire(f"stopped by SIGTERM (the launcher ends the job) during {self._last_phase}",
                         EXIT_TERMINATED)

        threading.Thread(target=wait_for_sigterm, daemon=True, name="agrs-sigterm").start()

    def arm(self, phase: str, budget_s: float) -> None:
        with self._cond:
            self._phase, self._budget_s, self._last_phase = phase, budget_s, phase
            self._deadline = time.monotonic() + budget_s
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._phase = None
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _watch(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._phase is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                phase, budget = self._phase, self._budget_s
                break
            else:
                return
        self._expire(f"{phase} still running after {budget:.0f} s (--timeout plus margin); giving up",
                     EXIT_HUNG)

    def _expire(self, why: str, status: int) -> None:
        if not self._expiring.acquire(blocking=False):
            return
        _tell(f"{self._prog}: rank {self._rank}: {why}")
        if self.on_expire is not None:
            saver = threading.Thread(target=self._save, args=(self._last_phase,), daemon=True)
            saver.start()
            saver.join(SAVE_BUDGET_S)
        try:
            sys.stdout.flush()
        except OSError:
            pass
        os._exit(status)

    def _save(self, phase: str) -> None:
        try:
            self.on_expire(phase)  # type: ignore[misc]
        except BaseException as err:  # exiting anyway: say why nothing was saved
            _tell(f"{self._prog}: rank {self._rank}: could not save results: {err}")


def _tell(line: str) -> None:
    """One line on stderr; a closed stderr (the reader died) must not stop the save and exit."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass
