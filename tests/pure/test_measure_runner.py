"""Which groups span nodes, from the ranks' node names and the layout."""

from agrs_bench.config.cli import parse_run_args
from agrs_bench.measure.runner import groups_span_nodes


def _cfg(*argv, world=2):
    return parse_run_args(list(argv), world_size=world, backend="gloo")



def test_groups_span_nodes():
    nodes = ["a:0", "a:0", "b:1", "b:1"]
    # tp=2 (and etp=2): the DP and expert-DP groups are [0,2] [1,3], across the two nodes; with dp
    # first in the order they are [0,1] [2,3], each on one node.
    assert groups_span_nodes(_cfg("--tp", "2", "--ep", "1", world=4), nodes) == {"dense": True, "expert": True}
    assert groups_span_nodes(_cfg("--tp", "2", "--ep", "1", "--order", "dp-tp", world=4), nodes) \
        == {"dense": False, "expert": False}
