"""The measures of a cell, by nccl-tests' conventions so numbers compare, with their intervals.
Pure; results/files.py (and, for the reference, measure/cells.py) call these; nothing else computes a figure.

S = bytes of the full buffer, n = group size, t = seconds per iteration. algbw = S / t and
busbw = algbw * (n-1)/n for AG and RS; an `ag_rs` iteration moves both ops' bytes, 2S. GB = 1e9.
Figures that compare parts (overlap efficiency, speedup, exposed communication, compute slowdown)
come from the parts' samples of the same rounds (analysis/paired.py): every interval is paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agrs_bench.analysis import paired, stats

BUS_FACTOR_OPS = {"ag": 1, "rs": 1, "ag_rs": 2}


def algbw_gbps(mode: str, size_bytes: int, seconds: Any) -> Any:
    return BUS_FACTOR_OPS[mode] * size_bytes / seconds / 1e9


def busbw_gbps(mode: str, size_bytes: int, seconds: Any, group_size: int) -> Any:
    return algbw_gbps(mode, size_bytes, seconds) * (group_size - 1) / group_size


def overlap_efficiency(t_ag: Any, t_rs: Any, t_ag_rs: Any) -> Any:
    """(t_ag + t_rs - t_ag_rs) / min(t_ag, t_rs): 0 = fully serial, 1 = the shorter op hidden."""
    return (t_ag + t_rs - t_ag_rs) / np.minimum(t_ag, t_rs)


def speedup(t_reference: Any, t_candidate: Any) -> Any:
    """t_ag_rs(single_comm) / t_ag_rs(source): > 1 means the source is faster."""
    return t_reference / t_candidate


def link_floor_s(mode: str, size_bytes: int, group_size: int, link_gbps: float) -> float:
    """Both ops' bytes over the per-direction link rate: each rank sends (n-1)/n of S per op."""
    return BUS_FACTOR_OPS[mode] * size_bytes * (group_size - 1) / group_size / (link_gbps * 1e9)


def _with_ci(found: dict[str, Any], name: str, interval: paired.Interval | None) -> None:
    if interval is not None:
        found[name] = interval.point
        found[f"{name}_ci"] = interval.bounds()


def collective_measures(mode: str, size_bytes: int, group_size: int, data: Sequence[float], *,
                        reference_s: float | None = None, link_gbps: float | None = None) -> dict[str, Any]:
    """Bandwidths of one ag/rs/ag_rs cell from its samples: median_ci_s, algbw_gbps, busbw_gbps,
    busbw_gbps_ci; against the reference and the link floor when those are known."""
    found: dict[str, Any] = {}
    if not len(data):
        return found
    point = float(np.median(np.asarray(data, dtype=float)))
    # Distribution-free: two order statistics and their exact coverage (a bootstrap of the median
    # of a few samples returns [min, max] and calls it 95%). None where no such interval reaches it.
    median = stats.median_interval(data, paired.CONFIDENCE)
    found["median_ci_s"] = median.bounds() if median else None
    found["median_interval_coverage"] = median.coverage if median else None
    if mode in BUS_FACTOR_OPS:
        found["algbw_gbps"] = algbw_gbps(mode, size_bytes, point)
        found["busbw_gbps"] = busbw_gbps(mode, size_bytes, point, group_size)
        # busbw falls as time grows: the slow end of the time interval is the low end of busbw.
        found["busbw_gbps_ci"] = ([busbw_gbps(mode, size_bytes, median.high, group_size),
                                   busbw_gbps(mode, size_bytes, median.low, group_size)] if median else None)
    if reference_s and mode in BUS_FACTOR_OPS:
        found["reference_busbw_gbps"] = busbw_gbps(mode, size_bytes, reference_s, group_size)
        found["busbw_vs_reference"] = found["busbw_gbps"] / found["reference_busbw_gbps"]
    if mode == "ag_rs" and link_gbps:
        found["link_floor_s"] = link_floor_s(mode, size_bytes, group_size, link_gbps)
        found["time_over_link_floor"] = point / found["link_floor_s"]
    return found


def pair_measures(*, ag: Sequence[float] | None, rs: Sequence[float] | None, ag_rs: Sequence[float],
                  single: Sequence[float] | None = None) -> dict[str, Any]:
    """Overlap efficiency of an ag_rs cell from its source's ag and rs, and its speedup over
    single_comm's ag_rs; each part's samples are of the same rounds (paired)."""
    found: dict[str, Any] = {}
    if ag is not None and rs is not None:
        _with_ci(found, "overlap_efficiency", paired.paired_interval(
            {"ag": ag, "rs": rs, "ag_rs": ag_rs},
            lambda m: overlap_efficiency(m["ag"], m["rs"], m["ag_rs"])))
        found["serial_sum_s"] = float(np.median(ag) + np.median(rs))
    if single is not None:
        _with_ci(found, "speedup_vs_single_comm", paired.paired_interval(
            {"single": single, "pair": ag_rs}, lambda m: speedup(m["single"], m["pair"])))
    return found


def step_measures(*, step: Sequence[float], compute_only: Sequence[float], comm_only: Sequence[float] | None,
                  compute_in_step: Sequence[float] | None = None,
                  compute_alone: Sequence[float] | None = None) -> dict[str, Any]:
    """fsdp_step from its three parts sampled in the same rounds: exposed communication (step -
    compute-only), its share of communication alone, and the slowdown of the step's GEMMs."""
    found: dict[str, Any] = {"compute_only_s": float(np.median(compute_only)),
                             "comm_only_s": float(np.median(comm_only)) if comm_only else None}
    median = stats.median_interval(step, paired.CONFIDENCE)
    found["median_ci_s"] = median.bounds() if median else None
    found["median_interval_coverage"] = median.coverage if median else None
    parts = {"step": step, "compute_only": compute_only}
    if comm_only:  # mfsdp_step has no comm-only part
        parts["comm_only"] = comm_only
    _with_ci(found, "exposed_comm_s", paired.paired_interval(
        parts, lambda m: m["step"] - m["compute_only"]))
    found["exposed_comm_fraction"] = (found["exposed_comm_s"] / found["comm_only_s"]
                                      if found["comm_only_s"] else None)
    if compute_in_step and compute_alone:
        found["compute_in_step_s"] = float(np.median(compute_in_step))
        found["compute_alone_s"] = float(np.median(compute_alone))
        _with_ci(found, "compute_slowdown", paired.paired_interval(
            {"in_step": compute_in_step, "alone": compute_alone}, lambda m: m["in_step"] / m["alone"]))
    else:
        found["compute_slowdown"] = None  # the GEMMs are timed with events, which a graph cannot hold
    return found


REFERENCE_METHOD = ("nccl-tests style: ops_per_sample back-to-back ops on one stream per event pair, "
                    "held like the measurement, sampled in the same rounds")


def reference_figures(per_iter_s: Sequence[float], sample_s_min: float, *, device_s: float, host_s: float,
                      on_device: bool) -> dict[str, Any]:
    """The nccl-tests-style reference of an ag or rs cell: its median seconds per op, or why it
    is left out. On a device whose host issues one op no faster than the device runs it,
    nccl-tests' loop times the host, not the collective."""
    if on_device and host_s >= device_s:
        return {"reference_omitted": f"launch-bound: the host issues one op in {host_s * 1e6:.1f} us and the "
                                     f"device runs it in {device_s * 1e6:.1f} us, so nccl-tests' loop "
                                     "times the host here"}
    return {"reference_s": float(np.median(per_iter_s)), "reference_method": REFERENCE_METHOD,
            "reference_sample_s_min": sample_s_min}
