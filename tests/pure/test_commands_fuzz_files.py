"""Property-based: malformed documents derived from a real results.json, cells.jsonl and
config.json, fed to every reader (schema, resume, report, compare, baseline) in-process. Each
either refuses with exit 2 / ConfigError / SchemaError, or gives an answer; never a traceback.
Derandomized with a fixed number of examples, so CI sees the same cases every time."""

import copy
import json
import math
import os
import tempfile

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from agrs_bench import compare  # noqa: E402
from agrs_bench.analysis import summary  # noqa: E402
from agrs_bench.config.cli import parse_run_args  # noqa: E402
from agrs_bench.errors import ConfigError  # noqa: E402
from agrs_bench.render import report  # noqa: E402
from agrs_bench.results import baseline, schema  # noqa: E402
from tests.support import synthetic  # noqa: E402

SETTINGS = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
BASE_DOC = synthetic.launch(num_samples=3, modes=("ag", "rs", "ag_rs"))
OTHER_LAUNCH = synthetic.launch(num_samples=3, modes=("ag", "rs", "ag_rs"), seed=1)
"""The gate's other side: another launch (the same launch on both sides is refused)."""
BASE_CONFIG = parse_run_args(["--sizes", "4KiB,8KiB"], world_size=2, backend="gloo").record()

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.sampled_from([0, -1, 0.0, -0.0, -1e-9, float("nan"), float("inf"), float("-inf"), 1e308]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.just([]), st.just({}), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                                    st.integers(), max_size=2))


def _paths(value, prefix=()):
    """Every (container path) in a JSON value, leaves and containers alike."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value[:4]):  # the first few items of long lists (samples)
            yield from _paths(child, (*prefix, i))


def _mutations(base):
    paths = [p for p in _paths(base) if p]
    return st.lists(st.tuples(st.sampled_from(paths), st.sampled_from(["set", "delete", "add"]), ODD_VALUES),
                    min_size=1, max_size=3)


def _apply(base, mutations):
    doc = copy.deepcopy(base)
    for path, action, value in mutations:
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            key = path[-1]
            if action == "set":
                parent[key] = value
            elif action == "delete":
                del parent[key]
            elif isinstance(parent, dict):
                parent[f"extra_{len(parent)}"] = value
            else:
                parent.append(value)
        except (KeyError, IndexError, TypeError):
            pass  # the path no longer exists after an earlier mutation
    return doc


def _write(folder, doc):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as fh:
        json.dump(doc, fh)  # NaN and Infinity as JSON's common extension, as Python writes them


def _exit_code(main, argv):
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@SETTINGS
@given(mutations=_mutations(BASE_DOC))
def test_results_documents(mutations):
    doc = _apply(BASE_DOC, mutations)
    try:
        schema.validate(doc, "fuzz")
        valid = True
    except schema.SchemaError as err:
        assert str(err).startswith("fuzz: ") and "\n" not in str(err)
        valid = False
    with tempfile.TemporaryDirectory() as tmp:
        good, bad = os.path.join(tmp, "good"), os.path.join(tmp, "bad")
        _write(good, OTHER_LAUNCH)
        _write(bad, doc)
        status = _exit_code(compare.main, [good, bad, "--out", os.path.join(tmp, "cmp"), "--no-plots"])
        assert status in ((0, 1, 3) if valid else (2,))
        try:
            path = baseline.keep(bad, "fuzz", root=os.path.join(tmp, "b"), allow_few=True)
            assert valid and os.path.exists(path)
        except ConfigError:
            pass
        if valid:  # the report and its summary are answers, computed without a traceback
            report.render(doc)
            summary.of(doc)
        else:
            assert not os.path.exists(os.path.join(tmp, "cmp"))


@SETTINGS
@given(text=st.text(max_size=40), cut=st.integers(min_value=0, max_value=4000),
       flips=st.lists(st.tuples(st.integers(min_value=0, max_value=4000), st.integers(0, 255)), max_size=4))
def test_results_bytes(text, cut, flips):
    raw = bytearray(json.dumps(BASE_DOC).encode())
    for at, byte in flips:
        raw[at % len(raw)] = byte
    raw = bytes(raw[:len(raw) - cut]) + text.encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "results.json")
        with open(path, "wb") as fh:
            fh.write(raw)
        try:
            schema.load(path)
        except schema.SchemaError as err:
            assert str(err).startswith(path)
        assert _exit_code(report.main, [tmp]) in (0, 2)


CELL_LINES = [json.dumps(b) for b in BASE_DOC["benchmarks"][:3]]


@SETTINGS
@given(mutations=_mutations(BASE_DOC["benchmarks"][0]), garbage=st.binary(max_size=20),
       where=st.integers(min_value=0, max_value=3))
def test_cells_lines(mutations, garbage, where):
    cell = _apply(BASE_DOC["benchmarks"][0], mutations)
    lines = [line.encode() for line in CELL_LINES]
    lines.insert(where, json.dumps(cell).encode())
    lines.insert(where, garbage.replace(b"\n", b" "))
    try:
        cells, warnings = schema.parse_cells(b"\n".join(lines) + b"\n", "cells.jsonl")
    except schema.SchemaError as err:
        assert str(err).startswith("cells.jsonl line ")
        return
    assert len(cells) + len(warnings) <= len(lines)
    assert all(w.startswith("cells.jsonl line ") for w in warnings)
    for c in cells:
        schema.cell_key(c["params"])
        assert all(math.isfinite(x) and x > 0 for x in c["stats"]["data"])


@SETTINGS
@given(mutations=_mutations(BASE_CONFIG))
def test_config_records(mutations):
    """What --resume reads: refused as bad input, or a configuration the run can use."""
    record = _apply(BASE_CONFIG, mutations)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "config.json"), "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        from agrs_bench.results import resume
        try:
            cfg = parse_run_args(["--resume", tmp], world_size=2, backend="gloo", stored=resume.stored_for_flags)
        except ConfigError as err:
            assert "\n" not in str(err)
            return
        assert cfg.resume and cfg.cells()
