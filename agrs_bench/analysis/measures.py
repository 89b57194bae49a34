"""The measures, by nccl-tests' conventions so numbers compare. Pure.

S = bytes of the full buffer, n = group size, t = seconds per iteration. algbw = S / t and
busbw = algbw * (n-1)/n for AG and RS; an `ag_rs` iteration moves both ops' bytes, 2S. GB = 1e9.
"""

from __future__ import annotations

BUS_FACTOR_OPS = {"ag": 1, "rs": 1, "ag_rs": 2}


def algbw_gbps(mode: str, size_bytes: int, seconds: float) -> float:
    return BUS_FACTOR_OPS[mode] * size_bytes / seconds / 1e9


def busbw_gbps(mode: str, size_bytes: int, seconds: float, group_size: int) -> float:
    return algbw_gbps(mode, size_bytes, seconds) * (group_size - 1) / group_size


def overlap_efficiency(t_ag: float, t_rs: float, t_ag_rs: float) -> float:
    """(t_ag + t_rs - t_ag_rs) / min(t_ag, t_rs): 0 = fully serial, 1 = the shorter op hidden."""
    return (t_ag + t_rs - t_ag_rs) / min(t_ag, t_rs)


def speedup(t_reference: float, t_candidate: float) -> float:
    """t_ag_rs(single_comm) / t_ag_rs(source): > 1 means the source is faster."""
    return t_reference / t_candidate


def link_floor_s(mode: str, size_bytes: int, group_size: int, link_gbps: float) -> float:
    """Both ops' bytes over the per-direction link rate: each rank sends (n-1)/n of S per op."""
    return BUS_FACTOR_OPS[mode] * size_bytes * (group_size - 1) / group_size / (link_gbps * 1e9)
