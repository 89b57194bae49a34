"""GPU tier, one GPU: NCCL's levers through agrs_bench's code on a one-rank NCCL group
(tests/support/gpu_levers_probe.py in its own process). Each lever works or is refused in one line."""

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

needs_one = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def levers(tmp_path_factory):
    out = os.environ.get("AGRS_LEVERS_OUT") or str(tmp_path_factory.mktemp("levers"))
    proc = subprocess.run([sys.executable, "-m", "tests.support.gpu_levers_probe", out], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, NCCL_NVLS_ENABLE="0"))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("LEVERS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-4000:]
    with open(os.path.join(out, "levers.json"), "w", encoding="utf-8") as fh:
        fh.write(lines[-1][len("LEVERS "):])
    return json.loads(lines[-1][len("LEVERS "):])


def _one_line(text):
    return "\n" not in text and text


@needs_one
@pytest.mark.parametrize("policy", ["default", "efficiency", "zero"])
def test_each_cta_policy_makes_a_working_group_or_is_refused(levers, policy):
    found = levers[f"cta_{policy}"]
    assert found.get("wrong") == [] or _one_line(found.get("refused", ""))


@needs_one
@pytest.mark.parametrize("kind", ["ub", "symmetric"])
def test_each_registration_registers_checks_and_deregisters_or_is_refused(levers, kind):
    found = levers[f"registration_{kind}"]
    if "refused" in found:
        assert _one_line(found["refused"]) and levers["build"] in found["refused"]
    else:
        assert found["wrong"] == [] and {"ag", "rs"} <= set(found["paths"])
    assert levers["deregistered"]


@needs_one
def test_low_contention_style_checks_its_outputs(levers):
    assert levers["low_contention"] == {"wrong": []}, levers["low_contention"]


@needs_one
def test_trace_tells_a_copy_engine_copy_from_a_kernel(levers):
    trace = levers["trace"]
    assert trace["levers:ce_copy"]["engine"] == "copy_engine" and trace["levers:ce_copy"]["memcpy_count"] >= 1
    sm_copy = trace["levers:sm_copy"]
    assert sm_copy["engine"] == "none" and sm_copy["memcpy_count"] == 0 and sm_copy["other_kernel_count"] >= 1


needs_two = pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                               reason="needs at least 2 CUDA GPUs")


@needs_two
def test_lever_sweep_checks_outputs_and_reads_the_trace(tmp_path):
    from tests.support import launch

    out = tmp_path / "levers"
    proc = launch.run(launch.torchrun_cmd(2, "--out", str(out), "--sizes", "16MiB", "--step-sizes", "16MiB",
                                          "--iters", "5", "--modes", "ag_rs,fsdp_step", "--buffers", "dense",
                                          "--sources", "pg_collection", "--sweep-nccl-options", "--trace"),
                      deadline_s=600, env_extra={"NCCL_NVLS_ENABLE": "0"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    doc = json.loads((out / "results.json").read_text())
    cells = [b for b in doc["benchmarks"] if "registration=" in b["params"].get("nccl_options", "")]
    assert cells and all(b["extra_info"]["checked"] and b["extra_info"]["registration_path"] for b in cells)
    traced = [b for b in doc["benchmarks"] if b["params"]["mode"] == "ag_rs"]
    assert all(set(b["extra_info"]["trace_kinds"]) == {"ag", "rs"} for b in traced)
    assert "## NCCL's levers in the step" in (out / "report.md").read_text()
