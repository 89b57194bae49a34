"""Real gloo process groups on CPU: outputs, the groups each source hands out, membership."""

import pytest

from tests.support.gloo_harness import run_gloo
from tests.support.gloo_workers import collectives_per_source, membership_with_ag_layout


# One set of processes per world: the 8-rank case also holds fp32 and the rank lists below
# (it once ran twice, the second time for the rank lists alone).
@pytest.mark.parametrize("world, layout_kwargs, dtype", [
    (2, {}, "bf16"),
    (4, {"ep": 2}, "bf16"),
    (8, {"tp": 2, "ep": 2}, "fp32"),
])
def test_outputs_and_groups_per_source(world, layout_kwargs, dtype):
    reports = run_gloo(world, collectives_per_source, layout_kwargs, 4096 + 6, dtype)
    for rank, report in enumerate(reports):
        for (source, kind), seen in report.items():
            assert seen["ag_ok"] and seen["rs_ok"], (rank, source, kind)
            assert seen["ag_ranks"] == seen["rs_ranks"], (rank, source, kind)
        # single_comm: one communicator for both ops, dense and expert.
        assert report[("single_comm", "dense")]["same_group"]
        assert report[("single_comm", "expert")]["same_group"]
        # global_state: a separate dense AG group, none for experts.
        assert not report[("global_state", "dense")]["same_group"]
        assert report[("global_state", "expert")]["same_group"]
        # pg_collection: a separate dense AG group; an expert one only when ep > 1, as in Megatron
        # (create_all_gather_groups(for_expert_parallelism=ep > 1)).
        assert not report[("pg_collection", "dense")]["same_group"]
        assert report[("pg_collection", "expert")]["same_group"] == (layout_kwargs.get("ep", 1) == 1)
    if world == 8:  # the expert DP group differs from the dense one
        assert reports[0][("pg_collection", "dense")]["rs_ranks"] == [0, 2, 4, 6]
        assert reports[0][("pg_collection", "expert")]["rs_ranks"] == [0, 4]


def test_membership_check_refuses_ag_groups_of_another_order():
    # Megatron's create_all_gather_groups() rebuilt AG groups with the default order: with
    # order tp-pp-dp the DP groups are [0,4].., the rebuilt AG groups [0,2]..
    # Both sources in one set of processes, each checked on its own.
    found = run_gloo(8, membership_with_ag_layout, {"tp": 2, "pp": 2, "order": "tp-pp-dp"},
                     {"tp": 2, "pp": 2}, ("pg_collection", "global_state"))
    for source in ("pg_collection", "global_state"):
        errors = [by_source[source] for by_source in found]
        assert all(errors), (source, errors)
        assert "rank 0" in errors[0] and "[0, 2]" in errors[0] and "[0, 4]" in errors[0], errors[0]
        assert f"source {source}" in errors[0]
        assert errors[0] == errors[5]  # every rank stops with the same message


def test_membership_check_passes_for_the_same_layout():
    found = run_gloo(4, membership_with_ag_layout, {"ep": 2}, {"ep": 2}, ("pg_collection",))
    assert found == [{"pg_collection": None}] * 4
