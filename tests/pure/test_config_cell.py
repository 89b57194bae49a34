"""The typed Cell: frozen, and its key, name and params are what results files have always held."""

import dataclasses

import pytest

from agrs_bench.config.cell import Cell
from agrs_bench.config.cli import parse_run_args
from agrs_bench.results import schema


def test_cell_is_frozen_and_keyword_only():
    cell = Cell(mode="ag", buffer="dense", source="single_comm", size_bytes=4096, dtype="bf16")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.mode = "rs"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Cell("ag", "dense", "single_comm", 4096, "bf16")  # type: ignore[misc]


def test_key_name_and_params_match_what_files_store():
    cfg = parse_run_args(["--sizes", "4KiB", "--issue", "role_streams,megatron_fsdp", "--graph"],
                         world_size=2, backend="nccl")
    cells = cfg.cells()
    assert len({c.key for c in cells}) == len(cells)
    for cell in cells:
        params = cell.params()
        assert list(params) == ["mode", "buffer", "source", "size_bytes", "dtype", "exec", "nccl_options", "issue"]
        stored = dict(params, world_size=2, group_size=2)
        assert cell.key == schema.cell_key(stored)
        assert cell.name == schema.cell_id(stored)
        assert schema.cell_key({k: v for k, v in stored.items() if v not in ("eager", "default", "role_streams")}) \
            == cell.key  # an older file without the optional params matches the same cell


def test_the_literal_choices_are_the_vocabulary():
    from typing import get_args

    from agrs_bench.config import cell
    from agrs_bench.vocab import ALL_MODES, ISSUE_STYLES, SOURCES

    assert get_args(cell.Mode) == ALL_MODES
    assert get_args(cell.Source) == SOURCES
    assert get_args(cell.Issue) == ISSUE_STYLES
