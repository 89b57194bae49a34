"""The `issue` cell parameter: role_streams (default) and megatron_fsdp (Megatron-FSDP's async AG
and RS in coalescing managers). Outputs of the megatron_fsdp style on every source and layout are
checked in tests/test_megatron_core.py; here: the cells, the files and one whole run."""

import json

import pytest

from agrs_bench.config.cli import parse_run_args
from agrs_bench.errors import ConfigError
from agrs_bench.results import schema
from tests import launch


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


@pytest.mark.gloo
def test_run_times_both_issue_styles_with_checked_outputs(tmp_path):
    out = tmp_path / "run"
    done = launch.run(launch.torchrun_cmd(
        2, "--out", str(out), *launch.FAST, "--modes", "ag,rs,ag_rs", "--sizes", "4KiB",
        "--sources", "single_comm,pg_collection", "--issue", "role_streams,megatron_fsdp", "--no-reference"))
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    cells = {b["name"]: b for b in doc["benchmarks"]}
    assert len(cells) == 3 * 2 * 2 * 2  # modes x buffers x sources x issue styles
    styled = cells["agrs[ag_rs-dense-pg_collection-4KiB-megatron_fsdp]"]
    assert styled["params"]["issue"] == "megatron_fsdp" and styled["extra_info"]["checked"]
    assert styled["extra_info"]["rs_reduce_op"] == "avg"  # gloo has ReduceOp.AVG in torch 2.13
    assert "speedup_vs_single_comm" in styled["extra_info"]  # against single_comm in the same style
    assert cells["agrs[ag_rs-dense-single_comm-4KiB]"]["extra_info"]["ag_shares_rs_comm"] is True
    assert styled["extra_info"]["ag_shares_rs_comm"] is False
    # 2 ranks: ep = 1, so pg_collection's expert AG shares expt_dp, as in Megatron.
    assert cells["agrs[ag_rs-expert-pg_collection-4KiB]"]["extra_info"]["ag_shares_rs_comm"] is True
