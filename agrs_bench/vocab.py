"""The names every layer shares: modes, buffers, sources, and how sizes are written.

Pure data, leftmost in the data flow, so that configuration needs neither torch nor process groups."""

from __future__ import annotations

MODES = ("ag", "rs", "ag_rs", "fsdp_step")
COLLECTIVE_MODES = ("ag", "rs", "ag_rs")
# Megatron-FSDP's own step (fully_shard_model): needs CUDA and the optional megatron-fsdp package,
# so a run leaves it out unless asked.
MEGATRON_FSDP_MODES = ("mfsdp_step",)
ALL_MODES = MODES + MEGATRON_FSDP_MODES
STEP_MODES = ("fsdp_step", "mfsdp_step")
MEGATRON_FSDP_INSTALL = "pip install -e '.[mfsdp]' (needs a CUDA build of torch)"
MODE_ROLES = {"ag": ("ag",), "rs": ("rs",), "ag_rs": ("ag", "rs"), "fsdp_step": ("ag", "rs", "compute")}
BUFFERS = ("dense", "expert")
SOURCES = ("single_comm", "global_state", "pg_collection", "megatron_core")
# megatron_core needs the optional megatron-core package, so a run leaves it out unless asked.
DEFAULT_SOURCES = ("single_comm", "global_state", "pg_collection")
MEGATRON_INSTALL = "pip install -e '.[megatron]'"
# How a cell issues its collectives: synchronous ops on our role streams, or as Megatron-FSDP does
# (async AG in a coalescing manager on the group's internal stream, RS in a coalescing manager).
ISSUE_STYLES = ("role_streams", "megatron_fsdp", "low_contention")
DEFAULT_ISSUE = "role_streams"
# The group each buffer kind is sharded over (and reduce-scattered on).
RS_GROUP_KIND = {"dense": "dp_cp", "expert": "expt_dp"}


def size_label(size_bytes: int) -> str:
    """1048576 -> '1MiB'; sizes that are not whole KiB/MiB/GiB stay in bytes."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size_bytes >= scale and size_bytes % scale == 0:
            return f"{size_bytes // scale}{unit}"
    return f"{size_bytes}B"
