"""The `issue` cell parameter: role_streams (default) and megatron_fsdp (Megatron-FSDP's async AG
and RS in coalescing managers). Outputs of the megatron_fsdp style on every source and layout are
checked in tests/gloo/test_groups_megatron_core.py; here: the cells and the files (one whole
run: tests/gloo/test_run_issue_styles.py)."""


import pytest

from agrs_bench.config.cli import parse_run_args
from agrs_bench.errors import ConfigError
from agrs_bench.results import schema


def test_issue_styles_multiply_collective_cells_only():
    cfg = parse_run_args(["--issue", "role_streams,megatron_fsdp", "--sizes", "4KiB", "--buffers", "dense",
                          "--sources", "single_comm"], world_size=2, backend="gloo")
    cells = cfg.cells()
    by_mode = {}
    for cell in cells:
        by_mode.setdefault(cell.mode, []).append(cell.issue)
    assert by_mode["ag_rs"] == ["role_streams", "megatron_fsdp"]
    assert by_mode["fsdp_step"] == ["role_streams", "megatron_fsdp"]  # the step takes the style too
    assert cells[1].name == "ag-dense-single_comm-4KiB-megatron_fsdp"
    assert cfg.record()["issues"] == ["role_streams", "megatron_fsdp"]


def test_default_issue_is_role_streams_and_old_files_read_the_same():
    cfg = parse_run_args([], world_size=2, backend="gloo")
    assert {c.issue for c in cfg.cells()} == {"role_streams"}
    old = {"mode": "ag", "buffer": "dense", "source": "single_comm", "size_bytes": 4096, "dtype": "bf16"}
    assert schema.cell_key(old) == schema.cell_key(dict(old, issue="role_streams"))
    assert schema.cell_id(dict(old, issue="role_streams")) == "ag-dense-single_comm-4KiB"


def test_unknown_issue_style_names_the_value():
    with pytest.raises(ConfigError, match="unknown issue style 'nccl_magic'"):
        parse_run_args(["--issue", "nccl_magic"], world_size=2, backend="gloo")
