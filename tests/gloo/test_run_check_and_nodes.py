"""The output check catches AG groups with a wrong member; two torchrun agents make one run."""

import json
import time

from tests.support import fault_entry, launch
from tests.support.gloo_harness import free_port

ARGS = [*launch.FAST, "--modes", "ag_rs", "--sources", "single_comm,pg_collection", "--timeout", "30"]


def test_check_catches_ag_group_with_a_swapped_member(tmp_path):
    # pp=2, order tp-cp-ep-pp-dp on 4 ranks: DP groups [0,2] [1,3]. The hook builds pg_collection's
    # AG groups as megatron-core's create_all_gather_groups does, with order tp-cp-ep-dp-pp:
    # [0,1] [2,3]; the fault entry skips the membership check that would refuse them.
    out = tmp_path / "run"
    done = launch.run(launch.torchrun_cmd(4, "--out", str(out), *ARGS, "--pp", "2", "--order", "tp-cp-ep-pp-dp",
                                          "--ep", "1", "--buffers", "dense", module=fault_entry.MODULE),
                      env_extra={"AGRS_BENCH_TEST_CORRUPT_AG": "1"})
    assert done.returncode != 0
    assert "membership check skipped" in done.stdout
    assert ("output check failed in cell ag_rs-dense-pg_collection-4KiB: rank 0: AG output element "
            in done.stderr), done.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    assert doc["agrs_bench"]["complete"] is False
    # The check runs before anything of its comparison is timed, and a comparison is kept whole.
    assert doc["benchmarks"] == [] and "ag_rs-dense-single_comm-4KiB" in doc["agrs_bench"]["missing_cells"]


def test_two_agents_on_one_host_make_one_run_of_four_ranks(tmp_path):
    out = tmp_path / "run"
    rdzv = ["--nnodes=2", "--rdzv-backend=c10d", f"--rdzv-endpoint=localhost:{free_port()}",
            "--rdzv-id=agrs-multinode-test"]
    cmd = launch.torchrun_cmd(2, "--out", str(out), *ARGS, "--buffers", "dense", rdzv=rdzv)
    agents = [launch.start(cmd), launch.start(cmd)]
    started = time.monotonic()
    done = [launch.finish(agent, 240, started) for agent in agents]
    for agent in done:
        assert agent.returncode == 0, agent.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    info = doc["machine_info"]
    assert info["world_size"] == 4 and info["num_nodes"] == 2
    nodes = info["nodes"]  # each agent's ranks are contiguous
    assert nodes[0] == nodes[1] != nodes[2] == nodes[3]
    assert len(doc["benchmarks"]) == 2 * 2
    assert info["groups_span_nodes"] == {"dense": True}  # the DP group is [0,1,2,3]
    assert all(b["extra_info"]["spans_nodes"] for b in doc["benchmarks"])
