"""Pure tests of the layout arithmetic (the topology command: tests/gloo/test_topology_cli.py)."""

import functools
import itertools

import pytest

from agrs_bench.errors import ConfigError
from agrs_bench.topology.layout import AXES, MEGATRON_REFUSES, Layout


def test_design_examples_dp_groups():
    # ../shared/design.md: 8 ranks, tp=2, pp=2.
    assert Layout(world_size=8, tp=2, pp=2).dense("dp") == [[0, 2], [1, 3], [4, 6], [5, 7]]
    assert Layout(world_size=8, tp=2, pp=2, order="tp-pp-dp").dense("dp") == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_megatron_default_grid():
    layout = Layout(world_size=8, tp=2, pp=2, ep=2)
    groups = layout.groups()
    assert groups["dense"]["tp"] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert groups["dense"]["pp"] == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert groups["expert"]["ep"] == [[0, 2], [1, 3], [4, 6], [5, 7]]
    assert groups["expert"]["expt_dp"] == [[r] for r in range(8)]


def test_expert_dp_differs_from_dense_dp():
    layout = Layout(world_size=8, ep=4)
    assert layout.dense("dp_cp") == [list(range(8))]
    assert layout.expert("ep") == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert layout.expert("expt_dp") == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_cp_joins_dp_cp():
    layout = Layout(world_size=8, tp=2, cp=2)
    assert layout.dense("cp") == [[0, 2], [1, 3], [4, 6], [5, 7]]
    assert layout.dense("dp") == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert layout.dense("dp_cp") == [[0, 2, 4, 6], [1, 3, 5, 7]]


def _valid_layouts():
    for world, tp, cp, ep, pp in itertools.product((4, 8, 16), (1, 2), (1, 2), (1, 2, 4), (1, 2)):
        if world % (tp * cp * pp) or world % (tp * ep * pp):
            continue
        for perm in itertools.permutations(AXES):
            for offset in (0, 3):
                try:
                    yield Layout(world_size=world, tp=tp, cp=cp, ep=ep, pp=pp, order="-".join(perm),
                                 rank_offset=offset)
                except ConfigError as err:  # megatron-core refuses it (test_topology_megatron_refusals)
                    assert MEGATRON_REFUSES in str(err), err


@functools.cache
def _valid_layouts_and_groups() -> tuple:
    """Every valid layout with its groups, worked out once for the tests that read them all (11k
    layouts: most of this module's time)."""
    return tuple((layout, layout.groups()) for layout in _valid_layouts())


@pytest.mark.parametrize("grid", ["dense", "expert"])
def test_every_rank_in_exactly_one_group_of_each_kind(grid):
    checked = 0
    for layout, groups in _valid_layouts_and_groups():
        ranks = set(range(layout.rank_offset, layout.rank_offset + layout.world_size))
        for name, lists in groups[grid].items():
            flat = [r for group in lists for r in group]
            assert sorted(flat) == sorted(ranks), (layout, name)
            assert all(group == sorted(group) for group in lists)
            assert len({len(g) for g in lists}) == 1
        checked += 1
    assert checked > 500


def test_group_sizes_match_the_axes():
    for layout, groups in _valid_layouts_and_groups():
        dense, expert = groups["dense"], groups["expert"]
        assert len(dense["tp"][0]) == layout.tp and len(dense["pp"][0]) == layout.pp
        assert len(dense["dp"][0]) == layout.dp and len(dense["cp"][0]) == layout.cp
        assert len(dense["dp_cp"][0]) == layout.dp * layout.cp
        assert len(expert["ep"][0]) == layout.ep and len(expert["expt_dp"][0]) == layout.expert_dp


def test_offset_shifts_every_rank():
    for perm in itertools.permutations(AXES):
        order = "-".join(perm)
        plain = Layout(world_size=8, tp=2, ep=2, order=order).groups()
        shifted = Layout(world_size=8, tp=2, ep=2, order=order, rank_offset=5).groups()
        for grid in plain:
            for name in plain[grid]:
                assert shifted[grid][name] == [[r + 5 for r in g] for g in plain[grid][name]]


def test_leftmost_axis_varies_fastest():
    layout = Layout(world_size=8, tp=2, pp=2, order="pp-tp-dp")
    assert layout.dense("pp")[0] == [0, 1]
    assert layout.dense("tp")[0] == [0, 2]
    assert layout.dense("dp")[0] == [0, 4]


def test_group_of_finds_the_rank():
    layout = Layout(world_size=8, tp=2)
    assert layout.group_of("dp_cp", 5) == [1, 3, 5, 7]
    with pytest.raises(ConfigError, match="rank 9"):
        layout.group_of("dp", 9)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(world_size=8, tp=3), "not divisible by tp*cp*pp"),
    (dict(world_size=8, ep=3), "not divisible by etp*ep*pp"),
    (dict(world_size=8, tp=2, order="dp-pp"), "lacks axis 'tp'"),
    (dict(world_size=8, order="tp-xp-dp"), "unknown axis 'xp'"),
    (dict(world_size=8, order="tp-dp-dp"), "'dp' appears more than once"),
    (dict(world_size=8, tp=0), "tp must be an integer >= 1, got 0"),
    (dict(world_size=0), "world-size must be an integer >= 1, got 0"),
    (dict(world_size=8, rank_offset=-1), "rank-offset must be an integer >= 0, got -1"),
])
def test_invalid_layouts_name_the_value(kwargs, needle):
    with pytest.raises(ConfigError, match=None) as info:
        Layout(**kwargs)
    assert needle in str(info.value)


def test_check_patterns_differ_for_every_rank_of_a_large_group():
    import torch

    from agrs_bench.measure import buffers

    rs = [buffers.rs_pattern(r, 64, 3, torch.float32, "cpu") for r in range(32)]
    ag = [buffers.ag_pattern(r, 64, 3, torch.float32, "cpu") for r in range(32)]
    for a in range(32):
        for b in range(a + 1, 32):
            assert not torch.equal(rs[a], rs[b]) and not torch.equal(ag[a], ag[b]), (a, b)
