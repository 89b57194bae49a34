"""report.md's section on NCCL's levers: per buffer and bucket, the step's exposed communication
and compute slowdown under the best setting of each lever against the default options (paired
intervals, analysis.levers), what NCCL ignored (read from --trace), and how Megatron reaches each
setting. Renders only: the figures come from analysis.levers over the run's cells."""

from __future__ import annotations

from typing import Any

from agrs_bench.analysis import levers
from agrs_bench.results import schema


def _ms(found: dict[str, Any] | None) -> str:
    if not found:
        return "-"
    low, high = found["ci"]
    verdict = "" if low <= 0 <= high else (" (less)" if high < 0 else " (more)")
    return f"{found['point'] * 1e3:+.3g} [{low * 1e3:+.3g}, {high * 1e3:+.3g}]{verdict}"


def _ratio(found: dict[str, Any] | None) -> str:
    if not found:
        return "-"
    low, high = found["ci"]
    return f"{found['point']:+.3f} [{low:+.3f}, {high:+.3f}]"


def section(doc: dict[str, Any]) -> list[str]:
    """The levers section, or nothing when the run measured no lever against the default."""
    rows = levers.best_levers(doc["benchmarks"])
    ignored = sorted({f"{b['params']['mode']} {b['params']['buffer']} {schema.size_label(b['params']['size_bytes'])} "
                      f"{b['params'].get('nccl_options', 'default')}: {message}"
                      for b in doc["benchmarks"] for message in b["extra_info"].get("levers_ignored", [])})
    if not rows and not ignored:
        return []
    lines = ["", "## NCCL's levers in the step", "",
             "Best setting of each lever against the default options, same source, sampled in the same rounds: "
             "exposed communication and compute slowdown of the step minus the default's (95% paired interval; "
             "negative is better).", "",
             "| buffers | bucket | source | lever | best setting | exposed comm Δ ms [95%] "
             "| compute slowdown Δ [95%] | NCCL ignored | Megatron reaches it by |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['buffer']} | {schema.size_label(row['size_bytes'])} | {row['source']} "
                     f"| {row['family']} | {row['best']} | {_ms(row['exposed_comm_delta_s'])} "
                     f"| {_ratio(row['compute_slowdown_delta'])} | {'; '.join(row['levers_ignored']) or '-'} "
                     f"| {row['megatron']} |")
    if ignored:
        lines += ["", "Levers NCCL ignored (read from the --trace kernel timeline: they are not measured levers):", ""]
        lines += [f"- {line}" for line in ignored]
    return lines
