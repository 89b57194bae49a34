"""--resume: a changed configuration is named by its first difference; a partial last line of
cells.jsonl is dropped before appending."""

import json

import pytest

from agrs_bench.config.cli import parse_run_args
from agrs_bench.errors import ConfigError
from agrs_bench.results import resume


def _cfg(*argv, world=2):
    return parse_run_args(list(argv), world_size=world, backend="gloo")


def test_resume_names_the_first_difference(tmp_path):
    old = _cfg("--sizes", "4KiB", "--out", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(old.record()))
    same_but_timeout = _cfg("--sizes", "4KiB", "--resume", str(tmp_path), "--timeout", "5")
    assert resume.finished_cells(same_but_timeout) == []
    with pytest.raises(ConfigError, match=r"num_samples was 6, now 9"):
        resume.finished_cells(_cfg("--sizes", "4KiB", "--resume", str(tmp_path), "--iters", "9"))


def test_partial_last_line_is_dropped_before_appending(tmp_path):
    from agrs_bench.results import files as results
    cell = json.dumps(results.make_benchmark(
        {"mode": "ag", "buffer": "dense", "source": "single_comm", "size_bytes": 4096, "dtype": "bf16",
         "world_size": 2, "group_size": 2}, [1e-3], 1, {}, {}))
    (tmp_path / "cells.jsonl").write_text(cell + '\n{"b": ')
    assert len(results.read_cells(str(tmp_path))) == 1
    results.drop_partial_line(str(tmp_path))
    assert (tmp_path / "cells.jsonl").read_text() == cell + "\n"
