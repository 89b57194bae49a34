"""The measures of a cell, by nccl-tests' conventions so numbers compare, with their intervals.
Pure. Each function returns a frozen record (CollectiveFigures, PairFigures, StepFigures,
ReferenceFigures) whose one `extra_info()` names the figures in results.json; results/files.py
(and, for the reference, measure/cells.py) call these; nothing else computes a figure.

S = bytes of the full buffer, n = group size, t = seconds per iteration. algbw = S / t and
busbw = algbw * (n-1)/n for AG and RS; an `ag_rs` iteration moves both ops' bytes, 2S. GB = 1e9.
Figures that compare parts (overlap efficiency, speedup, exposed communication, compute slowdown)
come from the parts' samples of the same rounds (analysis/paired.py): every interval is paired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


def _bounds(interval: paired.Interval | stats.OrderInterval | None) -> list[float] | None:
    return interval.bounds() if interval is not None else None


def _median_fields(interval: stats.OrderInterval | None) -> dict[str, Any]:
    """A cell's median interval and its exact coverage; both None where there are too few rounds."""
    return {"median_ci_s": _bounds(interval), "median_interval_coverage": interval.coverage if interval else None}


def _with_ci(found: dict[str, Any], name: str, interval: paired.Interval | None) -> None:
    """`name` and `name_ci` where the figure has a value; neither where it is undefined."""
    if interval is not None:
        found[name] = interval.point
        found[f"{name}_ci"] = interval.bounds()


@dataclass(frozen=True, kw_only=True)
class CollectiveFigures:
    """The figures of one ag, rs or ag_rs cell from its own samples (collective_figures)."""

    median_s: float
    """Median seconds per iteration over the rounds (results.json: stats.median)."""
    median_interval_s: stats.OrderInterval | None
    """Two order statistics around the median and their exact coverage; None: too few rounds."""
    algbw_gbps: float
    busbw_gbps: float
    busbw_interval_gbps: stats.OrderInterval | None
    """busbw at the ends of median_interval_s (the slow end is the low busbw), same coverage."""
    reference_busbw_gbps: float | None = None
    """busbw of the cell's nccl-tests-style reference; None: no reference (ag_rs has none)."""
    link_floor_s: float | None = None
    """ag_rs: both ops' bytes over the per-direction link rate; None: the rate is not known."""

    @property
    def busbw_vs_reference(self) -> float | None:
        return self.busbw_gbps / self.reference_busbw_gbps if self.reference_busbw_gbps is not None else None

    @property
    def time_over_link_floor(self) -> float | None:
        return self.median_s / self.link_floor_s if self.link_floor_s is not None else None

    def extra_info(self) -> dict[str, Any]:
        found: dict[str, Any] = {**_median_fields(self.median_interval_s), "algbw_gbps": self.algbw_gbps,
                                 "busbw_gbps": self.busbw_gbps, "busbw_gbps_ci": _bounds(self.busbw_interval_gbps)}
        if self.reference_busbw_gbps is not None:
            found.update(reference_busbw_gbps=self.reference_busbw_gbps, busbw_vs_reference=self.busbw_vs_reference)
        if self.link_floor_s is not None:
            found.update(link_floor_s=self.link_floor_s, time_over_link_floor=self.time_over_link_floor)
        return found


