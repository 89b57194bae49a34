"""GPU tier: Megatron-FSDP's own step (`--modes mfsdp_step`) end to end on the GPUs of the host
(one is enough: a group of one rank), gradients checked against the unsharded module before
timing, and the modelled step beside it with Megatron's issue path. Relations only."""

import importlib.util
import json

import pytest

from tests.support import launch

torch = pytest.importorskip("torch")

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
pytestmark = [pytest.mark.skipif(GPUS < 1, reason="needs a CUDA GPU"),
               pytest.mark.skipif(importlib.util.find_spec("megatron_fsdp") is None, reason="needs megatron-fsdp")]


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    out = tmp_path_factory.mktemp("mfsdp") / "run"
    proc = launch.run(launch.torchrun_cmd(
        GPUS, "--out", str(out), "--modes", "mfsdp_step,fsdp_step", "--issue", "megatron_fsdp",
        "--layers", "2", "--step-sizes", "8MiB", "--tokens", "512", "--gemm", "1024x1024x1024",
        "--iters", "5", "--warmup", "2"), deadline_s=600, env_extra={"NCCL_NVLS_ENABLE": "0"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads((out / "results.json").read_text())


def test_megatron_fsdp_step_runs_checked_with_intervals(doc):
    cells = [b for b in doc["benchmarks"] if b["params"]["mode"] == "mfsdp_step"]
    assert {c["params"]["source"] for c in cells} == {"single_comm", "global_state", "pg_collection"}
    for cell in cells:
        extra = cell["extra_info"]
        assert extra["grads_checked"] and extra["megatron_fsdp_version"]
        assert extra["megatron_fsdp_settings"]["zero_dp_strategy"] == "optim_grads_params"
        assert extra["exposed_comm_s_ci"][0] <= extra["exposed_comm_s"] <= extra["exposed_comm_s_ci"][1]
        assert cell["stats"]["median"] >= 0.9 * extra["compute_only_s"]  # the step holds its compute


def test_modelled_step_issued_as_megatron(doc):
    steps = [b for b in doc["benchmarks"] if b["params"]["mode"] == "fsdp_step"]
    assert steps and all(b["params"]["issue"] == "megatron_fsdp" for b in steps)
    assert all(b["extra_info"]["rs_reduce_op_run"] == "scale_sum" for b in steps)  # bf16 gradients
