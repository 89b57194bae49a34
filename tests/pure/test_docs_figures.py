"""Every figure in README.md, docs/*.md and results/**/README.md that names its committed file is recomputed from it.

A checked figure is a markdown link whose target is the committed results.json and whose title
says how to recompute it, e.g.

    [1.09-1.20](results/h200-x4/single-launch-2026-11-27/results.json "range speedup_vs_single_comm
    ag_rs dense global_state,pg_collection 64MiB-1GiB")   (on one line)

- `range FIELD MODES BUFFER SOURCES SIZES [OPTIONS [EXEC]]`: the link text holds "low-high", the
  minimum and maximum of FIELD over the eager default-options cells (or OPTIONS / EXEC) of those
  modes and sources (comma lists) and sizes (one size or FIRST-LAST, inclusive);
- `value FIELD MODE BUFFER SOURCE SIZE [OPTIONS [EXEC]]`: one number;
- `gate_count BASE HEAD VERDICT`, `gate_range BASE HEAD VERDICT`, `gate_quiet BASE HEAD`: today's
  gate (agrs_bench.gate.verdicts) over the launch folders BASE and HEAD (comma lists, beside the
  linked README): how many cells got VERDICT, their head/base − 1 in percent (low to high), the
  smallest quiet threshold in percent (the search runs from 0.1% to 99.9%);
- `column NAME FIRST-LAST`: the linked log's tables with a NAME column: its minimum and maximum,
  in percent, over the rows whose first column (MiB) lies in FIRST..LAST;
- `study FIELD SIZE COPIER`, `study_range FIELD SIZE COPIERS`: a study.json of
  scripts/sm_contention_study.py: FIELD's point and 95% interval for one copier at SIZE (three
  numbers), or the minimum and maximum point over the copiers (comma list).

FIELD is an extra_info key or `median_s`; a `*1e3` suffix scales (seconds to ms). Each number of
the link text must equal the recomputed one rounded to the digits it shows, so README and the
files cannot drift apart. Pure: reads files only.
"""

from __future__ import annotations

import glob
import json
import os
import re

import pytest

from agrs_bench.config.run_config import parse_size
from tests.pure.test_repository_readme import ROOT

RECIPES = r"range|value|gate_count|gate_range|gate_quiet|column|study|study_range"
LINK = re.compile(r'\[([^\]]+)\]\(([^)\s]+) "((?:' + RECIPES + r') [^"]+)"\)')
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))) \
    + sorted(os.path.relpath(p, ROOT)
             for p in glob.glob(os.path.join(ROOT, "results", "**", "README.md"), recursive=True))


def checked_figures() -> list[tuple[str, str, str, str]]:
    """(doc, link text, file, recipe) of every checked figure."""
    found = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
            text = f.read()
        for shown, target, recipe in LINK.findall(text):
            found.append((doc, shown, os.path.normpath(os.path.join(os.path.dirname(doc), target)), recipe))
    return found


