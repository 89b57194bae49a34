"""Overlap seen on the device: from a Chrome trace (PyTorch profiler's export), how much of the
shorter of two kinds of kernels' time the other kind ran at the same time. Pure: JSON in, numbers
out.

Kernels are the complete events ("ph": "X") whose "cat" is "kernel"; a device is named by
args["device"] (the profiler's field), else by the event's pid. Per device, the time of kind A is
the union of its kernels' intervals (several streams, several kernels per op), likewise B; the
fraction is |union(A) ∩ union(B)| / min(|union(A)|, |union(B)|): 0 = never at once, 1 = the
shorter kind ran entirely while the other ran. NCCL kernel names contain AllGather / ReduceScatter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agrs_bench.analysis import paired

Matcher = str | Callable[[Mapping[str, Any]], bool]
"""A regular expression searched in the kernel's name, or a predicate on the whole event."""

ALL_GATHER = "AllGather"
REDUCE_SCATTER = "ReduceScatter"
ROUND_MARK = "agrs_round_"
"""Prefix of the profiler ranges (record_function) that bracket one traced round each."""


def _matches(matcher: Matcher, event: Mapping[str, Any]) -> bool:
    if callable(matcher):
        return bool(matcher(event))
    return re.search(matcher, str(event.get("name", ""))) is not None


def kernels(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in events if e.get("ph", "X") == "X" and e.get("cat") == "kernel" and "dur" in e]


def device_of(event: Mapping[str, Any]) -> Any:
    args = event.get("args") or {}
    return args.get("device", event.get("pid"))


def union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, disjoint intervals covering the same time as `intervals` (empty ones dropped)."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def length(intervals: Sequence[tuple[float, float]]) -> float:
    return sum(end - start for start, end in intervals)


def intersection(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    """Time covered by both of two sorted, disjoint interval lists."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0.0, high - low)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def _clip(start: float, end: float, window: tuple[float, float] | None) -> tuple[float, float]:
    if window is None:
        return start, end
    return max(start, window[0]), min(end, window[1])


def overlap_by_device(events: Iterable[Mapping[str, Any]], a: Matcher = ALL_GATHER,
                      b: Matcher = REDUCE_SCATTER, *, window: tuple[float, float] | None = None
                      ) -> dict[Any, float | None]:
    """Per device with kernels of either kind: the overlap fraction (None where one kind is absent)."""
    spans: dict[Any, tuple[list, list]] = {}
    for event in kernels(events):
        start = float(event["ts"])
        span = _clip(start, start + float(event["dur"]), window)
        kinds = spans.setdefault(device_of(event), ([], []))
        if _matches(a, event):
            kinds[0].append(span)
        elif _matches(b, event):
            kinds[1].append(span)
    found: dict[Any, float | None] = {}
    for device, (a_spans, b_spans) in spans.items():
        ua, ub = union(a_spans), union(b_spans)
        shorter = min(length(ua), length(ub))
        if not ua and not ub:
            continue
        found[device] = intersection(ua, ub) / shorter if shorter > 0 else None
    return found


def round_windows(events: Iterable[Mapping[str, Any]], prefix: str = ROUND_MARK) -> list[tuple[float, float]]:
    """(start, end) of each traced round, from the profiler ranges named prefix + index; the end
    reaches to the next round's start (a kernel may end after its host range), the last is open."""
    first: dict[int, float] = {}
    for e in events:
        name, cat = str(e.get("name", "")), str(e.get("cat", ""))
        if e.get("ph", "X") == "X" and name.startswith(prefix) and name[len(prefix):].isdigit() \
                and cat != "kernel" and not cat.startswith("gpu"):  # the host range, not its GPU echo
            index = int(name[len(prefix):])
            first[index] = min(first.get(index, float("inf")), float(e["ts"]))
    starts = [first[i] for i in sorted(first)]
    return [(start, starts[i + 1] if i + 1 < len(starts) else float("inf")) for i, start in enumerate(starts)]


def fraction(events: Sequence[Mapping[str, Any]], a: Matcher = ALL_GATHER, b: Matcher = REDUCE_SCATTER,
             *, window: tuple[float, float] | None = None) -> float | None:
    """The least-overlapped device's fraction (a pair overlaps only as well as its worst device),
    None when no device ran both kinds."""
    values = [v for v in overlap_by_device(events, a, b, window=window).values() if v is not None]
    return min(values) if values else None


def per_round(events: Sequence[Mapping[str, Any]], a: Matcher = ALL_GATHER, b: Matcher = REDUCE_SCATTER,
              prefix: str = ROUND_MARK) -> list[float | None]:
    """The fraction of every traced round (see round_windows)."""
    return [fraction(events, a, b, window=w) for w in round_windows(events, prefix)]


def trace_events(doc: Any) -> list[Mapping[str, Any]]:
    """The event list of a Chrome trace: {"traceEvents": [...]} or a bare list."""
    return list(doc.get("traceEvents", []) if isinstance(doc, dict) else doc)


NO_KERNELS = ("a traced round showed no kernels of one of the collectives on some device (profiler without "
              "CUDA activity?)")


@dataclass(frozen=True, kw_only=True)
class OverlapFigures:
    """The overlap a trace showed (across_ranks), or why it shows none."""

    fraction: paired.Interval | None
    """Per round the least-overlapped device's fraction, then their median over the traced rounds
    with its bootstrap interval over them; None: see reason."""
    rounds: int
    """Traced rounds (one round gives no interval)."""
    reason: str | None = None
    """Why there is no fraction."""

    def extra_info(self) -> dict[str, Any]:
        if self.fraction is None:
            return {"trace_overlap_fraction": None, "trace_overlap_reason": self.reason}
        found: dict[str, Any] = {"trace_overlap_fraction": self.fraction.point}
        if self.rounds > 1:
            found["trace_overlap_fraction_ci"] = self.fraction.bounds()
        return found


@dataclass(frozen=True, kw_only=True)
class TraceFigures:
    """What a traced cell recorded and showed (measure/tracing.overlap_info)."""

    trace_file: str
    """Rank 0's trace, relative to the run directory."""
    traced_rounds: int
    overlap: OverlapFigures
    kinds: dict[str, Any] | None = None
    """trace_kinds.cell_info: per role what moved the bytes, and the levers NCCL ignored; None on
    CPU. A dict: the profiler's own summary of kernels and copies, whose names vary by NCCL version."""

    def extra_info(self) -> dict[str, Any]:
        return {"trace_file": self.trace_file, "traced_rounds": self.traced_rounds, **(self.kinds or {}),
                **self.overlap.extra_info()}


def across_ranks(per_rank: Sequence[Sequence[float | None] | None], rounds: int) -> OverlapFigures:
    """The overlap of a traced cell from every rank's `per_round` fractions: per round the
    least-overlapped device's, then their median over the rounds with its interval, or no
    fraction when a round shows no kernels of one of the collectives on some device."""
    per_round = []
    for index in range(rounds):
        values = [r[index] for r in per_rank if r and index < len(r) and r[index] is not None]
        per_round.append(min(values) if len(values) == len(per_rank) else None)
    if any(v is None for v in per_round):
        return OverlapFigures(fraction=None, rounds=rounds, reason=NO_KERNELS)
    return OverlapFigures(fraction=paired.median_interval(per_round), rounds=rounds)
