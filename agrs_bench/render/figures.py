"""What report and plots read from a cell: a figure, its 95% interval, and what a reader must be
warned about. Reads results.json fields and computes nothing (intervals come from the engine)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

CPU_NOTE = "CPU/gloo: timings are not meaningful"
NO_DIFFERENCE = "no difference measured"
# Field -> (interval field, the "no effect" value an interval is checked against, or None).
INTERVAL_FIELD = {
    "median_s": ("median_ci_s", None),
    "busbw_gbps": ("busbw_gbps_ci", None),
    "overlap_efficiency": ("overlap_efficiency_ci", 0.0),
    "speedup_vs_single_comm": ("speedup_vs_single_comm_ci", 1.0),
    "exposed_comm_s": ("exposed_comm_s_ci", 0.0),
    "compute_slowdown": ("compute_slowdown_ci", 1.0),
    "trace_overlap_fraction": ("trace_overlap_fraction_ci", 0.0),
}
# An interval wider than this says nothing about the figure (overlap runs from 0 to 1).
USEFUL_WIDTH = {"overlap_efficiency": 1.0, "trace_overlap_fraction": 1.0}
TOO_WIDE = "too wide to say anything"
NO_INTERVAL_AT_95 = "none: too few rounds for 95%"


class Figure(NamedTuple):
    """One number of a cell with its 95% interval (None when the file has none)."""

    value: float | None
    interval: tuple[float, float] | None
    no_effect: float | None
    missing: str = ""
    """Why the file has no interval, where it says so (too few rounds for 95%)."""
    useful_width: float | None = None
    """Intervals wider than this say nothing."""

    @property
    def too_wide(self) -> bool:
        return (self.interval is not None and self.useful_width is not None
                and self.interval[1] - self.interval[0] > self.useful_width)

    @property
    def no_difference(self) -> bool:
        """The interval holds the no-effect value: the data do not show an effect."""
        return (self.interval is not None and self.no_effect is not None
                and self.interval[0] <= self.no_effect <= self.interval[1])


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def figure(bench: dict[str, Any], key: str) -> Figure:
    """`key` of a cell ("median_s" is stats.median) with its interval field."""
    extra = bench["extra_info"]
    value = _number(bench["stats"].get("median")) if key == "median_s" else _number(extra.get(key))
    ci_key, null = INTERVAL_FIELD[key]
    ci = extra.get(ci_key)
    interval = None
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_number(x) is not None for x in ci):
        interval = (float(ci[0]), float(ci[1]))
    # measures.py writes median_interval_coverage = null where no order-statistic interval reaches
    # 95%: that is a statement about the rounds, not a file written before intervals existed.
    missing = NO_INTERVAL_AT_95 if (key in ("median_s", "busbw_gbps") and interval is None
                                    and "median_interval_coverage" in extra) else ""
    return Figure(value, interval, null, missing, USEFUL_WIDTH.get(key))


def sig(value: float | None, digits: int = 3) -> str:
    """Significant digits, never 0.0 for a small positive number; '-' when there is none."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 10 ** digits:
        return f"{value:.0f}"
    text = f"{value:#.{digits}g}"
    return text.rstrip(".") if "e" not in text else f"{value:.{digits - 1}e}"


def with_interval(f: Figure, scale: float = 1.0, digits: int = 3, *, judge: bool = True) -> str:
    """'1.31 [1.25, 1.37]', '0.98 [0.93, 1.04] no difference measured', '1.31 [–]' (no interval)."""
    if f.value is None:
        return "-"
    point = sig(f.value * scale, digits)
    if f.interval is None:
        return f"{point} [{f.missing}]" if f.missing else f"{point} [–]"
    low, high = (sig(x * scale, digits) for x in f.interval)
    if f.too_wide:
        return f"{point} [{low}, {high}] {TOO_WIDE}"
    return f"{point} [{low}, {high}]" + (f" {NO_DIFFERENCE}" if judge and f.no_difference else "")


def overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool | None:
    """Do two intervals overlap? None when either is missing."""
    if a is None or b is None:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def flags(bench: dict[str, Any]) -> list[str]:
    """Short marks for the cell's row: throttled, short samples, warnings."""
    extra = bench["extra_info"]
    marks = []
    telemetry = extra.get("telemetry") or {}
    if isinstance(telemetry, dict) and telemetry.get("throttled"):
        reasons = telemetry.get("throttle_reasons") or telemetry.get("reasons")
        marks.append("⚠ throttled" + (f" ({', '.join(map(str, reasons))})" if isinstance(reasons, list) and reasons
                                      else ""))
    if extra.get("sample_short"):
        achieved, target = _number(extra.get("sample_s_min")), _number(extra.get("sample_s_target"))
        detail = (f" ({sig(achieved * 1e3, 2)} of {sig(target * 1e3, 2)} ms)"
                  if achieved is not None and target is not None else "")
        marks.append(f"⚠ short samples{detail}")
    warnings = extra.get("warnings") or []
    if warnings:
        marks.append(f"⚠ {len(warnings)} warning(s)")
    return marks


def is_cpu(doc: dict[str, Any]) -> bool:
    return doc["machine_info"].get("backend") == "gloo"


def layout_text(layout: dict[str, Any] | None) -> str:
    """Megatron's notation: 'tp1 cp1 ep2 etp1 pp1 dp4, order tp-cp-ep-dp-pp' (+ rank offset)."""
    layout = layout or {}
    sizes = " ".join(f"{k}{layout[k]}" for k in ("tp", "cp", "ep", "etp", "pp", "dp") if k in layout)
    text = f"{sizes}, order {layout.get('order', '?')}" if sizes else "-"
    if layout.get("rank_offset"):
        text += f", rank offset {layout['rank_offset']}"
    return text
