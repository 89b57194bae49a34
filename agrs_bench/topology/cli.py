"""`python -m agrs_bench.topology`: print the rank lists of every group of a layout."""

from __future__ import annotations

import argparse
import json
import sys

from agrs_bench.errors import ArgumentParser, cli_entry, integer
from agrs_bench.topology.layout import DEFAULT_ORDER, Layout


def add_layout_flags(parser: argparse.ArgumentParser, *, world_size_required: bool) -> None:
    """The layout flags, shared by `topology` and `run` so that both spell them the same."""
    parser.add_argument("--world-size", type=integer, required=world_size_required,
                        default=None,
                        help="ranks the layout covers (run: default and only value the launched ranks)")
    parser.add_argument("--tp", type=integer, default=1, help="tensor-parallel size (default: %(default)s)")
    parser.add_argument("--cp", type=integer, default=1, help="context-parallel size (default: %(default)s)")
    parser.add_argument("--ep", type=integer, default=None,
                        help="expert-parallel size (default: topology 1; run 2 where that leaves expert groups of "
                        "2 or more ranks, else 1)")
    parser.add_argument("--etp", type=integer, default=None, help="expert tensor-parallel size (default: tp)")
    parser.add_argument("--pp", type=integer, default=1, help="pipeline-parallel size (default: %(default)s)")
    parser.add_argument("--order", default=DEFAULT_ORDER,
                        help="axis order, leftmost varies fastest (default: %(default)s)")
    parser.add_argument("--rank-offset", type=integer, default=0,
                        help="global rank of the first rank (default: %(default)s)")


def layout_from_args(args: argparse.Namespace, world_size: int, default_ep: int = 1) -> Layout:
    return Layout(
        world_size=world_size, tp=args.tp, cp=args.cp,
        ep=default_ep if args.ep is None else args.ep, etp=args.etp, pp=args.pp,
        order=args.order, rank_offset=args.rank_offset,
    )


def render_table(layout: Layout) -> str:
    lines = [f"layout: {json.dumps(layout.describe())}"]
    for grid, groups in layout.groups().items():
        for name, lists in groups.items():
            lines.append(f"{grid:<7} {name:<8} " + " ".join(str(g).replace(" ", "") for g in lists))
    return "\n".join(lines)


@cli_entry("agrs_bench.topology")
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="agrs_bench.topology", description=__doc__)
    add_layout_flags(parser, world_size_required=True)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    layout = layout_from_args(args, args.world_size)
    print(json.dumps(layout.groups()) if args.json else render_table(layout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
