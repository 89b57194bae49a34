"""GPU tier: NCCL on real GPUs. Relations only (overlapped <= serial), never absolute times.

Run on a GPU host: `python3 -m pytest -m gpu tests`. Skipped without 2 GPUs.
"""

import json
import statistics

import pytest

from tests import launch

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                       reason="needs at least 2 CUDA GPUs"),
]

NOISE = 1.03  # a relation may miss by 3% of noise before it counts as broken


def _run(tmp_path, name, *args, nproc=2):
    out = tmp_path / name
    proc = launch.run(launch.torchrun_cmd(nproc, "--out", str(out), *args), deadline_s=600,
                      env_extra={"NCCL_NVLS_ENABLE": "0"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads((out / "results.json").read_text())


def _cell(doc, **params):
    found = [b for b in doc["benchmarks"]
             if all(b["params"].get(k, {"exec": "eager", "nccl_options": "default"}.get(k)) == v
                    for k, v in params.items())]
    assert len(found) == 1, params
    return found[0]


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("gpu"), "r", "--sizes", "64MiB", "--iters", "15",
                "--layers", "4", "--step-sizes", "32MiB", "--buffers", "dense")


def test_outputs_checked_under_concurrency_for_every_source(gpu_run):
    assert gpu_run["machine_info"]["backend"] == "nccl"
    sources = {b["params"]["source"] for b in gpu_run["benchmarks"] if b["extra_info"]["checked"]}
    assert sources == {"single_comm", "global_state", "pg_collection"}


def test_ag_rs_on_two_communicators_no_slower_than_one(gpu_run):
    single = _cell(gpu_run, mode="ag_rs", source="single_comm")["stats"]["data"]
    separate = _cell(gpu_run, mode="ag_rs", source="pg_collection")["stats"]["data"]
    assert statistics.median(separate) <= statistics.median(single) * NOISE


def test_fsdp_step_exposes_no_more_communication(gpu_run):
    single = _cell(gpu_run, mode="fsdp_step", source="single_comm")["extra_info"]["exposed_comm_s"]
    separate = _cell(gpu_run, mode="fsdp_step", source="pg_collection")["extra_info"]["exposed_comm_s"]
    step = _cell(gpu_run, mode="fsdp_step", source="single_comm")["stats"]["median"]
    assert separate <= single + (NOISE - 1) * step


def test_graph_mode_and_nccl_options_run_and_check(tmp_path):
    doc = _run(tmp_path, "g", "--sizes", "16MiB", "--iters", "5", "--modes", "ag,rs,ag_rs",
               "--buffers", "dense", "--sources", "single_comm,pg_collection", "--graph",
               "--ag-nccl-options", "high_priority,max_ctas=16")
    graph = _cell(doc, mode="ag_rs", source="pg_collection", exec="graph",
                  nccl_options="ag:hp+max_ctas=16/rs:default")
    assert graph["extra_info"]["checked"] and graph["stats"]["median"] > 0
