"""`python -m agrs_bench.compare BASE HEAD`: gate HEAD against BASE; write comparison.md and plots.

BASE and HEAD each name one or more launches, comma-separated: a run directory, a results.json,
or a folder whose subfolders are run directories (what scripts/ab.sh writes). Exit status: 0 no
regression, 1 a regression, 2 bad input, 3 runs that cannot be compared (another GPU model, GPU
count, layout or dtype) unless --allow-mismatch, 70 a failure of this program itself.
"""

from __future__ import annotations

# The SIGINT hook goes in before the imports that take a second (E402 is that order).
# ruff: noqa: E402

if __name__ == "__main__":  # before the imports below (numpy, pandas) can be interrupted
    from agrs_bench import interrupt

    interrupt.starting("agrs_bench.compare")

import argparse
import datetime
import json
import os
import sys
import traceback

from agrs_bench import interrupt, safe_files
from agrs_bench.errors import ArgumentParser, ConfigError, cli_entry, fail, number
from agrs_bench.gate import markdown as compare_md
from agrs_bench.gate import verdicts as gate
from agrs_bench.results import baseline, launches, schema
from agrs_bench.results.files import write_atomic
from agrs_bench.results.rundir import check_path_text

PROG = "agrs_bench.compare"
COMPARISON_FILE = "comparison.md"
EXIT_REGRESSED = 1
EXIT_MISMATCH = 3
EXIT_INTERNAL = 70
"""A failure of this program itself (EX_SOFTWARE): never 1, which CI reads as a regression."""


def resolve(spec: str) -> list[str]:
    """The results.json files one side names (see the module docstring); SchemaError if none."""
    return baseline.run_files(spec)


def _threshold(text: str) -> float:
    try:
        pct = number(text)  # ASCII digits: float() would take '٥'
    except argparse.ArgumentTypeError:
        raise ConfigError(f"--threshold {text[:40]!r} is not a number (a percentage, e.g. 5)") from None
    if not 0 < pct < 100:
        raise ConfigError(f"--threshold {text!r} must lie strictly between 0 and 100 (percent)")
    return pct / 100


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="base launches: run dirs / results.json / a folder of runs, comma-separated")
    parser.add_argument("head", help="head launches, the same way")
    parser.add_argument("--out", default=None,
                        help="folder for comparison.md and plots (default results/comparisons/<UTC time>)")
    parser.add_argument("--threshold", default="5", help="relative threshold in percent (default 5)")
    parser.add_argument("--allow-mismatch", action="store_true",
                        help="compare even across GPU model, GPU count, layout or dtype")
    parser.add_argument("--export-github-benchmark", metavar="FILE", default=None,
                        help="also write HEAD as github-action-benchmark customSmallerIsBetter JSON")
    parser.add_argument("--no-plots", action="store_true", help="write comparison.md only")
    return parser.parse_args(argv)


def _check_writable_file(path: str, flag: str) -> None:
    """Refuse, before anything is written, a file the comparison could not replace atomically:
    a directory, pipe, device, a link to nowhere, a missing or read-only folder."""
    try:
        target = safe_files.write_target(path)
    except OSError as err:
        raise ConfigError(f"{flag} {path!r} {err.strerror}") from None
    folder = os.path.dirname(os.path.abspath(target))
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{flag} {path!r}: folder {folder!r} is not writable")


@cli_entry(PROG)
def main(argv: list[str] | None = None) -> int:
    interrupt.started()
    try:
        return _gate(argv)
    except (ConfigError, SystemExit, KeyboardInterrupt):
        raise
    except Exception as err:  # a bug must not read as a regression (exit 1) to CI
        print(f"{PROG}: internal error: {type(err).__name__}: {' '.join(str(err).split())[:300]} "
              f"(exit {EXIT_INTERNAL}; please report it)", file=sys.stderr, flush=True)
        if os.environ.get("AGRS_BENCH_TRACEBACK"):
            traceback.print_exc()
        return EXIT_INTERNAL


def _gate(argv: list[str] | None) -> int:
    args = parse_args(argv)
    for flag, value in (("--out", args.out), ("--export-github-benchmark", args.export_github_benchmark)):
        if value is not None:
            check_path_text(value, flag)
    threshold = _threshold(args.threshold)
    try:
        base_paths, head_paths = resolve(args.base), resolve(args.head)
        base, head = [schema.load(p) for p in base_paths], [schema.load(p) for p in head_paths]
        launches.refuse_repeats([*((p, d, "base") for p, d in zip(base_paths, base)),
                                 *((p, d, "head") for p, d in zip(head_paths, head))])
    except schema.SchemaError as err:
        fail(str(err), PROG)
    problems = gate.mismatches(base, head)
    if problems and not args.allow_mismatch:
        print(f"{PROG}: cannot compare: {'; '.join(problems)} (--allow-mismatch compares anyway)",
              file=sys.stderr, flush=True)
        return EXIT_MISMATCH
    cells = gate.compare(base, head, threshold=threshold)  # before any folder or file is made
    out = args.out or os.path.join("results", "comparisons",
                                   datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ"))
    if args.export_github_benchmark:  # refuse before anything is written, not after
        _check_writable_file(args.export_github_benchmark, "--export-github-benchmark")
    if os.path.lexists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out!r} exists and is not a directory")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {out!r} cannot be created ({err.strerror})") from None
    _check_writable_file(os.path.join(out, COMPARISON_FILE), "--out")
    written = []
    if not args.no_plots:
        from agrs_bench.render import plots

        try:
            written = plots.comparison_plots(cells, head[0], threshold, out, base_docs=base, head_docs=head)
        except OSError as err:
            raise ConfigError(f"--out {out!r}: {err.strerror}") from None
    only_base, only_head = gate.unmatched(base, head)
    comparison = compare_md.Comparison(
        verdict=gate.overall(cells), cells=cells, threshold=threshold, base=base, head=head,
        base_origins=base_paths, head_origins=head_paths, mismatches=problems, only_base=only_base,
        only_head=only_head, quiet_threshold=gate.quiet_threshold(cells),
        plots=[(title, os.path.relpath(p, out)) for title, p in written])
    try:
        write_atomic(os.path.join(out, COMPARISON_FILE), compare_md.render(comparison))
    except OSError as err:
        raise ConfigError(f"--out {out!r}: {err.strerror}") from None
    if args.export_github_benchmark:
        from agrs_bench.gate.export import github_benchmark

        try:
            write_atomic(args.export_github_benchmark, json.dumps(github_benchmark(head), indent=1) + "\n")
        except OSError as err:
            raise ConfigError(f"--export-github-benchmark {args.export_github_benchmark!r} "
                              f"cannot be written ({err.strerror})") from None
    print(f"{PROG}: {compare_md.HEADLINE[comparison.verdict]}: {compare_md.count_line(comparison)} "
          f"-> {os.path.join(out, COMPARISON_FILE)}", flush=True)
    return EXIT_REGRESSED if comparison.verdict == "regressed" else 0


if __name__ == "__main__":
    sys.exit(main())
