"""Which of the options a run names Megatron's own configuration can set, and how.

A figure measured under an option Megatron cannot set is a figure of agrs_bench, not of Megatron:
the report labels every NCCL / stream option and step choice it shows with one of these rows.
Read from megatron-core 0.16.1 and 0.19.2 (`parallel_state.py::get_nccl_options`,
`initialize_model_parallel(high_priority_stream_groups=...)`, `create_all_gather_groups`) and
megatron-fsdp 0.6.1 (`fully_shard.py::fully_shard_model`, `megatron_fsdp.py::MegatronFSDP`,
`distributed_data_parallel_config.py`, `mixed_precision.py`).
"""

from __future__ import annotations

from typing import Literal

Reach = Literal["megatron", "partly", "ours only"]

SHARED_ENTRY = ("megatron-core 0.19.2's create_all_gather_groups builds dp_cp_ag with the dp_cp entry and "
                "expt_dp_ag with the ep_dp entry, so the AG group always gets its RS group's values")

REACH: dict[str, tuple[Reach, str]] = {
    "min_ctas": ("partly", "initialize_model_parallel(nccl_communicator_config_path=YAML; Megatron-LM "
                 "--nccl-communicator-config-path), key min_ctas under dp_cp / ep_dp; "
                 + SHARED_ENTRY + ": different AG and RS values are ours only"),
    "max_ctas": ("partly", "--nccl-communicator-config-path (max_ctas under dp_cp / ep_dp); " + SHARED_ENTRY),
    "cga_cluster_size": ("partly", "--nccl-communicator-config-path (cga_cluster_size under dp_cp / ep_dp); "
                         + SHARED_ENTRY),
    "high_priority": ("partly", "initialize_model_parallel(high_priority_stream_groups=['dp_cp', 'ep_dp']) (or "
                      "is_high_priority_stream in the YAML) raises the process groups' internal NCCL "
                      "streams, where Megatron-FSDP's async AG runs; its RS and scaling run on side "
                      "streams it creates at default priority (megatron_fsdp.py: torch.cuda.Stream()), "
                      "and our high-priority role streams are ours only"),
    "per_role_options": ("ours only", "AG and RS groups with different NCCL options: " + SHARED_ENTRY),
    "sweep_nccl_options": ("ours only", "a grid of per-role options (see per_role_options)"),
    "reduce_op": ("megatron", "DistributedDataParallelConfig.average_in_collective (avg) and "
                  "gradient_reduce_div_fusion (premul_sum for non-bf16 gradients; else scale_sum); "
                  "fully_shard_model(average_in_collective=...)"),
    "grad_dtype": ("megatron", "MixedPrecisionPolicy(main_grads_dtype=..., grad_comm_dtype=...); "
                   "DistributedDataParallelConfig.megatron_fsdp_main_grads_dtype / megatron_fsdp_grad_comm_dtype"),
    "prefetch": ("megatron", "DistributedDataParallelConfig.suggested_communication_unit_size (floored at 1e9 "
                 "elements); size_double_buffer: fully_shard_model(fsdp_double_buffer=True), which "
                 "nccl_ub=True also turns on; one_layer: ours only"),
    "accumulate": ("megatron", "always on in Megatron-FSDP (optim_grads / optim_grads_params)"),
    "wait_compute": ("megatron", "always on in Megatron-FSDP (wait_stream on the current stream)"),
    "issue_megatron_fsdp": ("megatron", "how Megatron-FSDP issues: async AG in a coalescing manager, RS in a "
                            "synchronous one"),
    "issue_role_streams": ("ours only", "synchronous AG and RS on our own role streams"),
}


def option_keys(label: str) -> list[str]:
    """The REACH rows an NCCL options label names ('hp+min_ctas=4' -> high_priority, min_ctas)."""
    keys = []
    for part in label.split("+"):
        name = part.split("=")[0]
        keys.append("high_priority" if name == "hp" else name)
    return [k for k in keys if k in REACH]


def describe(key: str) -> str:
    reach, how = REACH[key]
    return f"{reach}: {how}"
