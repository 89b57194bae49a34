"""What every rank learns at start-up, collectively: where its peers run and what on."""

from __future__ import annotations

from typing import Any

from agrs_bench.config.run_config import RunConfig
from agrs_bench.groups.distributed import DistInfo
from agrs_bench.measure import telemetry
from agrs_bench.measure.runner import groups_span_nodes
from agrs_bench.results import machine


def gather_machine(cfg: RunConfig, info: DistInfo) -> tuple[dict[str, Any], machine.Ranks]:
    """Collective: (machine_info of results.json, with the topology on rank 0; every rank's place)."""
    mine = machine.local_device(info.backend, info.local_rank)
    mine["nvml"] = telemetry.device_identity(mine.get("uuid")) if info.backend == "nccl" else {"nvml": False}
    ranks = machine.gather_ranks(info.world_size, mine)
    info_doc = machine.machine_info(backend=info.backend, world_size=info.world_size, hosts=ranks.hosts,
                                    layout=cfg.layout.describe(), devices=ranks.devices)
    info_doc.update(nodes=ranks.nodes, num_nodes=len(set(ranks.nodes)),
                    groups_span_nodes=groups_span_nodes(cfg, ranks.nodes))
    if info.rank == 0:
        info_doc["topology"] = telemetry.topology([d["nvml"] for d in ranks.devices])
    return info_doc, ranks
