"""The operating-system processes of one launch, for the self-launch parent: torchrun starts
every rank in a session of its own, so the parent follows the process tree, not a process group,
to forward signals and to know when no rank is left."""

from __future__ import annotations

import os
import signal
import time


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], ppid [1], start time [19])."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


class ProcessTree:
    """Every descendant of `root` ever seen, by pid and start time (so a reused pid is not ours)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, str] = {}

    def refresh(self) -> None:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (fields := _stat(int(entry))):
                children.setdefault(int(fields[1]), []).append(int(entry))
        todo = [self.root]
        while todo:
            for child in children.get(todo.pop(), []):
                fields = _stat(child)
                if fields and child not in self.seen:
                    self.seen[child] = fields[19]
                if fields:
                    todo.append(child)

    def alive(self) -> list[int]:
        """Those seen that still run (zombies count as gone)."""
        return [pid for pid, started in self.seen.items()
                if (fields := _stat(pid)) and fields[19] == started and fields[0] != "Z"]

    def signal(self, signum: int) -> None:
        for pid in self.alive():
            try:
                os.kill(pid, signum)
                if signum != signal.SIGKILL:
                    os.kill(pid, signal.SIGCONT)  # a stopped rank takes the signal only once woken
            except OSError:
                pass  # ended meanwhile

    def wait_gone(self, deadline_s: float, poll_s: float = 0.1) -> bool:
        """True once no process seen is alive; False after `deadline_s`."""
        end = time.monotonic() + deadline_s
        while self.alive():
            if time.monotonic() > end:
                return False
            time.sleep(poll_s)
        return True
