"""NCCL's levers in the FSDP step: per buffer and bucket size, the best setting of each lever
(CTA policy, buffer registration, both, the other communicator options) against the default
options, on the same source, from cells sampled in the same interleaved rounds — so the
difference in exposed communication and in compute slowdown gets a paired interval. Pure.

And which of those settings Megatron can reach, and how.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agrs_bench.analysis import paired

FAMILIES = ("cta_policy", "registration", "cta_policy+registration", "other options")


def family(label: str) -> str | None:
    """The lever family of an nccl_options label ("ag:.../rs:..."), None for the default."""
    if label == "default":
        return None
    cta, reg = "cta_policy=" in label, "registration=" in label
    if cta and reg:
        return "cta_policy+registration"
    return "cta_policy" if cta else "registration" if reg else "other options"


def megatron_reach(label: str) -> str:
    """How Megatron reaches an (AG, RS) options pair, or "ours only".

    Read from megatron-core 0.19.2 / Megatron-FSDP 0.6.1: `--use-nccl-ub` (nccl_ub) allocates the
    FSDP buffers from NCCL's allocator and registers them on the DP and AG groups, symmetric first
    (`disable_symmetric_registration` for plain user buffers); per-group NCCL configs
    (`--nccl-communicator-config-path`) carry min_ctas, max_ctas and cga_cluster_size but no CTA
    policy, which only the process-wide environment variable NCCL_CTA_POLICY sets — the same for
    every communicator."""
    if label == "default":
        return "default"
    ag, _, rs = label.partition("/")
    ag, rs = ag.removeprefix("ag:"), rs.removeprefix("rs:")
    if ag != rs:
        return "ours only (AG and RS differ)"
    settings = set(ag.split("+"))
    ways = []
    if "registration=symmetric" in settings:
        ways.append("--use-nccl-ub")
    if "registration=ub" in settings:
        ways.append("--use-nccl-ub with disable_symmetric_registration")
    policy = next((s for s in settings if s.startswith("cta_policy=")), None)
    if policy:
        ways.append(f"NCCL_CTA_POLICY={policy.split('=')[1].upper()} (every communicator)")
    rest = settings - {"registration=symmetric", "registration=ub"} - ({policy} if policy else set())
    if rest & {"hp"}:
        return "ours only (high-priority streams per role)"
    if rest:
        ways.append("--nccl-communicator-config-path")
    return " + ".join(ways)


def _series(bench: Mapping[str, Any]) -> dict[str, Sequence[float]] | None:
    e = bench["extra_info"]
    step = bench["stats"].get("data")
    if not step or not e.get("compute_only_data"):
        return None
    found = {"step": step, "compute_only": e["compute_only_data"]}
    if e.get("compute_in_step_data") and e.get("compute_alone_data"):
        found["in_step"], found["alone"] = e["compute_in_step_data"], e["compute_alone_data"]
    return found


def _interval(found: paired.Interval | None) -> dict[str, Any] | None:
    return None if found is None else {"point": found.point, "ci": found.bounds()}


def best_levers(benchmarks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows (buffer, size, source, family): the family's setting with the least exposed
    communication, its exposed comm and compute slowdown minus the default's (paired intervals over
    the shared rounds), the levers NCCL ignored there, and how Megatron reaches it."""
    cells: dict[tuple, dict[str, Mapping[str, Any]]] = {}
    for bench in benchmarks:
        p = bench["params"]
        if p["mode"] == "fsdp_step" and p.get("exec", "eager") == "eager":
            key = (p["buffer"], int(p["size_bytes"]), p["source"])
            cells.setdefault(key, {})[p.get("nccl_options", "default")] = bench
    rows = []
    for (buffer, size, source), by_label in sorted(cells.items()):
        default = by_label.get("default")
        base = _series(default) if default else None
        if base is None:
            continue
        for fam in FAMILIES:
            candidates = [(label, bench) for label, bench in by_label.items() if family(label) == fam]
            if not candidates:
                continue
            label, bench = min(candidates, key=lambda c: c[1]["extra_info"].get("exposed_comm_s", float("inf")))
            mine = _series(bench)
            if mine is None or len(mine["step"]) != len(base["step"]):
                continue
            parts = {f"a_{k}": v for k, v in mine.items()} | {f"b_{k}": v for k, v in base.items()}
            exposed = paired.paired_interval(parts, lambda m: (m["a_step"] - m["a_compute_only"])
                                             - (m["b_step"] - m["b_compute_only"]))
            slowdown = None
            if "in_step" in mine and "in_step" in base:
                slowdown = paired.paired_interval(parts, lambda m: m["a_in_step"] / m["a_alone"]
                                                  - m["b_in_step"] / m["b_alone"])
            rows.append({"buffer": buffer, "size_bytes": size, "source": source, "family": fam,
                         "best": label, "exposed_comm_s": bench["extra_info"].get("exposed_comm_s"),
                         "default_exposed_comm_s": default["extra_info"].get("exposed_comm_s"),
                         "exposed_comm_delta_s": _interval(exposed),
                         "compute_slowdown_delta": _interval(slowdown),
                         "levers_ignored": list(bench["extra_info"].get("levers_ignored", [])),
                         "megatron": megatron_reach(label)})
    return rows
