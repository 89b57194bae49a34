"""Run-level findings drawn from the cells of one results document. Pure.

- best NCCL options: per mode (ag_rs by time, fsdp_step by exposed communication), size, buffer
  and exec mode, the options pair with the lowest value beside the default's;
- graph against eager: each ag_rs cell measured both ways, flagged when the CUDA graph serializes
  what eager mode overlaps (NCCL may order the kernels of different communicators in a graph).
"""

from __future__ import annotations

from typing import Any

# A graph cell "serializes" when eager overlapped clearly and the graph did not.
EAGER_OVERLAP_MIN = 0.2
GRAPH_OVERLAP_MAX = 0.1


def _value(bench: dict[str, Any]) -> float | None:
    if bench["params"]["mode"] == "fsdp_step":
        return bench["extra_info"].get("exposed_comm_s")
    return bench["stats"]["median"]


def best_nccl_options(benchmarks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for bench in benchmarks:
        p = bench["params"]
        if p["mode"] in ("ag_rs", "fsdp_step") and _value(bench) is not None:
            key = (p["mode"], p["source"], p["buffer"], int(p["size_bytes"]), p.get("exec", "eager"))
            groups.setdefault(key, []).append(bench)
    rows = []
    for (mode, source, buffer, size, exec_mode), cells in sorted(groups.items()):
        if len({c["params"].get("nccl_options", "default") for c in cells}) < 2:
            continue
        best = min(cells, key=_value)
        default = next((c for c in cells if c["params"].get("nccl_options", "default") == "default"), None)
        rows.append({
            "mode": mode, "source": source, "buffer": buffer, "size_bytes": size, "exec": exec_mode,
            "measure": "exposed_comm_s" if mode == "fsdp_step" else "median_s",
            "best_options": best["params"].get("nccl_options", "default"), "best_s": _value(best),
            "default_s": _value(default) if default else None,
            "gain": 1 - _value(best) / _value(default) if default and _value(default) else None,
        })
    return rows


def graph_vs_eager(benchmarks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key = {}
    for bench in benchmarks:
        p = bench["params"]
        if p["mode"] == "ag_rs":
            by_key[(p["source"], p["buffer"], int(p["size_bytes"]), p.get("nccl_options", "default"),
                    p.get("exec", "eager"))] = bench
    rows = []
    for (source, buffer, size, options, exec_mode), graph in sorted(by_key.items()):
        eager = by_key.get((source, buffer, size, options, "eager"))
        if exec_mode != "graph" or eager is None:
            continue
        eager_eff = eager["extra_info"].get("overlap_efficiency")
        graph_eff = graph["extra_info"].get("overlap_efficiency")
        rows.append({
            "source": source, "buffer": buffer, "size_bytes": size, "nccl_options": options,
            "eager_s": eager["stats"]["median"], "graph_s": graph["stats"]["median"],
            "eager_overlap_efficiency": eager_eff, "graph_overlap_efficiency": graph_eff,
            "graph_serializes": (eager_eff is not None and graph_eff is not None
                                 and eager_eff >= EAGER_OVERLAP_MIN and graph_eff < GRAPH_OVERLAP_MAX),
        })
    return rows


def summarize_run(benchmarks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"best_nccl_options": best_nccl_options(benchmarks), "graph_vs_eager": graph_vs_eager(benchmarks)}


def of(doc: dict[str, Any]) -> dict[str, Any]:
    """The run's findings, drawn from its cells. The copy stored in results.json is for other
    readers; it is never trusted here, since a hand-edited or truncated copy could contradict the
    cells it came from (and files written before it existed have none)."""
    return summarize_run(doc["benchmarks"])