def collective_figures(mode: str, size_bytes: int, group_size: int, data: Sequence[float], *,
                       reference_s: float | None = None, link_gbps: float | None = None) -> CollectiveFigures:
    """Bandwidths of one ag/rs/ag_rs cell from its samples; against the reference and the link
    floor when those are known."""
    if mode not in BUS_FACTOR_OPS or not len(data):
        raise ValueError(f"collective figures need an ag, rs or ag_rs cell with samples, got {mode!r} "
                         f"with {len(data)} sample(s)")
    point = float(np.median(np.asarray(data, dtype=float)))
    # Distribution-free: two order statistics and their exact coverage (a bootstrap of the median
    # of a few samples returns [min, max] and calls it 95%). None where no such interval reaches it.
    median = stats.median_interval(data, paired.CONFIDENCE)
    return CollectiveFigures(
        median_s=point, median_interval_s=median, algbw_gbps=algbw_gbps(mode, size_bytes, point),
        busbw_gbps=busbw_gbps(mode, size_bytes, point, group_size),
        # busbw falls as time grows: the slow end of the time interval is the low end of busbw.
        busbw_interval_gbps=stats.OrderInterval(busbw_gbps(mode, size_bytes, median.high, group_size),
                                                busbw_gbps(mode, size_bytes, median.low, group_size),
                                                median.coverage) if median else None,
        reference_busbw_gbps=busbw_gbps(mode, size_bytes, reference_s, group_size) if reference_s else None,
        link_floor_s=(link_floor_s(mode, size_bytes, group_size, link_gbps)
                      if mode == "ag_rs" and link_gbps else None))


