"""Nothing in a run assumes 4 or fewer ranks: 8 gloo ranks on CPU with the 8-GPU layouts of
the 8-GPU issue (ep=4: expert groups of 2 beside a dense group of 8; tp=2 with ep=2)."""

import json

import pytest

from tests.support import launch


@pytest.mark.parametrize("layout, dense_group, expert_group", [
    (["--ep", "4"], list(range(8)), [0, 4]),
    (["--tp", "2", "--ep", "2"], [0, 2, 4, 6], [0, 4]),
])
def test_eight_rank_run(tmp_path, layout, dense_group, expert_group):
    out = tmp_path / "r"
    proc = launch.run(launch.torchrun_cmd(8, "--out", str(out), *launch.FAST, "--sizes", "8KiB", "--iters", "2",
                                          "--modes", "ag_rs,fsdp_step", "--gemm", "8x8x8", "--no-reference",
                                          *layout), deadline_s=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    assert doc["machine_info"]["world_size"] == 8 and doc["agrs_bench"]["complete"]
    by = {(b["params"]["mode"], b["params"]["buffer"], b["params"]["source"]): b for b in doc["benchmarks"]}
    assert by[("ag_rs", "dense", "pg_collection")]["extra_info"]["group_ranks"] == dense_group
    assert by[("ag_rs", "expert", "pg_collection")]["extra_info"]["group_ranks"] == expert_group
    step = by[("fsdp_step", "dense+expert", "pg_collection")]["extra_info"]
    assert step["group_ranks"] == {"dense": dense_group, "expert": expert_group}
    assert all(b["extra_info"]["checked"] for b in doc["benchmarks"])
