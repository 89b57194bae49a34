"""Parallel layout -> rank lists of every group, by Megatron-LM's RankGenerator rule. Pure.

In the order string the leftmost axis varies fastest: rank = offset + sum(index_axis * stride_axis)
with stride_axis the product of the sizes left of it. The dense grid is (tp, cp, ep=1, dp, pp);
the expert grid uses the same order with (etp, ep, expert-dp, pp) and cp=1. An axis of size > 1
must appear in the order; axes of size 1 that are missing are appended (Megatron does the same).

A layout that megatron-core's `initialize_model_parallel` refuses is refused here too, with
Megatron's own words quoted (`MEGATRON_REFUSES`), so that no source is ever timed on a layout
Megatron cannot run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from agrs_bench.errors import ConfigError

AXES = ("tp", "cp", "ep", "dp", "pp")
DEFAULT_ORDER = "tp-cp-ep-dp-pp"
DENSE_GROUPS = {"tp": "tp", "cp": "cp", "dp": "dp", "dp_cp": "dp-cp", "pp": "pp"}
EXPERT_GROUPS = {"expt_tp": "tp", "ep": "ep", "expt_dp": "dp"}
RankLists = list[list[int]]
MAX_WORLD_SIZE = 65536
"""The most ranks a layout may cover: every group is listed rank by rank (65536 ranks take
about 2 s), and the largest training clusters are tens of thousands of GPUs."""
MAX_RANK_OFFSET = 2**31 - 1
MEGATRON_REFUSES = "megatron-core's initialize_model_parallel refuses it"


def _masked_rank_lists(sizes: dict[str, int], order: list[str], axes_in_group: set[str]) -> RankLists:
    """Rank lists (offset 0) of the groups spanned by `axes_in_group` in the grid `sizes`/`order`."""
    strides, stride = {}, 1
    for axis in order:
        strides[axis] = stride
        stride *= sizes[axis]
    inside = [a for a in order if a in axes_in_group]
    outside = [a for a in order if a not in axes_in_group]

    def decompose(index: int, axes: list[str]) -> dict[str, int]:
        coords = {}
        for axis in axes:  # leftmost varies fastest
            coords[axis] = index % sizes[axis]
            index //= sizes[axis]
        return coords

    group_size = math.prod(sizes[a] for a in inside)
    num_groups = math.prod(sizes[a] for a in outside)
    groups = []
    for group_index in range(num_groups):
        base = sum(c * strides[a] for a, c in decompose(group_index, outside).items())
        groups.append(
            sorted(
                base + sum(c * strides[a] for a, c in decompose(member, inside).items())
                for member in range(group_size)
            )
        )
    return groups


def _megatron(reason: str) -> str:
    return f"{MEGATRON_REFUSES}: \"{reason}\""


def _full_order(order: str, sizes: dict[str, int]) -> list[str]:
    tokens = order.split("-")
    for token in tokens:
        if token not in AXES:
            raise ConfigError(f"order {order!r}: unknown axis {token!r} (known: {', '.join(AXES)})")
    repeated = sorted({t for t in tokens if tokens.count(t) > 1})
    if repeated:
        raise ConfigError(f"order {order!r}: axis {repeated[0]!r} appears more than once")
    for axis in AXES:
        if axis not in tokens:
            if sizes[axis] > 1:  # Megatron's RankGenerator message, its missing space included
                raise ConfigError(f"order {order!r} lacks axis {axis!r} of size {sizes[axis]}; " + _megatron(
                    f"The size of ({axis}) is ({sizes[axis]}), but you haven'tspecified the order ({order})."))
            tokens.append(axis)
    return tokens


@dataclass(frozen=True, kw_only=True)
class Layout:
    """A parallel layout over `world_size` ranks starting at `rank_offset`; checked at construction."""

    world_size: int
    """Ranks the layout covers."""
    tp: int = 1
    """Tensor-parallel size."""
    cp: int = 1
    """Context-parallel size."""
    ep: int = 1
    """Expert-parallel size."""
    etp: int | None = None
    """Expert tensor-parallel size; None means the same as tp."""
    pp: int = 1
    """Pipeline-parallel size."""
    order: str = DEFAULT_ORDER
    """Axis order, leftmost varies fastest."""
    rank_offset: int = 0
    """Global rank of the layout's first rank."""
    _dense_order: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _expert_order: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.etp is None:
            object.__setattr__(self, "etp", self.tp)
        for name in ("world_size", "tp", "cp", "ep", "etp", "pp"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
        if not isinstance(self.rank_offset, int) or self.rank_offset < 0:
            raise ConfigError(f"rank-offset must be an integer >= 0, got {self.rank_offset!r}")
        # Every group is listed rank by rank: a world of 10**18 would run until memory ends.
        if self.world_size > MAX_WORLD_SIZE:
            raise ConfigError(f"world size {self.world_size} is more ranks than this tool lays out "
                              f"(at most {MAX_WORLD_SIZE})")
        if self.rank_offset > MAX_RANK_OFFSET:
            raise ConfigError(f"rank-offset {self.rank_offset} is beyond any launched rank "
                              f"(at most {MAX_RANK_OFFSET})")
        dense_model = self.tp * self.cp * self.pp
        if self.world_size % dense_model:
            raise ConfigError(
                f"world size {self.world_size} is not divisible by tp*cp*pp = "
                f"{self.tp}*{self.cp}*{self.pp} = {dense_model}; "
                + _megatron(f"world_size ({self.world_size}) is not divisible by {dense_model}"))
        expert_model = self.etp * self.ep * self.pp
        if self.world_size % expert_model:
            raise ConfigError(
                f"world size {self.world_size} is not divisible by etp*ep*pp = "
                f"{self.etp}*{self.ep}*{self.pp} = {expert_model}; " + _megatron(
                    f"world_size ({self.world_size}) is not divisible by "
                    f"expert_tensor_model_pipeline_parallel size ({expert_model})"))
        object.__setattr__(self, "_dense_order", tuple(_full_order(self.order, self.dense_sizes)))
        object.__setattr__(self, "_expert_order", tuple(_full_order(self.order, self.expert_sizes)))
        self._check_megatron_pipeline_rules()

    def _check_megatron_pipeline_rules(self) -> None:
        """The two rules initialize_model_parallel asserts between the dense and expert grids."""
        if not self.order.endswith("pp") and self.pp != 1 and self.expert_dp != self.dp:
            raise ConfigError(
                f"order {self.order!r} with pp {self.pp}: dense dp {self.dp} != expert dp {self.expert_dp}; "
                + _megatron("When not using pp-last rank ordering, the data parallel size of the "
                            "attention and moe layers must be the same"))
        # Megatron compares its generators' pp groups at offset 0, in generation order.
        dense_pp = _masked_rank_lists(self.dense_sizes, list(self._dense_order), {"pp"})
        expert_pp = _masked_rank_lists(self.expert_sizes, list(self._expert_order), {"pp"})
        if dense_pp != expert_pp:
            raise ConfigError(
                f"order {self.order!r}: dense and expert pipeline groups differ; " + _megatron(
                    "Pipeline parallel groups are expected to be the same for Non-Expert and Expert "
                    f"part, but got {dense_pp} and {expert_pp}"))

    @property
    def dp(self) -> int:
        """Dense data-parallel size: world / (tp*cp*pp)."""
        return self.world_size // (self.tp * self.cp * self.pp)

    @property
    def expert_dp(self) -> int:
        """Expert data-parallel size: world / (etp*ep*pp)."""
        return self.world_size // (self.etp * self.ep * self.pp)

    @property
    def dense_sizes(self) -> dict[str, int]:
        return {"tp": self.tp, "cp": self.cp, "ep": 1, "dp": self.dp, "pp": self.pp}

    @property
    def expert_sizes(self) -> dict[str, int]:
        return {"tp": self.etp, "cp": 1, "ep": self.ep, "dp": self.expert_dp, "pp": self.pp}

    def _lists(self, sizes: dict[str, int], order: tuple[str, ...], spec: str) -> RankLists:
        groups = _masked_rank_lists(sizes, list(order), set(spec.split("-")))
        return [[self.rank_offset + r for r in group] for group in groups]

    def dense(self, name: str) -> RankLists:
        """Rank lists of a dense group kind: tp, cp, dp, dp_cp or pp."""
        return self._lists(self.dense_sizes, self._dense_order, DENSE_GROUPS[name])

    def expert(self, name: str) -> RankLists:
        """Rank lists of an expert group kind: expt_tp, ep or expt_dp."""
        return self._lists(self.expert_sizes, self._expert_order, EXPERT_GROUPS[name])

    def groups(self) -> dict[str, dict[str, RankLists]]:
        """Every group kind, as printed by `python -m agrs_bench.topology --json`."""
        return {
            "dense": {name: self.dense(name) for name in DENSE_GROUPS},
            "expert": {name: self.expert(name) for name in EXPERT_GROUPS},
        }

    def rank_lists(self, kind: str) -> RankLists:
        """Rank lists of any group kind, dense (tp, cp, dp, dp_cp, pp) or expert (expt_tp, ep, expt_dp)."""
        return self.dense(kind) if kind in DENSE_GROUPS else self.expert(kind)

    def group_of(self, kind: str, rank: int) -> list[int]:
        """The rank list of group kind `kind` (dense or expert name) that holds `rank`."""
        for ranks in self.rank_lists(kind):
            if rank in ranks:
                return ranks
        raise ConfigError(f"rank {rank} is outside the layout (ranks {self.rank_offset}.."
                          f"{self.rank_offset + self.world_size - 1})")

    def describe(self) -> dict[str, object]:
        """The layout as plain data, for results files."""
        return {
            "world_size": self.world_size, "tp": self.tp, "cp": self.cp, "ep": self.ep,
            "etp": self.etp, "pp": self.pp, "dp": self.dp, "expert_dp": self.expert_dp,
            "order": self.order, "rank_offset": self.rank_offset,
        }