@dataclass(frozen=True, kw_only=True)
class PairFigures:
    """The cross-cell figures of an ag_rs cell, paired over the rounds of its comparison (pair_figures)."""

    overlap_efficiency: paired.Interval | None = None
    """(t_ag + t_rs - t_ag_rs) / min(t_ag, t_rs) with its paired bootstrap interval; None: the
    source's ag and rs were not sampled with it, or the figure is undefined."""
    serial_sum_s: float | None = None
    """median ag + median rs: what the pair would take one after the other; None: no ag and rs."""
    speedup_vs_single_comm: paired.Interval | None = None
    """t_ag_rs(single_comm) / t_ag_rs(this source); None: single_comm was not sampled with it."""

    def extra_info(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        _with_ci(found, "overlap_efficiency", self.overlap_efficiency)
        if self.serial_sum_s is not None:
            found["serial_sum_s"] = self.serial_sum_s
        _with_ci(found, "speedup_vs_single_comm", self.speedup_vs_single_comm)
        return found


def pair_figures(*, ag: Sequence[float] | None, rs: Sequence[float] | None, ag_rs: Sequence[float],
                 single: Sequence[float] | None = None) -> PairFigures:
    """Overlap efficiency of an ag_rs cell from its source's ag and rs, and its speedup over
    single_comm's ag_rs; each part's samples are of the same rounds (paired)."""
    overlap = serial_s = faster = None
    if ag is not None and rs is not None:
        overlap = paired.paired_interval({"ag": ag, "rs": rs, "ag_rs": ag_rs},
                                         lambda m: overlap_efficiency(m["ag"], m["rs"], m["ag_rs"]))
        serial_s = float(np.median(ag) + np.median(rs))
    if single is not None:
        faster = paired.paired_interval({"single": single, "pair": ag_rs}, lambda m: speedup(m["single"], m["pair"]))
    return PairFigures(overlap_efficiency=overlap, serial_sum_s=serial_s, speedup_vs_single_comm=faster)


@dataclass(frozen=True, kw_only=True)
class StepFigures:
    """The figures of an fsdp_step or mfsdp_step cell from its parts of the same rounds (step_figures)."""

    compute_only_s: float
    """Median of the compute-only part."""
    comm_only_s: float | None
    """Median of the communication-only part; None: the step has none (mfsdp_step)."""
    median_interval_s: stats.OrderInterval | None
    """The step's median interval, as CollectiveFigures.median_interval_s."""
    exposed_comm_s: paired.Interval | None
    """step - compute-only, paired over rounds."""
    compute_in_step_s: float | None = None
    """Median of the step's GEMMs timed inside the step; None: not timed (a CUDA graph cannot
    hold the events that time them)."""
    compute_alone_s: float | None = None
    compute_slowdown: paired.Interval | None = None
    """compute_in_step / compute_alone, paired over rounds."""

    @property
    def exposed_comm_fraction(self) -> float | None:
        """exposed_comm_s / comm_only_s; None without a communication-only part."""
        return self.exposed_comm_s.point / self.comm_only_s if self.comm_only_s and self.exposed_comm_s else None

    def extra_info(self) -> dict[str, Any]:
        found: dict[str, Any] = {"compute_only_s": self.compute_only_s, "comm_only_s": self.comm_only_s,
                                 **_median_fields(self.median_interval_s)}
        _with_ci(found, "exposed_comm_s", self.exposed_comm_s)
        found["exposed_comm_fraction"] = self.exposed_comm_fraction
        if self.compute_in_step_s is None:
            found["compute_slowdown"] = None  # the GEMMs were not timed: said, not left out
        else:
            found.update(compute_in_step_s=self.compute_in_step_s, compute_alone_s=self.compute_alone_s)
            _with_ci(found, "compute_slowdown", self.compute_slowdown)
        return found


def step_figures(*, step: Sequence[float], compute_only: Sequence[float], comm_only: Sequence[float] | None,
                 compute_in_step: Sequence[float] | None = None,
                 compute_alone: Sequence[float] | None = None) -> StepFigures:
    """fsdp_step from its three parts sampled in the same rounds: exposed communication (step -
    compute-only), its share of communication alone, and the slowdown of the step's GEMMs."""
    comm_only_s = float(np.median(comm_only)) if comm_only else None
    parts = {"step": step, "compute_only": compute_only}
    if comm_only:  # mfsdp_step has no comm-only part
        parts["comm_only"] = comm_only
    timed = bool(compute_in_step and compute_alone)  # the GEMMs: events, which a graph cannot hold
    return StepFigures(
        compute_only_s=float(np.median(compute_only)), comm_only_s=comm_only_s,
        median_interval_s=stats.median_interval(step, paired.CONFIDENCE),
        exposed_comm_s=paired.paired_interval(parts, lambda m: m["step"] - m["compute_only"]),
        compute_in_step_s=float(np.median(compute_in_step)) if timed else None,
        compute_alone_s=float(np.median(compute_alone)) if timed else None,
        compute_slowdown=paired.paired_interval({"in_step": compute_in_step, "alone": compute_alone},
                                                lambda m: m["in_step"] / m["alone"]) if timed else None)


REFERENCE_METHOD = ("nccl-tests style: ops_per_sample back-to-back ops on one stream per event pair, "
                    "held like the measurement, sampled in the same rounds")


@dataclass(frozen=True, kw_only=True)
class ReferenceFigures:
    """The nccl-tests-style reference of an ag or rs cell (reference_figures), or why it is left out."""

    reference_s: float | None = None
    """Median seconds per op of the reference; None: left out (see omitted)."""
    sample_s_min: float | None = None
    """The reference's shortest whole sample."""
    omitted: str | None = None
    """Why there is no reference (--no-reference, a graph cell, a launch-bound host)."""

    def __post_init__(self) -> None:
        if (self.reference_s is None) == (self.omitted is None):
            raise ValueError(f"a reference has either a time or the reason it is left out: {self}")

    def extra_info(self) -> dict[str, Any]:
        if self.omitted is not None:
            return {"reference_omitted": self.omitted}
        return {"reference_s": self.reference_s, "reference_method": REFERENCE_METHOD,
                "reference_sample_s_min": self.sample_s_min}


def reference_figures(per_iter_s: Sequence[float], sample_s_min: float, *, device_s: float, host_s: float,
                      on_device: bool) -> ReferenceFigures:
    """The nccl-tests-style reference of an ag or rs cell: its median seconds per op, or why it
    is left out. On a device whose host issues one op no faster than the device runs it,
    nccl-tests' loop times the host, not the collective."""
    if on_device and host_s >= device_s:
        return ReferenceFigures(omitted=f"launch-bound: the host issues one op in {host_s * 1e6:.1f} us and the "
                                        f"device runs it in {device_s * 1e6:.1f} us, so nccl-tests' loop "
                                        "times the host here")
    return ReferenceFigures(reference_s=float(np.median(per_iter_s)), sample_s_min=sample_s_min)
