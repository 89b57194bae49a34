"""A Ctrl-C while a command starts ends it with one line on stderr, not an import traceback.

In the first second of a command Python imports torch, numpy or pandas. A KeyboardInterrupt
raised inside an import can be swallowed half-way by the library being imported and come out
as some other error (numpy's "module has no attribute ..."), so while a program starts, SIGINT
does not raise: it prints the line and ends the process at once (nothing has been written yet).
`started()` gives SIGINT back to Python once the imports are done; from then on the commands
catch KeyboardInterrupt themselves, and a hook turns one that nothing caught into the same line.
Nothing here imports more than the standard library's smallest modules, so the window before
`starting` is the interpreter's own start and the compiling of the entry module (a few tenths
of a second), which no code of ours can reach.
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_INTERRUPTED = 128 + signal.SIGINT


def starting(prog: str) -> None:
    """First thing at a program's entry, before its heavy imports."""

    def while_starting(signum, frame) -> None:
        os.write(2, f"{prog}: interrupted (SIGINT) while starting; nothing was written\n".encode())
        os._exit(EXIT_INTERRUPTED)

    def hook(kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):
            print(f"{prog}: interrupted (SIGINT)", file=sys.stderr, flush=True)
        else:
            hook.previous(kind, value, tb)  # type: ignore[attr-defined]

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when SIGINT is ignored
        signal.signal(signal.SIGINT, while_starting)
    if not hasattr(sys.excepthook, "previous"):
        hook.previous = sys.excepthook  # type: ignore[attr-defined]
        sys.excepthook = hook


def started(uncaught_too: bool = False) -> None:
    """The imports are done: SIGINT raises KeyboardInterrupt again, for the command to handle;
    with `uncaught_too`, an uncaught one prints its traceback again (a command called in-process)."""
    if getattr(signal.getsignal(signal.SIGINT), "__name__", "") == "while_starting":
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if uncaught_too and hasattr(sys.excepthook, "previous"):
        sys.excepthook = sys.excepthook.previous
