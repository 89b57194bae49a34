"""Bad input, table-driven: each case exits 2 with one stderr line naming the value, prints no
traceback and leaves no new file behind. `run` cases go through the self-launch path
(`python -m agrs_bench.run`), whose parent checks everything before it launches a rank; they run
in-process (main(argv), SystemExit caught), so an exception other than exit 2 fails the test.
(One case through a real process: tests/gloo/test_commands_bad_input.py.)"""

import json
import os

import pytest

from agrs_bench import __main__ as entry
from agrs_bench.config.cli import parse_run_args
from agrs_bench.results import files as results_files
from agrs_bench.results.schema import SCHEMA_VERSION
from tests.support.launch import FAST

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _run_dir(tmp, sizes="4KiB", complete=False):
    """A run directory as a failed run leaves it: config.json and, if asked, a complete results.json."""
    cfg = parse_run_args([*FAST, "--sizes", sizes], world_size=2, backend="gloo")
    _write(tmp / "old" / "config.json", json.dumps(cfg.record()))
    if complete:
        doc = {"machine_info": {}, "commit_info": {}, "benchmarks": [], "datetime": "x", "version": "5",
               "agrs_bench": {"schema_version": SCHEMA_VERSION, "complete": True, "missing_cells": [], "config": {}}}
        _write(tmp / "old" / "results.json", json.dumps(doc))
        _write(tmp / "old" / "cells.jsonl", "".join(json.dumps(_cell(c.params())) + "\n" for c in cfg.cells()))
    return tmp / "old"


def _cell(params, world=2):
    # An fsdp_step cell carries its compute-only and comm-only samples (its measures need them).
    parts = {"compute_only_data": [5e-4, 6e-4], "comm_only_data": [4e-4, 5e-4]} if params["mode"] == "fsdp_step" else {}
    return results_files.make_benchmark(dict(params, world_size=world, group_size=world), [1e-3, 2e-3],
                                        1, parts, {})


def _results(tmp, text):
    _write(tmp / "bad" / "results.json", text)
    return tmp / "bad"


VALID_DOC = {"machine_info": {}, "commit_info": {}, "benchmarks": [], "datetime": "x", "version": "5",
             "agrs_bench": {"schema_version": SCHEMA_VERSION, "complete": False, "missing_cells": ["ag-dense-x-4KiB"],
                            "config": {}}}

