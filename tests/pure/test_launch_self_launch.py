"""The self-launch parent's exit status: 5 (a Megatron mismatch) only for a complete run."""

import pytest


@pytest.mark.parametrize("missing, expected", [([], True), (["ag-dense-single_comm-4KiB"], False)])
def test_self_launch_passes_status_5_on_only_for_a_complete_run_with_a_mismatch(tmp_path, missing, expected):
    # torchrun turns the ranks' 5 into 1; `python -m agrs_bench.run` reads results.json to give 5.
    from agrs_bench.launch.self_launch import megatron_mismatch_only
    from agrs_bench.results import files

    finding = {"layout": "...", "rank": 0, "buffer": "dense", "rs_ranks": [0, 2], "ag_ranks": [0, 1],
               "version": "0.19.2", "upstream": "NVIDIA/Megatron-LM#4261 (fix PR #5754)"}
    doc = files.build_document([], machine_info={}, commit_info={}, config={}, missing_cells=missing,
                               started_utc="2026-11-29T00:00:00+00:00",
                               notes={"megatron_mismatch": [finding]})
    files.write_run(str(tmp_path), doc)
    assert megatron_mismatch_only(str(tmp_path)) is expected
