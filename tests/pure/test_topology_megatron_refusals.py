"""Layouts megatron-core refuses are refused by Layout (and so by `run` and `topology`) with
Megatron's own words (checked against megatron-core itself, once, on a fake 8-rank world, in
tests/gloo/test_topology_megatron_refusals.py).

Also: our rank arithmetic against megatron-core's own RankGenerator (call the library, do not
copy it), and the AG groups the fault entry corrupts as megatron-core 0.19.2 does."""

import importlib.util
import itertools

import pytest

from agrs_bench.errors import ConfigError
from agrs_bench.topology.layout import AXES, MEGATRON_REFUSES, Layout
from tests.support import fault_entry

# The [test] extra does not bring megatron-core ([megatron] does): tests that call it skip without it.
needs_megatron = pytest.mark.skipif(importlib.util.find_spec("megatron") is None,
                                    reason="needs megatron-core: pip install -e '.[megatron]'")

# (our Layout kwargs, Megatron's message); world 8 each.
REFUSED = {
    "dense_not_divisible": (dict(tp=3), "world_size (8) is not divisible by 3"),
    "expert_not_divisible": (dict(ep=8, etp=2),
                             "world_size (8) is not divisible by expert_tensor_model_pipeline_parallel size (16)"),
    "pp_not_last_dp_differs": (dict(ep=2, pp=2, order="tp-cp-ep-pp-dp"),
                               "When not using pp-last rank ordering, the data parallel size of the "
                               "attention and moe layers must be the same"),
    "pipeline_groups_differ": (dict(tp=2, etp=1, ep=2, pp=2, order="tp-pp-cp-ep-dp"),
                               "Pipeline parallel groups are expected to be the same for Non-Expert and "
                               "Expert part, but got [[0, 2], [1, 3], [4, 6], [5, 7]] and "
                               "[[0, 1], [2, 3], [4, 5], [6, 7]]"),
    "axis_missing_from_order": (dict(pp=2, order="tp-dp"),
                                "The size of (pp) is (2), but you haven'tspecified the order (tp-dp)."),
}


def _one_line(text: str) -> str:
    return " ".join(text.split())  # Megatron's source wraps one message with a run of spaces


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_layout_refuses_with_megatrons_message(case):
    kwargs, message = REFUSED[case]
    with pytest.raises(ConfigError) as info:
        Layout(world_size=8, **kwargs)
    assert MEGATRON_REFUSES in str(info.value)
    assert f'"{message}"' in str(info.value)


def _layouts():
    for tp, cp, ep, etp, pp in itertools.product((1, 2), (1, 2), (1, 2, 4), (None, 1), (1, 2)):
        for perm in itertools.permutations(AXES):
            try:
                yield Layout(world_size=8, tp=tp, cp=cp, ep=ep, etp=etp, pp=pp, order="-".join(perm))
            except ConfigError:
                continue


@needs_megatron
def test_rank_lists_equal_megatron_core_rank_generator():
    from megatron.core.parallel_state import RankGenerator

    checked = 0
    for layout in _layouts():
        dense = RankGenerator(tp=layout.tp, ep=1, dp=layout.dp, pp=layout.pp, cp=layout.cp, order=layout.order)
        expert = RankGenerator(tp=layout.etp, ep=layout.ep, dp=layout.expert_dp, pp=layout.pp, cp=1,
                               order=layout.order)
        for ours, theirs in (("dp_cp", "dp-cp"), ("dp", "dp"), ("tp", "tp"), ("pp", "pp"), ("cp", "cp")):
            assert layout.dense(ours) == [sorted(g) for g in dense.get_ranks(theirs)], (layout, ours)
        for ours, theirs in (("expt_dp", "dp"), ("ep", "ep"), ("expt_tp", "tp")):
            assert layout.expert(ours) == [sorted(g) for g in expert.get_ranks(theirs)], (layout, ours)
        checked += 1
    assert checked > 100


def test_corrupt_fault_builds_ag_groups_as_megatron_create_all_gather_groups_does():
    layout = Layout(world_size=8, pp=2, order="tp-cp-ep-pp-dp")
    assert layout.group_of("dp_cp", 0) == [0, 2, 4, 6]
    faults = fault_entry.Faults.from_environment({fault_entry.CORRUPT_AG_VAR: "megatron_core"})
    assert faults.corrupt_sources == ("megatron_core",)
    ag = fault_entry.megatron_ag_layout(layout)
    assert ag.order == "tp-cp-ep-dp-pp" and ag.rank_offset == 0
    assert ag.group_of("dp_cp", 0) == [0, 1, 2, 3]  # the example
    # the old spelling means pg_collection
    assert fault_entry.Faults.from_environment({fault_entry.CORRUPT_AG_VAR: "1"}).corrupt_sources == ("pg_collection",)
    assert fault_entry.Faults.from_environment({}) == fault_entry.Faults()  # no fault asked for
    assert fault_entry.Faults.from_environment({fault_entry.SIGNAL_VAR: "STOP@1:5"}).signal_at == ("STOP", 1, 5)


def test_corrupting_group_maker_changes_the_ag_groups_only():
    layout = Layout(world_size=8, pp=2, order="tp-cp-ep-pp-dp")
    ag = fault_entry.megatron_ag_layout(layout)
    asked = []
    make = fault_entry.corrupting_group_maker(lambda lists, rank, role, desc: asked.append((desc, lists)), ag)
    for desc, lists in (("x/dp_cp", layout.dense("dp_cp")), ("x/dp_cp_ag", layout.dense("dp_cp")),
                        ("x/expt_dp", layout.expert("expt_dp")), ("x/expt_dp_ag", layout.expert("expt_dp"))):
        make(lists, 0, "ag", desc)
    assert asked == [("x/dp_cp", layout.dense("dp_cp")), ("x/dp_cp_ag", ag.dense("dp_cp")),
                     ("x/expt_dp", layout.expert("expt_dp")), ("x/expt_dp_ag", ag.expert("expt_dp"))]
    assert ag.dense("dp_cp") != layout.dense("dp_cp") and ag.expert("expt_dp") != layout.expert("expt_dp")
