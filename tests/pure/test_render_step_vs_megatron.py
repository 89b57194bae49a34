"""The report's Megatron-FSDP sections, read from the committed one-GPU results: the modelled step
beside Megatron-FSDP's own with intervals, and every option labelled by its reach."""

import json
import os

from agrs_bench.config import reach
from agrs_bench.render import report, step_vs_megatron

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "results", "megatron-fsdp-one-gpu")


def _doc(name):
    with open(os.path.join(RUN, name, "results.json"), encoding="utf-8") as fh:
        return json.load(fh)


def test_both_steps_side_by_side_with_intervals():
    lines = step_vs_megatron.comparison_section(_doc("moe"))
    rows = [line for line in lines if line.startswith("| pg_collection")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].split("|")[1:-1]]
    assert cells[1] == "dense+expert" and "[" in cells[5] and "[" in cells[7]  # both exposed figures with CIs
    assert cells[6] == "megatron, megatron_fsdp"
    assert "model qwen3-30b-a3b" in "\n".join(lines) and "gradients checked" in "\n".join(lines)


def test_every_option_of_the_run_is_labelled_by_reach():
    lines = step_vs_megatron.reach_section(_doc("dense"))
    text = "\n".join(lines)
    for key in ("reduce_op", "grad_dtype", "prefetch", "issue_megatron_fsdp"):
        assert f"| {key} |" in text
    assert "| reduce_op | scale_sum | megatron |" in text


def test_nccl_option_labels_map_to_reach_rows():
    assert reach.option_keys("hp+min_ctas=4") == ["high_priority", "min_ctas"]
    assert reach.REACH["high_priority"][0] == "partly"
    assert reach.REACH["per_role_options"][0] == "ours only"
    doc = {"benchmarks": [{"params": {"mode": "ag_rs", "nccl_options": "ag:hp/rs:default"}, "extra_info": {}}]}
    text = "\n".join(step_vs_megatron.reach_section(doc))
    assert "| high_priority |" in text and "| per_role_options |" in text


def test_report_has_the_section_and_keeps_megatron_fsdp_cells_out_of_the_collectives_table():
    text = report.render(_doc("dense"))
    assert "## Megatron-FSDP's own step beside the modelled step" in text
    collectives = text.split("## Collectives")[1].split("## fsdp_step")[0]
    assert "mfsdp_step" not in collectives
