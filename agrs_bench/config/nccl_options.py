"""Per-role NCCL communicator options: what the AG groups and the RS groups are created with.

Upstream, the AG communicator is created with default options even when the DP communicator is
tuned; these let the two roles differ. `high_priority` also puts the role's CUDA stream at high
priority, since sync NCCL collectives run on the stream that issues them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agrs_bench.errors import ConfigError

_INT_KEYS = ("min_ctas", "max_ctas", "cga_cluster_size")


@dataclass(frozen=True, kw_only=True)
class NcclOptions:
    """Options of one role's communicators; None leaves NCCL's default."""

    high_priority: bool = False
    """High-priority stream for the role (the role stream and the group's internal stream)."""
    min_ctas: int | None = None
    """NCCL_MIN_CTAS of these communicators (ncclConfig_t.minCTAs)."""
    max_ctas: int | None = None
    """NCCL_MAX_CTAS of these communicators (ncclConfig_t.maxCTAs)."""
    cga_cluster_size: int | None = None
    """CGA cluster size of the NCCL kernels (ncclConfig_t.cgaClusterSize), 0-8."""

    def __post_init__(self) -> None:
        for key in _INT_KEYS:
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 0 or value > 64):
                raise ConfigError(f"NCCL option {key}={value!r} must be an integer in 0..64")
        if self.min_ctas and self.max_ctas and self.min_ctas > self.max_ctas:
            raise ConfigError(f"NCCL options min_ctas={self.min_ctas} > max_ctas={self.max_ctas}")
        if self.cga_cluster_size is not None and self.cga_cluster_size > 8:
            raise ConfigError(f"NCCL option cga_cluster_size={self.cga_cluster_size} must be 0..8")

    @property
    def is_default(self) -> bool:
        return self == NcclOptions()

    def label(self) -> str:
        parts = ["hp"] if self.high_priority else []
        parts += [f"{k}={getattr(self, k)}" for k in _INT_KEYS if getattr(self, k) is not None]
        return "+".join(parts) or "default"

    def to_process_group_options(self) -> Any:
        """A ProcessGroupNCCL.Options, or None for all defaults (needs an NCCL build of torch)."""
        if self.is_default:
            return None
        import torch.distributed as dist

        options = dist.ProcessGroupNCCL.Options()
        options.is_high_priority_stream = self.high_priority
        for key in _INT_KEYS:
            if getattr(self, key) is not None:
                setattr(options.config, key, getattr(self, key))
        return options


def parse_nccl_options(text: str) -> NcclOptions:
    """'high_priority,min_ctas=4,max_ctas=16,cga_cluster_size=2' (or 'default')."""
    fields: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        if item == "default":
            continue
        if item in ("high_priority", "hp"):
            fields["high_priority"] = True
            continue
        key, sep, value = item.partition("=")
        if not sep or key not in _INT_KEYS:
            raise ConfigError(f"NCCL option {item!r} is not high_priority or "
                              f"{'/'.join(_INT_KEYS)}=INT")
        if not re.fullmatch(r"[0-9]{1,9}", value.strip()):  # int() would take '٤' and 4300 digits
            raise ConfigError(f"NCCL option {item!r}: {value!r} is not an integer")
        fields[key] = int(value)
    return NcclOptions(**fields)


# The grid of --sweep-nccl-options: (AG options, RS options) pairs, default first.
SWEEP_GRID = (
    (NcclOptions(), NcclOptions()),
    (NcclOptions(high_priority=True), NcclOptions()),
    (NcclOptions(), NcclOptions(high_priority=True)),
    (NcclOptions(high_priority=True), NcclOptions(high_priority=True)),
    (NcclOptions(max_ctas=8), NcclOptions(max_ctas=8)),
    (NcclOptions(max_ctas=16), NcclOptions(max_ctas=16)),
    (NcclOptions(max_ctas=8), NcclOptions(max_ctas=24)),
    (NcclOptions(min_ctas=16, max_ctas=32), NcclOptions(min_ctas=16, max_ctas=32)),
    (NcclOptions(cga_cluster_size=4), NcclOptions(cga_cluster_size=4)),
)


def pair_label(ag: NcclOptions, rs: NcclOptions) -> str:
    return "default" if ag.is_default and rs.is_default else f"ag:{ag.label()}/rs:{rs.label()}"
