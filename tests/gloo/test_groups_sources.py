"""Real gloo process groups on CPU: outputs, the groups each source hands out, membership.

One set of processes per world size runs every case of that size (tests/support/gloo_cases.py):
starting ranks, not the cases, is what takes the time."""

import pytest

from tests.support.gloo_cases import Case, run_gloo_cases
from tests.support.gloo_workers import collectives_per_source, membership_with_ag_layout

# The 8-rank case also holds fp32 and the rank lists below.
OUTPUT_CASES = [
    (2, {}, "bf16"),
    (4, {"ep": 2}, "bf16"),
    (8, {"tp": 2, "ep": 2}, "fp32"),
]
# Megatron's create_all_gather_groups() rebuilt AG groups with the default order: with order
# tp-pp-dp the DP groups are [0,4].., the rebuilt AG groups [0,2]. Both sources, each checked alone.
REFUSED_AG_LAYOUT = Case("membership refused", membership_with_ag_layout,
                         ({"tp": 2, "pp": 2, "order": "tp-pp-dp"}, {"tp": 2, "pp": 2},
                          ("pg_collection", "global_state")))
SAME_AG_LAYOUT = Case("membership passes", membership_with_ag_layout, ({"ep": 2}, {"ep": 2}, ("pg_collection",)))
CASES_BY_WORLD = {
    2: [],
    4: [SAME_AG_LAYOUT],
    8: [REFUSED_AG_LAYOUT],
}


@pytest.fixture(scope="module")
def ranks_of_world():
    """`ranks_of_world(world)`: every case of that world size, run once in one set of ranks."""
    runs = {}

    def run(world):
        if world not in runs:
            outputs = [Case(("outputs", world), collectives_per_source, (kwargs, 4096 + 6, dtype))
                       for size, kwargs, dtype in OUTPUT_CASES if size == world]
            runs[world] = run_gloo_cases(world, outputs + CASES_BY_WORLD[world])
        return runs[world]
    return run


@pytest.mark.parametrize("world, layout_kwargs, dtype", OUTPUT_CASES)
def test_outputs_and_groups_per_source(ranks_of_world, world, layout_kwargs, dtype):
    reports = ranks_of_world(world)[("outputs", world)]
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


def test_membership_check_refuses_ag_groups_of_another_order(ranks_of_world):
    found = ranks_of_world(8)[REFUSED_AG_LAYOUT.key]
    for source in ("pg_collection", "global_state"):
        errors = [by_source[source] for by_source in found]
        assert all(errors), (source, errors)
        assert "rank 0" in errors[0] and "[0, 2]" in errors[0] and "[0, 4]" in errors[0], errors[0]
        assert f"source {source}" in errors[0]
        assert errors[0] == errors[5]  # every rank stops with the same message


def test_membership_check_passes_for_the_same_layout(ranks_of_world):
    found = ranks_of_world(4)[SAME_AG_LAYOUT.key]
    assert found == [{"pg_collection": None}] * 4
