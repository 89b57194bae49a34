"""One whole run times both issue styles (role_streams, megatron_fsdp) with checked outputs (the
cells and files: tests/pure/test_config_issue_styles.py)."""

import json

from tests.support import launch


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
