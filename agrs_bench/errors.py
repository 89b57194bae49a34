"""The one way bad input leaves a command: a single line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_MEGATRON_MISMATCH = 5
"""megatron-core built AG groups whose ranks differ from its DP groups: that source was not
timed, the others were (NVIDIA/Megatron-LM#4261)."""


class ConfigError(ValueError):
    """Bad input from the user: a flag, a layout, a file. Its message names the bad value."""


class RunFailed(Exception):
    """A run that failed and has said why on stderr (its finished cells saved): the process
    exits with `status` without printing anything more."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as a ConfigError, so it leaves as one line and exit 2."""

    def error(self, message: str):  # type: ignore[override]
        raise ConfigError(message)


def fail(message: str, prog: str = "agrs_bench") -> NoReturn:
    """Print `prog: error: message` as one line and exit with status 2."""
    one_line = " ".join(str(message).split())
    print(f"{prog}: error: {one_line}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_BAD_INPUT)


def cli_entry(prog: str) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Decorate a `main(argv) -> int`: a ConfigError becomes a one-line error and exit 2."""

    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def wrapped(*args, **kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except ConfigError as err:
                fail(str(err), prog)

        return wrapped

    return decorate


# int() and float() read any Unicode digits ('٤' is 4) and float() reads 'nan' and 'inf': a flag
# value is digits 0-9, so that what the user sees is what the run records.
_INTEGER_RE = re.compile(r"[+-]?[0-9]{1,30}")
_WORDS = ("inf", "infinity", "nan")
_NUMBER_RE = re.compile(r"[+-]?([0-9]{1,30}(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


def integer(text: str) -> int:
    """argparse type: an integer in ASCII digits (at most 30 of them; the checks of the value
    name the range it must lie in)."""
    if not _INTEGER_RE.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not an integer (digits 0-9)")
    return int(text)


def number(text: str) -> float:
    """argparse type: a decimal number in ASCII digits (inf and nan pass, for the checks of
    the value that say which range it must lie in)."""
    if not (_NUMBER_RE.fullmatch(text.strip()) or text.strip().lower().lstrip("+-") in _WORDS):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number (digits 0-9)")
    return float(text)


integer.python_type = int  # type: ignore[attr-defined]  # what a TOML value for the flag must be
number.python_type = float  # type: ignore[attr-defined]


def report_failure(prog: str, rank: int, err: Exception) -> None:
    """One line on stderr naming the rank and the error (a traceback only on request)."""
    print(f"{prog}: rank {rank}: {type(err).__name__}: {' '.join(str(err).split())}",
          file=sys.stderr, flush=True)
    if os.environ.get("AGRS_BENCH_TRACEBACK"):
        traceback.print_exc()