def _sizes(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    return parse_size(first), parse_size(last or first)


def _values(doc: dict, field: str, mode: str, buffer: str, sources: str, sizes: str,
            options: str = "default", exec_mode: str = "eager") -> list[float]:
    scale = 1.0
    if "*" in field:
        field, factor = field.split("*")
        scale = float(factor)
    low, high = _sizes(sizes)
    values = []
    for bench in doc["benchmarks"]:
        p = bench["params"]
        if p["mode"] in mode.split(",") and p["buffer"] == buffer and p["source"] in sources.split(",") \
                and low <= int(p["size_bytes"]) <= high and p.get("nccl_options", "default") == options \
                and p.get("exec", "eager") == exec_mode:
            value = bench["stats"]["median"] if field == "median_s" else bench["extra_info"][field]
            values.append(value * scale)
    assert values, f"no cell matches {field} {mode} {buffer} {sources} {sizes} {options} {exec_mode}"
    return values


def _agrees(shown: str, value: float) -> bool:
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return round(value, decimals) == pytest.approx(float(shown), abs=1e-9)


def _gate(folder: str, base: str, head: str):
    from agrs_bench.gate import verdicts

    def side(names: str) -> list[dict]:
        out = []
        for name in names.split(","):
            with open(os.path.join(ROOT, folder, name, "results.json"), encoding="utf-8") as f:
                out.append(json.load(f))
        return out

    return verdicts, verdicts.compare(side(base), side(head))


def _column(target: str, name: str, sizes: str) -> list[float]:
    first, last = (float(x) for x in sizes.split("-"))
    values, index = [], None
    with open(os.path.join(ROOT, target), encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if name in words:
                index = words.index(name)
            elif index is not None and len(words) > index and NUMBER.fullmatch(words[0]):
                if first <= float(words[0]) <= last:
                    values.append(float(words[index]) * 100)
            else:
                index = None
    assert values, f"{target} has no {name} rows for {sizes} MiB"
    return [min(values), max(values)]


def _study(target: str, kind: str, field: str, size: str, copiers: str) -> list[float]:
    scale = 1.0
    if "*" in field:
        field, factor = field.split("*")
        scale = float(factor)
    with open(os.path.join(ROOT, target), encoding="utf-8") as f:
        (found,) = [s["figures"] for s in json.load(f)["sizes"] if s["size_bytes"] == parse_size(size)]
    rows = [found[name][field] for name in copiers.split(",")]
    if kind == "study":
        (row,) = rows
        return [v * scale for v in (row["point"], *row["ci"])]
    points = [row["point"] * scale for row in rows]
    return [min(points), max(points)]


def recompute(target: str, recipe: str) -> list[float]:
    kind, *args = recipe.split()
    if kind.startswith("study"):
        return _study(target, kind, *args)
    if kind.startswith("gate_"):
        verdicts, cells = _gate(os.path.dirname(target), args[0], args[1])
        if kind == "gate_quiet":
            return [max(verdicts.quiet_threshold(cells), 0.001) * 100]
        picked = [(c.ratio - 1) * 100 for c in cells if c.verdict == args[2]]
        if kind == "gate_count":
            return [float(len(picked))]
        return [min(picked), max(picked)] if len(picked) > 1 else picked
    if kind == "column":
        return _column(target, *args)
    with open(os.path.join(ROOT, target), encoding="utf-8") as f:
        doc = json.load(f)
    values = _values(doc, *args)
    if kind == "range":
        return [min(values), max(values)]
    assert len(values) == 1, f"{recipe!r} matches {len(values)} cells, not one"
    return values


def test_readme_and_docs_carry_checked_figures():
    assert len(checked_figures()) >= 10


@pytest.mark.parametrize("doc, shown, target, recipe", checked_figures(),
                         ids=lambda x: x if len(str(x)) < 40 else None)
def test_figure_recomputes_from_its_committed_file(doc, shown, target, recipe):
    assert os.path.isfile(os.path.join(ROOT, target)), f"{doc}: {target} is not a committed file"
    # A hyphen or dash between two digits separates a range; any other minus is a sign.
    numbers = NUMBER.findall(re.sub(r"(?<=\d)[-–](?=\d)", " ", shown.replace("−", "-")))
    expected = recompute(target, recipe)
    assert len(numbers) == len(expected), f"{doc}: {shown!r} should show {len(expected)} number(s)"
    for text, value in zip(numbers, expected):
        assert _agrees(text, value), f"{doc}: {shown!r} but {target} gives {expected} ({recipe})"


def test_a_figure_that_drifted_from_its_file_fails():
    target = "results/h200-x4/single-launch-2026-11-27/results.json"
    low, high = recompute(target, "range speedup_vs_single_comm ag_rs dense global_state,pg_collection 64MiB-1GiB")
    assert _agrees("1.09", low) and _agrees("1.20", high)
    assert not _agrees("1.33", high)  # what README said before it was recomputed


def test_a_study_figure_is_recomputed_from_its_study_json():
    target = "results/studies/sm-contention/study.json"
    point, low, high = recompute(target, "study gemm_slowdown 256MiB ce")
    assert _agrees("1.050", point) and _agrees("1.049", low) and _agrees("1.051", high)
    assert not _agrees("1.045", point)  # the SM copy of 132 CTAs, not the copy engine
    assert [round(v, 3) for v in recompute(target, "study_range gemm_slowdown 256MiB sm1,sm132")] == [1.023, 1.045]
