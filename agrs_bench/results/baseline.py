"""`agrs-bench baseline RUN[,RUN...] [NAME] [--force] [--allow-few] [--path-only]`: keep launches
as one baseline.

A baseline is several launches of the same build, kept together, because a launch is the unit the
gate compares and one launch cannot show launch-to-launch noise:
results/<card>-x<N>/baseline/launch-<k>/results.json, card = the short lowercase GPU model
("NVIDIA H100 80GB HBM3" -> h100), N = the GPU count; NAME overrides <card>-x<N>. RUN is a run
directory, a results.json, or a folder of run directories (what scripts/nightly.sh writes).
At least 3 launches unless --allow-few; every launch complete and of one GPU model, count and
layout. An existing baseline is never replaced without --force (then wholly, in one rename).
The baseline folder gets a README naming every launch's commit (and <card>-x<N>/ one, if it has
none), so a baseline kept under the repository's results/ passes the repository's own tests.
`--path-only` prints where the runs' baseline lives and writes nothing (scripts/nightly.sh).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from typing import Any

from agrs_bench.errors import ArgumentParser, ConfigError, cli_entry
from agrs_bench.results import launches, schema
from agrs_bench.results.files import RESULTS_FILE, write_atomic

PROG = "agrs-bench baseline"
DEFAULT_ROOT = "results"
BASELINE_DIR = "baseline"
README = "README.md"
MIN_LAUNCHES = 3
VENDOR_WORDS = {"nvidia", "tesla", "geforce", "amd", "instinct", "radeon"}


def card_name(gpu_name: str | None) -> str:
    """The short lowercase model: the first word that mixes letters and digits (h100, a100, l40s,
    mi300x), else the remaining words joined with '-'; 'cpu' for a CPU run."""
    # Letters and digits only: the name becomes a folder, and results.json is input ('../..').
    words = [w for w in re.split(r"[^a-z0-9]+", (gpu_name or "cpu").lower()) if w and w not in VENDOR_WORDS]
    for word in words:
        if re.fullmatch(r"[a-z]+[0-9]+[a-z]*", word):
            return word[:40]
    return "-".join(words)[:40].strip("-") or "cpu"


def default_name(machine_info: dict[str, Any]) -> str:
    return f"{card_name(machine_info.get('gpu_name'))}-x{machine_info.get('world_size')}"


def baseline_dir(machine_info: dict[str, Any], root: str = DEFAULT_ROOT, name: str | None = None) -> str:
    """ROOT/<card>-x<N>/baseline: the folder of launch-<k> run directories."""
    return os.path.join(root, name or default_name(machine_info), BASELINE_DIR)


def run_files(spec: str) -> list[str]:
    """The results.json files that a comma-separated list of runs names: a run directory, a
    results.json, or a folder whose subfolders are run directories. SchemaError if none."""
    paths: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if os.path.isfile(os.path.join(item, RESULTS_FILE)):
            paths.append(os.path.join(item, RESULTS_FILE))
        elif os.path.isdir(item):
            found = sorted(os.path.join(item, sub, RESULTS_FILE) for sub in os.listdir(item)
                           if os.path.isfile(os.path.join(item, sub, RESULTS_FILE)))
            if not found:
                raise schema.SchemaError(f"{item}: no results.json in it or in its subfolders")
            paths += found
        else:
            paths.append(item)  # schema.load names what is wrong with it
    if not paths:
        raise schema.SchemaError(f"{spec!r} names no run")
    return paths


def _load_all(spec: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        loaded = [(path, schema.load(path)) for path in run_files(spec)]
        launches.refuse_repeats([(path, doc, "the baseline") for path, doc in loaded])
        return loaded
    except schema.SchemaError as err:
        raise ConfigError(str(err)) from None


def _check(launches: list[tuple[str, dict[str, Any]]], allow_few: bool) -> None:
    for path, doc in launches:
        if not doc["agrs_bench"].get("complete", True):
            missing = doc["agrs_bench"].get("missing_cells", [])
            run = os.path.dirname(path)
            raise ConfigError(f"run {run!r} is incomplete ({len(missing)} cell(s) missing); "
                              f"finish it with `python -m agrs_bench.run --resume {run}` first")
    if len(launches) < MIN_LAUNCHES and not allow_few:
        raise ConfigError(f"a baseline needs at least {MIN_LAUNCHES} launches to show launch-to-launch "
                          f"noise, got {len(launches)}; add launches or pass --allow-few")
    first_path, first = launches[0]
    for path, doc in launches[1:]:
        for key in ("gpu_name", "world_size", "layout"):
            if doc["machine_info"].get(key) != first["machine_info"].get(key):
                raise ConfigError(f"launches differ in {key}: {first_path!r} has "
                                  f"{first['machine_info'].get(key)!r}, {path!r} has {doc['machine_info'].get(key)!r}")


def baseline_readme(launches: list[tuple[str, dict[str, Any]]]) -> str:
    """What the baseline is: command, launches with commit, card, GPU count and date."""
    lines = [f"# {BASELINE_DIR}", "", f"Kept by `{PROG}` from {len(launches)} launch(es); "
             "`agrs-bench compare` and scripts/nightly.sh gate against every launch here.", "",
             "| launch | commit | card | GPUs | date | complete |", "| --- | --- | --- | --- | --- | --- |"]
    for k, (_, doc) in enumerate(launches, start=1):
        info, commit = doc["machine_info"], doc.get("commit_info") or {}
        lines.append(f"| launch-{k} | {commit.get('id') or 'unknown'} | {info.get('gpu_name') or 'cpu'} "
                     f"| {info.get('world_size')} | {str(doc.get('datetime'))[:19]} "
                     f"| {doc['agrs_bench'].get('complete', True)} |")
    return "\n".join(lines) + "\n"


def keep(runs: str, name: str | None = None, *, root: str = DEFAULT_ROOT, force: bool = False,
         allow_few: bool = False) -> str:
    """Copy every named launch to ROOT/NAME/baseline/launch-<k>/results.json; returns the folder."""
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise ConfigError(f"baseline name {name[:60]!r} must be letters, digits, '.', '_' or '-' "
                          "(at most 100)")
    launches = _load_all(runs)
    _check(launches, allow_few)
    folder = baseline_dir(launches[0][1]["machine_info"], root, name)
    if os.path.exists(folder) and not force:
        raise ConfigError(f"baseline {folder!r} already exists; pass --force to replace it")
    parent = os.path.dirname(folder)
    made = [p for p in (os.path.dirname(parent), parent) if not os.path.lexists(p)]
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".baseline-", dir=parent)
        try:
            for k, (_, doc) in enumerate(launches, start=1):
                os.makedirs(os.path.join(staging, f"launch-{k}"))
                write_atomic(os.path.join(staging, f"launch-{k}", RESULTS_FILE), json.dumps(doc, indent=1) + "\n")
            write_atomic(os.path.join(staging, README), baseline_readme(launches))
            card_readme = os.path.join(parent, README)
            if not os.path.exists(card_readme):  # a results folder says what it holds (a repository test)
                write_atomic(card_readme, f"# {os.path.basename(parent)}\n\n`{BASELINE_DIR}/`: the gate's baseline "
                                          f"for this card and GPU count, kept by `{PROG}` (its README names "
                                          "the commit of every launch).\n")
            if os.path.exists(folder):
                old = folder + ".old"
                os.replace(folder, old)
                os.replace(staging, folder)
                shutil.rmtree(old)
            else:
                os.replace(staging, folder)
        finally:
            if os.path.exists(staging):
                shutil.rmtree(staging)
    except OSError as err:
        for created in reversed(made):  # a refusal leaves no empty folders behind
            if os.path.isdir(created) and not os.listdir(created):
                os.rmdir(created)
        raise ConfigError(f"baseline folder {parent!r} is not writable ({err.strerror})") from None
    return folder


@cli_entry(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("runs", help="finished launches: run dirs, results.json files or a folder of "
                                     "run dirs, comma-separated")
    parser.add_argument("name", nargs="?", help="baseline name (default <card>-x<N>)")
    parser.add_argument("--dir", default=DEFAULT_ROOT,
                        help="root holding <name>/baseline/launch-<k> (default results)")
    parser.add_argument("--force", action="store_true", help="replace an existing baseline")
    parser.add_argument("--allow-few", action="store_true",
                        help=f"keep fewer than {MIN_LAUNCHES} launches (the gate then cannot see launch noise)")
    parser.add_argument("--path-only", action="store_true", help="print the runs' baseline folder; write nothing")
    args = parser.parse_args(argv)
    if args.path_only:
        print(baseline_dir(_load_all(args.runs)[0][1]["machine_info"], args.dir, args.name))
    else:
        print(keep(args.runs, args.name, root=args.dir, force=args.force, allow_few=args.allow_few))
    return 0


if __name__ == "__main__":
    sys.exit(main())
