"""torchrun as a child of the self-launch parent: started in a session of its own, its stderr
relayed, SIGINT/SIGTERM/SIGHUP forwarded to it and to every rank, and waited for until no process
of the launch is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any

from agrs_bench.launch.processes import ProcessTree

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the terminal went away
RANKS_GRACE_S = 60.0
"""After a stop signal: how long torchrun and the ranks get to save and exit before SIGKILL
(a rank saves within the watchdog's 20 s; torchrun waits 30 s before it kills a rank)."""


def torchrun_cmd(nproc: int, module: str, argv: list[str]) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc-per-node=nproc -m module argv`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", module, *argv]


def launch_and_wait(cmd: list[str], env: dict[str, str]) -> tuple[int, signal.Signals | None]:
    """Run torchrun to its end; on SIGINT/SIGTERM stop it and its ranks. Returns its status and
    the signal that stopped it, once every process of the launch is gone."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.PIPE,
                            preexec_fn=_end_with_parent)
    tree = ProcessTree(proc.pid)
    stopped: list[signal.Signals] = []

    def relay() -> None:  # once stopped, the launch's own messages would bury the one line
        for line in iter(proc.stderr.readline, b""):  # type: ignore[union-attr]
            if not stopped:
                sys.stderr.write(line.decode("utf-8", "replace"))
                sys.stderr.flush()

    def on_signal(signum: int, frame: Any) -> None:
        first = not stopped
        stopped.append(signal.Signals(signum))
        tree.refresh()
        how = signal.SIGTERM if first else signal.SIGKILL  # a second Ctrl-C: no more waiting
        try:
            os.killpg(proc.pid, how)
        except OSError:
            pass
        tree.signal(how)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    relay_thread = threading.Thread(target=relay, daemon=True, name="agrs-relay")
    relay_thread.start()
    deadline: threading.Timer | None = None
    try:
        while proc.poll() is None:
            tree.refresh()
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            if stopped and deadline is None:  # stopped, but what does not end in time is killed
                deadline = threading.Timer(RANKS_GRACE_S, lambda: (os.killpg(proc.pid, signal.SIGKILL)
                                                                   if proc.poll() is None else None,
                                                                   tree.signal(signal.SIGKILL)))
                deadline.daemon = True
                deadline.start()
        # torchrun is gone; its ranks (each in a session of its own) may not be. A launcher that
        # died leaves them nobody to stop them: end them, and never write while one may write.
        if tree.alive():
            if proc.returncode != 0:
                tree.signal(signal.SIGTERM)
            if not tree.wait_gone(RANKS_GRACE_S):
                tree.signal(signal.SIGKILL)
                tree.wait_gone(10.0)
    finally:
        if deadline is not None:
            deadline.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    relay_thread.join(5.0)
    return proc.returncode, (stopped[0] if stopped else None)


def _end_with_parent() -> None:
    """In torchrun's process, before it starts: SIGTERM it when this parent dies (even by
    SIGKILL), so that it stops its ranks rather than running on without anyone to report to."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: a killed parent leaves torchrun to finish on its own


class StderrOutlivingItsReader:
    """stderr of a rank under the self-launch parent, which reads it through a pipe: if the
    parent dies (SIGKILL), a write must not raise BrokenPipeError into the save-and-exit path."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError:
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
