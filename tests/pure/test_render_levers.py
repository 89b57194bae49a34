"""The step's levers against the default options (analysis.levers) and their report section
(render.levers), on synthetic fsdp_step cells sampled in the same rounds."""

import pytest

from agrs_bench.analysis import levers
from agrs_bench.render import levers as section

ROUNDS = 12


def step_cell(label, step_ms, compute_ms=1.0, in_step=1.1, ignored=()):
    jitter = [0.01 * (r % 3) for r in range(ROUNDS)]  # drift shared by the round's parts
    return {"params": {"mode": "fsdp_step", "buffer": "dense", "size_bytes": 64 << 20, "source": "pg_collection",
                       "exec": "eager", "nccl_options": label},
            "stats": {"data": [(step_ms + j) / 1e3 for j in jitter]},
            "extra_info": {"compute_only_data": [(compute_ms + j) / 1e3 for j in jitter],
                           "compute_in_step_data": [in_step + j for j in jitter],
                           "compute_alone_data": [1.0 + j for j in jitter],
                           "exposed_comm_s": (step_ms - compute_ms) / 1e3, "levers_ignored": list(ignored)}}


@pytest.mark.parametrize("label, fam", [("default", None), ("ag:cta_policy=zero/rs:default", "cta_policy"),
                                        ("ag:registration=ub/rs:registration=ub", "registration"),
                                        ("ag:cta_policy=zero+registration=symmetric/rs:registration=symmetric",
                                         "cta_policy+registration"),
                                        ("ag:max_ctas=8/rs:max_ctas=8", "other options")])
def test_family_of_a_label(label, fam):
    assert levers.family(label) == fam


@pytest.mark.parametrize("label, reach", [
    ("ag:registration=symmetric/rs:registration=symmetric", "--use-nccl-ub"),
    ("ag:registration=ub/rs:registration=ub", "--use-nccl-ub with disable_symmetric_registration"),
    ("ag:cta_policy=efficiency/rs:cta_policy=efficiency", "NCCL_CTA_POLICY=EFFICIENCY (every communicator)"),
    ("ag:cta_policy=zero/rs:default", "ours only (AG and RS differ)"),
    ("ag:max_ctas=8/rs:max_ctas=8", "--nccl-communicator-config-path"),
    ("ag:hp/rs:hp", "ours only (high-priority streams per role)")])
def test_megatron_reach(label, reach):
    assert levers.megatron_reach(label) == reach


def test_best_setting_per_lever_with_paired_delta():
    cells = [step_cell("default", 3.0), step_cell("ag:cta_policy=efficiency/rs:cta_policy=efficiency", 2.5),
             step_cell("ag:cta_policy=zero/rs:default", 2.0, in_step=1.05, ignored=["ag: cta_policy=zero ignored"]),
             step_cell("ag:registration=ub/rs:registration=ub", 3.0)]
    rows = {r["family"]: r for r in levers.best_levers(cells)}
    assert set(rows) == {"cta_policy", "registration"}
    cta = rows["cta_policy"]
    assert cta["best"] == "ag:cta_policy=zero/rs:default"
    assert cta["exposed_comm_delta_s"]["point"] == pytest.approx(-1e-3)
    assert cta["exposed_comm_delta_s"]["ci"] == pytest.approx([-1e-3, -1e-3])  # shared drift cancels
    assert cta["compute_slowdown_delta"]["point"] == pytest.approx(-0.05, abs=1e-3)
    assert rows["registration"]["exposed_comm_delta_s"]["point"] == pytest.approx(0)
    text = "\n".join(section.section({"benchmarks": cells}))
    assert "## NCCL's levers in the step" in text and "(less)" in text and "ag: cta_policy=zero ignored" in text


def test_no_levers_no_section():
    assert section.section({"benchmarks": [step_cell("default", 3.0)]}) == []
