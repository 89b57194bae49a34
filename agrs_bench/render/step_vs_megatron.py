"""report.md sections: Megatron-FSDP's own step (mfsdp_step) beside the modelled step (fsdp_step)
of the same bucket and source, and every option the run used labelled by its reach in Megatron's
configuration (config.reach). Reads the result file only."""

from __future__ import annotations

from typing import Any

from agrs_bench.config import reach
from agrs_bench.render import figures
from agrs_bench.results import schema


def _exposed(bench: dict[str, Any]) -> str:
    return figures.with_interval(figures.figure(bench, "exposed_comm_s"), 1e3, judge=False)


def _variant(bench: dict[str, Any]) -> str:
    p, e = bench["params"], bench["extra_info"]
    model = (e.get("step_model") or {}).get("name", "ours")
    return f"{model}, {p.get('issue', 'role_streams')}"


def comparison_section(doc: dict[str, Any]) -> list[str]:
    """The modelled step against Megatron-FSDP's own, where both ran: exposed time of each with
    its paired interval (each against its own compute-only part, sampled in its own rounds), and
    the model's error, model - Megatron-FSDP (no interval: the two were not sampled together)."""
    own = [b for b in doc["benchmarks"] if b["params"]["mode"] == "mfsdp_step"]
    if not own:
        return []
    modelled: dict[tuple, list[dict[str, Any]]] = {}
    for bench in doc["benchmarks"]:
        p = bench["params"]
        if p["mode"] == "fsdp_step" and p.get("exec", "eager") == "eager":
            modelled.setdefault((p["source"], p["buffer"], p["size_bytes"]), []).append(bench)
    first = own[0]["extra_info"]
    lines = ["## Megatron-FSDP's own step beside the modelled step", "",
             f"Megatron-FSDP {first.get('megatron_fsdp_version', '?')} (`fully_shard_model`, "
             f"{first.get('megatron_fsdp_settings', {}).get('zero_dp_strategy', '?')}), "
             f"{first.get('layers', '?')} layers, {first.get('tokens', '?')} tokens per rank"
             + (f", model {first['model']}" if first.get("model") else "") + "; gradients checked against "
             f"the unsharded module: {first.get('grads_checked')}. Exposed = step - compute only, each "
             "with its paired 95% interval; error = modelled - Megatron-FSDP's.", "",
             "| source | buffers | bucket | Megatron-FSDP step ms | its compute-only ms | exposed ms [95%] "
             "| modelled step (model, issue) | modelled exposed ms [95%] | model error ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for bench in own:
        p, e = bench["params"], bench["extra_info"]
        theirs = figures.figure(bench, "exposed_comm_s").value
        peers = modelled.get((p["source"], p["buffer"], p["size_bytes"])) or [None]
        for peer in peers:
            mine = figures.figure(peer, "exposed_comm_s").value if peer else None
            error = figures.sig((mine - theirs) * 1e3) if mine is not None and theirs is not None else "-"
            lines.append(
                f"| {p['source']} | {p['buffer']} | {schema.size_label(p['size_bytes'])} "
                f"| {figures.sig(bench['stats']['median'] * 1e3, 4)} "
                f"| {figures.sig(e.get('compute_only_s', 0) * 1e3, 4)} "
                f"| {_exposed(bench)} | {_variant(peer) if peer else 'not run'} "
                f"| {_exposed(peer) if peer else '-'} | {error} |")
    return lines + [""]


def reach_section(doc: dict[str, Any]) -> list[str]:
    """Every NCCL / stream option and step choice of the run, and whether Megatron can set it."""
    keys: list[str] = []
    used: dict[str, set[str]] = {}
    benches = doc["benchmarks"]
    for bench in benches:
        label = bench["params"].get("nccl_options", "default")  # "ag:hp+min_ctas=4/rs:default"
        roles = [part.split(":", 1)[-1] for part in label.split("/")]
        for role_label in roles:
            keys += reach.option_keys(role_label)
        if len(set(roles)) > 1:
            keys.append("per_role_options")
        issue = bench["params"].get("issue", "role_streams")
        if bench["params"]["mode"] == "fsdp_step":
            keys.append(f"issue_{issue}")
            model = bench["extra_info"].get("step_model") or {}
            for key in ("reduce_op", "grad_dtype", "prefetch", "accumulate", "wait_compute"):
                if key in model:
                    keys.append(key)
                    used.setdefault(key, set()).add(str(model[key]))
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    lines = ["## Options by reach: can Megatron's configuration set them?", "",
             "| option | used | reach | how |", "| --- | --- | --- | --- |"]
    for key in keys:
        where, how = reach.REACH[key]
        lines.append(f"| {key} | {', '.join(sorted(used.get(key, ()))) or '-'} | {where} | {how} |")
    return lines + [""]


def section(doc: dict[str, Any]) -> list[str]:
    """The report hook: both sections, empty when the run has neither."""
    return comparison_section(doc) + reach_section(doc)
