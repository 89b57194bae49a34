"""`agrs-bench COMMAND ...` (or `python -m agrs_bench COMMAND ...`): one entry for every tool.

Commands: run, compare, report, baseline, topology. Each is the same program as its module
(`python -m agrs_bench.run`, `python -m agrs_bench.compare`, ...), so flags and exit statuses match.
"""

from __future__ import annotations

import importlib
import signal
import sys

from agrs_bench import interrupt
from agrs_bench.errors import fail

COMMANDS = {
    "run": ("agrs_bench.run", "measure AG/RS overlap per group source (torchrun or self-launch)"),
    "compare": ("agrs_bench.compare", "gate HEAD launches against BASE launches"),
    "report": ("agrs_bench.render.report", "rewrite a run's report.md and plots from its files"),
    "baseline": ("agrs_bench.results.baseline", "keep a complete run as a named baseline"),
    "topology": ("agrs_bench.topology.cli", "print the rank lists of every group of a layout"),
}
PROG = "agrs-bench"


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {doc}" for name, (_, doc) in COMMANDS.items())
    return f"usage: {PROG} COMMAND [ARGS...]\n\ncommands:\n{rows}\n\n{PROG} COMMAND --help shows its flags."


def main(argv: list[str] | None = None) -> int:
    interrupt.starting(PROG)  # before the command's imports (torch, pandas: a second or more)
    try:
        return _dispatch(sys.argv[1:] if argv is None else list(argv))
    finally:
        interrupt.started(uncaught_too=True)


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        fail(f"unknown command {command!r} (choose from {', '.join(COMMANDS)})", PROG)
    try:
        module = importlib.import_module(COMMANDS[command][0])
        interrupt.started()
        return module.main(rest)
    except KeyboardInterrupt:  # what the command itself does not catch: one line, no traceback
        print(f"{PROG} {command}: interrupted (SIGINT)", file=sys.stderr, flush=True)
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