# (command, argv with {tmp} for the test's folder, setup(tmp) or None, text the message must hold)
CASES = {
    "unknown mode": ("run", ["--modes", "ag,allreduce"], None, "'allreduce'"),
    "unknown source": ("run", ["--sources", "megatron"], None, "'megatron'"),
    "unknown buffer": ("run", ["--buffers", "sparse"], None, "'sparse'"),
    "unknown flag": ("run", ["--frobnicate"], None, "--frobnicate"),
    "unparsable size": ("run", ["--sizes", "lots"], None, "'lots'"),
    "zero size": ("run", ["--sizes", "0"], None, "size '0' must be positive"),
    "negative size": ("run", ["--sizes=-4KiB"], None, "'-4KiB'"),
    "bad size range": ("run", ["--sizes", "1MiB:1KiB:x2"], None, "'1MiB:1KiB:x2'"),
    "size beyond free memory": ("run", ["--sizes", "512GiB"], None, "--sizes 512GiB needs about"),
    "step size beyond free memory": ("run", ["--modes", "fsdp_step", "--step-sizes", "64GiB",
                                              "--layers", "64"], None, "--step-sizes 64GiB with --layers 64"),
    "zero iterations": ("run", ["--iters", "0"], None, "got 0"),
    "negative warmup": ("run", ["--warmup", "-1"], None, "-1"),
    "zero timeout": ("run", ["--timeout", "0"], None, "got 0"),
    "unknown dtype": ("run", ["--dtype", "fp8"], None, "'fp8'"),
    "bad gemm": ("run", ["--gemm", "12x12"], None, "'12x12'"),
    "invalid order": ("run", ["--order", "tp-xp-dp"], None, "'xp'"),
    "layout does not fit the world": ("run", ["--tp", "3"], None, "tp*cp*pp"),
    "world size mismatch": ("run", ["--world-size", "3"], None, "--world-size 3"),
    "rank offset in a run": ("run", ["--rank-offset", "2"], None, "--rank-offset 2"),
    "malformed TOML": ("run", ["--config", "{tmp}/c.toml"],
                       lambda t: _write(t / "c.toml", "sizes = [unclosed\n"), "not valid TOML"),
    "TOML unknown key": ("run", ["--config", "{tmp}/c.toml"],
                         lambda t: _write(t / "c.toml", 'sizez = "4KiB"\n'), "unknown key 'sizez'"),
    "TOML wrong type": ("run", ["--config", "{tmp}/c.toml"],
                        lambda t: _write(t / "c.toml", 'iters = "many"\n'), "'iters' = 'many'"),
    "TOML missing file": ("run", ["--config", "{tmp}/none.toml"], None,
                          "none.toml: cannot read (No such file or directory)"),
    "TOML bad value": ("run", ["--config", "{tmp}/c.toml"],
                       lambda t: _write(t / "c.toml", 'modes = ["ag", "bogus"]\n'), "'bogus'"),
    "out is a file": ("run", ["--out", "{tmp}/f"], lambda t: _write(t / "f", "x"), "not a directory"),
    "out below a file": ("run", ["--out", "{tmp}/f/run"], lambda t: _write(t / "f", "x"),
                         "is not writable"),
    "out already holds a run": ("run", ["--out", "{tmp}/old"], _run_dir, "already holds a run"),
    "resume of no run": ("run", ["--resume", "{tmp}/empty"], lambda t: (t / "empty").mkdir(),
                         "holds no run"),
    "resume of a missing folder": ("run", ["--resume", "{tmp}/nowhere"], None, "is not a directory"),
    "resume with another config": ("run", ["--resume", "{tmp}/old", "--sizes", "8KiB"], _run_dir,
                                   "sizes_bytes was [4096], now [8192]"),
    "resume of a complete run": ("run", ["--resume", "{tmp}/old", "--sizes", "4KiB"],
                                 lambda t: _run_dir(t, complete=True), "already complete"),
    "resume and out disagree": ("run", ["--resume", "{tmp}/old", "--out", "{tmp}/other"], _run_dir,
                                "name different run directories"),
    "topology layout": ("topology", ["--world-size", "8", "--tp", "3"], None, "tp*cp*pp"),
    "topology no world size": ("topology", ["--tp", "2"], None, "--world-size"),
    "report missing folder": ("report", ["{tmp}/nowhere"], None, "nowhere"),
    "report no results": ("report", ["{tmp}/e"], lambda t: (t / "e").mkdir(), "no such file"),
    "report empty file": ("report", ["{tmp}/bad"], lambda t: _results(t, ""), "file is empty"),
    "report truncated": ("report", ["{tmp}/bad"], lambda t: _results(t, json.dumps(VALID_DOC)[:40]),
                         "not valid JSON"),
    "report not JSON": ("report", ["{tmp}/bad"], lambda t: _results(t, "<html>oops</html>"),
                        "not valid JSON"),
    "report wrong schema": ("report", ["{tmp}/bad"], lambda t: _results(t, '{"benchmarks": []}'),
                            "no 'machine_info' key"),
    "report stats lacking a field": ("report", ["{tmp}/bad"], lambda t: _results(t, json.dumps(dict(
        VALID_DOC, benchmarks=[{"name": "x", "extra_info": {}, "stats": {"data": [1.0]},
                                "params": {"mode": "ag", "buffer": "dense", "source": "single_comm",
                                           "size_bytes": 4096, "dtype": "bf16", "world_size": 2,
                                           "group_size": 2}}]))),
        "benchmarks[0].stats lacks 'min'"),
    "report list": ("report", ["{tmp}/bad"], lambda t: _results(t, "[1, 2]"), "top level is list"),
    "report old schema": ("report", ["{tmp}/bad"], lambda t: _results(
        t, json.dumps(dict(VALID_DOC, agrs_bench={"schema_version": 0}))), "schema_version is 0"),
    "baseline incomplete run": ("baseline", ["{tmp}/bad", "nightly", "--dir", "{tmp}/b"],
                                lambda t: _results(t, json.dumps(VALID_DOC)), "is incomplete"),
    "baseline exists": ("baseline", ["{tmp}/bad", "nightly", "--dir", "{tmp}/b", "--allow-few"], lambda t: (
        _results(t, json.dumps(dict(VALID_DOC, agrs_bench=dict(VALID_DOC["agrs_bench"], complete=True)))),
        _write(t / "b" / "nightly" / "baseline" / "launch-1" / "results.json", "{}")),
        "already exists; pass --force"),
    "baseline of one launch": ("baseline", ["{tmp}/bad", "nightly", "--dir", "{tmp}/b"], lambda t: (
        _results(t, json.dumps(dict(VALID_DOC, agrs_bench=dict(VALID_DOC["agrs_bench"], complete=True))))),
        "needs at least 3 launches"),
    "baseline bad name": ("baseline", ["{tmp}/bad", "../x"], lambda t: _results(t, json.dumps(VALID_DOC)),
                          "'../x'"),
    "graph on gloo": ("run", ["--graph"], None, "--graph needs CUDA and NCCL"),
    "NCCL options on gloo": ("run", ["--ag-nccl-options", "high_priority"], None, "NCCL options need the nccl"),
    "NCCL option sweep on gloo": ("run", ["--sweep-nccl-options"], None, "NCCL options need the nccl"),
    "unknown NCCL option": ("run", ["--rs-nccl-options", "max_ctaz=4"], None, "'max_ctaz=4'"),
    "NCCL option not an integer": ("run", ["--ag-nccl-options", "max_ctas=lots"], None, "'lots'"),
    "NCCL min above max": ("run", ["--ag-nccl-options", "min_ctas=8,max_ctas=4"], None, "min_ctas=8 > max_ctas=4"),
    "CTA policy on gloo": ("run", ["--ag-nccl-options", "cta_policy=zero"], None, "NCCL options need the nccl"),
    "registration on gloo": ("run", ["--rs-nccl-options", "registration=ub"], None, "NCCL options need the nccl"),
    "low-contention style on gloo": ("run", ["--issue", "low_contention"], None, "low_contention needs CUDA and NCCL"),
    "unknown CTA policy": ("run", ["--ag-nccl-options", "cta_policy=fast"], None, "cta_policy='fast'"),
    "compare missing run": ("compare", ["{tmp}/nowhere", "{tmp}/nowhere2"], None, "nowhere"),
    "compare empty file": ("compare", ["{tmp}/bad", "{tmp}/bad"], lambda t: _results(t, ""), "file is empty"),
    "compare truncated": ("compare", ["{tmp}/bad", "{tmp}/bad"],
                          lambda t: _results(t, json.dumps(VALID_DOC)[:40]), "not valid JSON"),
    "compare not JSON": ("compare", ["{tmp}/bad", "{tmp}/bad"], lambda t: _results(t, "<html/>"),
                         "not valid JSON"),
    "compare wrong schema": ("compare", ["{tmp}/bad", "{tmp}/bad"],
                             lambda t: _results(t, '{"benchmarks": []}'), "no 'machine_info' key"),
}


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root)
                  for f in files + dirs)


def _argv(case, tmp_path):
    command, argv, setup, needle = CASES[case]
    if setup:
        setup(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if command == "run":
        out = [] if any(a in ("--out", "--resume") for a in argv) else ["--out", str(tmp_path / "run")]
        argv = [*out, *FAST, *argv]
    if command == "compare":
        argv = [*argv, "--out", str(tmp_path / "cmp")]
    return [command, *argv], needle


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys, monkeypatch):
    argv, needle = _argv(case, tmp_path)
    before = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in ("RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as info:
        entry.main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2, lines
    assert len(lines) == 1, lines
    assert needle in lines[0], lines[0]
    assert _tree(tmp_path) == before


def test_at_least_twenty_distinct_cases():
    assert len(CASES) >= 20
