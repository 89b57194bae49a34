"""The report's first lines: is the run complete (or resumed), CPU or GPU, and which
megatron-core / megatron-fsdp it used. What a reader must know before reading any number."""

from __future__ import annotations

from typing import Any

from agrs_bench.render import figures


def _completeness(meta: dict[str, Any]) -> str:
    if meta.get("complete", True):
        text = "**complete**"
    else:
        missing = meta.get("missing_cells") or []
        text = (f"**INCOMPLETE: {len(missing)} cell(s) missing** "
                "(finish with `python -m agrs_bench.run --resume RUN_DIR`)")
    resumed = meta.get("resumed_cells")
    if isinstance(resumed, int) and resumed > 0:
        text += (f"; resumed: {resumed} cell(s) come from an earlier launch, merged with this launch's "
                 "(cells of one comparison always come from one launch)")
    return text


def _device(doc: dict[str, Any]) -> str:
    info = doc["machine_info"]
    if figures.is_cpu(doc):
        return f"CPU, {info.get('world_size')} gloo rank(s) (**{figures.CPU_NOTE}**)"
    return f"GPU: {info.get('gpu_name') or '?'} x{info.get('world_size')} ({info.get('backend')})"


# How megatron-core was asked for its AG groups (groups.megatron_core records the API's short name).
API_CALLS = {"global_state": "initialize_model_parallel(create_all_gather_group=True)",
             "create_all_gather_groups": "create_all_gather_groups()"}


def _library(found: Any) -> str:
    if isinstance(found, dict) and found.get("version"):
        api = found.get("api")
        return str(found["version"]) + (f" (API: {API_CALLS.get(api, api)})" if api else "")
    return "not used"


def first_screen(doc: dict[str, Any]) -> list[str]:
    """One bullet list: complete or not, device, Megatron libraries."""
    meta = doc["agrs_bench"]
    mismatch = meta.get("megatron_mismatch") or []
    core = meta.get("megatron_core") or (
        {"version": mismatch[0].get("version")} if mismatch and isinstance(mismatch[0], dict) else None)
    return [f"- run: {_completeness(meta)}",
            f"- device: {_device(doc)}",
            f"- megatron-core: {_library(core)}; megatron-fsdp: {_library(meta.get('megatron_fsdp'))}",
            ""]
