"""Synthetic results documents with known answers, built through the real schema code."""

from __future__ import annotations

import numpy as np

from agrs_bench.results import files as results

LAYOUT = {"world_size": 4, "tp": 1, "cp": 1, "ep": 1, "etp": 1, "pp": 1, "dp": 4, "expert_dp": 4,
          "order": "tp-cp-ep-dp-pp", "rank_offset": 0}
SIZES = (1 << 20, 8 << 20, 64 << 20)
SOURCES = ("single_comm", "pg_collection")


def machine_info(gpu_name: str = "NVIDIA H100 80GB HBM3", world_size: int = 4) -> dict:
    return {"backend": "nccl", "gpu_name": gpu_name, "world_size": world_size,
            "layout": dict(LAYOUT, world_size=world_size), "num_hosts": 1, "env": {},
            "torch_version": "2.13.0", "nccl_version": "2.28.9"}


def launch(*, scale: float = 1.0, noise: float = 0.02, seed: int = 0, num_samples: int = 20,
           gpu_name: str = "NVIDIA H100 80GB HBM3", world_size: int = 4, dtype: str = "bf16",
           modes=("ag", "rs", "ag_rs"), missing: tuple[str, ...] = ()) -> dict:
    """One launch: every cell's samples are `scale` times a size-dependent base time, with
    Gaussian noise of relative standard deviation `noise` and a launch offset of the same order."""
    rng = np.random.default_rng(seed)
    benches = []
    for mode in modes:
        for source in SOURCES:
            for size in SIZES:
                base_s = 1e-5 + size / 100e9 * (2 if mode == "ag_rs" else 1)
                offset = 1 + rng.normal(0, noise / 4)
                data = base_s * scale * offset * (1 + rng.normal(0, noise, num_samples))
                params = {"mode": mode, "buffer": "dense", "source": source, "size_bytes": size,
                          "dtype": dtype, "world_size": world_size, "group_size": world_size}
                # Cells of one size are one comparison (sampled in the same rounds): derive pairs them.
                benches.append(results.make_benchmark(params, np.abs(data).tolist(), 10,
                                                      {"comparison": f"dense-{size}-eager"}, {}))
    return results.build_document(benches, machine_info=machine_info(gpu_name, world_size),
                                  commit_info={"id": f"synthetic{seed}"}, config={},
                                  missing_cells=list(missing), started_utc="2026-01-01T00:00:00+00:00")


def side(n: int = 3, first_seed: int = 0, **kwargs) -> list[dict]:
    return [launch(seed=first_seed + i, **kwargs) for i in range(n)]
