"""Synthetic results documents with known answers, built through the real schema code.

Besides the samples, `launch` writes the interval fields that the engine writes (`*_ci`, as
[low, high] at 95%), so report and plot tests can check they are drawn; the intervals are
made-up but bracket their point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from agrs_bench.results import files as results

LAYOUT = {"world_size": 4, "tp": 1, "cp": 1, "ep": 1, "etp": 1, "pp": 1, "dp": 4, "expert_dp": 4,
          "order": "tp-cp-ep-dp-pp", "rank_offset": 0}
SIZES = (1 << 20, 8 << 20, 64 << 20)
SOURCES = ("single_comm", "pg_collection")
FORTY_CELL_SIZES = tuple(1 << k for k in range(16, 26))
"""With modes ("ag", "rs") and both SOURCES: 40 cells."""


def machine_info(gpu_name: str = "NVIDIA H100 80GB HBM3", world_size: int = 4,
                 backend: str = "nccl") -> dict:
    return {"backend": backend, "gpu_name": gpu_name if backend == "nccl" else None,
            "world_size": world_size, "layout": dict(LAYOUT, world_size=world_size), "num_hosts": 1,
            "env": {}, "torch_version": "2.13.0", "nccl_version": "2.28.9" if backend == "nccl" else None}


def _interval(value: float, rel: float) -> list[float]:
    return [value * (1 - rel), value * (1 + rel)] if value >= 0 else [value * (1 + rel), value * (1 - rel)]


def _add_intervals(benches: list[dict], ci_rel: float) -> None:
    """Intervals for the fields the engine fills, around the points build_document derived."""
    for bench in benches:
        e = bench["extra_info"]
        e["median_ci_s"] = _interval(bench["stats"]["median"], ci_rel)
        for key in ("busbw_gbps", "overlap_efficiency", "speedup_vs_single_comm",
                    "exposed_comm_s", "compute_slowdown"):
            if isinstance(e.get(key), (int, float)):
                e[f"{key}_ci"] = _interval(e[key], ci_rel)


def launch(*, scale: float | Mapping[str, float] = 1.0, noise: float | Callable[[int], float] = 0.02,
           launch_offset: float | None = None, shared_offset: float = 0.0, seed: int = 0,
           num_samples: int = 20, gpu_name: str = "NVIDIA H100 80GB HBM3", world_size: int = 4,
           dtype: str = "bf16", modes=("ag", "rs", "ag_rs"), sizes=SIZES, buffers=("dense",),
           missing: tuple[str, ...] = (), backend: str = "nccl", ci_rel: float | None = 0.02,
           speedup: float = 1.0, step: bool = False, extra: Mapping[str, dict] | None = None) -> dict:
    """One launch: every cell's samples are `scale` times a size-dependent base time, with
    Gaussian noise of relative standard deviation `noise` (a number, or size -> number), a
    per-cell launch offset of relative sd `launch_offset` (default noise/4) and one offset of
    relative sd `shared_offset` common to all cells of the launch. `scale` may map cell ids to
    factors (one regressed cell); `speedup` divides the time of non-single_comm ag_rs cells.
    `step` adds fsdp_step cells; `extra` maps cell ids to extra_info entries to add."""
    rng = np.random.default_rng(seed)
    common = 1 + rng.normal(0, shared_offset) if shared_offset else 1.0
    benches = []
    for mode in modes:
        for buffer in buffers:
            for source in SOURCES:
                for size in sizes:
                    params = {"mode": mode, "buffer": buffer, "source": source, "size_bytes": size,
                              "dtype": dtype, "world_size": world_size, "group_size": world_size}
                    name = results.schema.cell_id(params)
                    rel = noise(size) if callable(noise) else noise
                    factor = scale.get(name, 1.0) if isinstance(scale, Mapping) else scale
                    if mode == "ag_rs" and source != "single_comm":
                        factor /= speedup
                    base_s = 1e-5 + size / 100e9 * (2 if mode == "ag_rs" else 1)
                    offset = 1 + rng.normal(0, rel / 4 if launch_offset is None else launch_offset)
                    data = base_s * factor * common * offset * (1 + rng.normal(0, rel, num_samples))
                    # Cells of one buffer and size are one comparison (sampled in the same rounds).
                    info = {"comparison": f"{buffer}-{size}-eager", **(extra or {}).get(name, {})}
                    benches.append(results.make_benchmark(params, np.abs(data).tolist(), 10, info, {}))
    if step:
        for source in SOURCES:
            params = {"mode": "fsdp_step", "buffer": "dense+expert", "source": source,
                      "size_bytes": 16 << 20, "dtype": dtype, "world_size": world_size,
                      "group_size": world_size}
            step_s = 4e-3 if source == "single_comm" else 3.5e-3
            data = step_s * (1 + rng.normal(0, 0.01, num_samples))
            # The step's parts, sampled in the same rounds: make_benchmark derives exposed
            # communication (about step - 3 ms) and compute slowdown (about 1.02) from them.
            def part(seconds: float) -> list[float]:
                return np.abs(seconds * (1 + rng.normal(0, 0.01, num_samples))).tolist()

            info = {"comparison": "fsdp_step-dense+expert-16MiB-eager", "compute_only_data": part(3e-3),
                    "comm_only_data": part(2e-3), "compute_in_step_data": part(3.06e-3),
                    "compute_alone_data": part(3e-3)}
            info.update((extra or {}).get(results.schema.cell_id(params), {}))
            benches.append(results.make_benchmark(params, np.abs(data).tolist(), 1, info, {}))
    doc = results.build_document(benches, machine_info=machine_info(gpu_name, world_size, backend),
                                 commit_info={"id": f"synthetic{seed}", "dirty": False, "source": "git"},
                                 config={}, missing_cells=list(missing),
                                 started_utc="2026-01-01T00:00:00+00:00")
    if ci_rel is not None:
        _add_intervals(doc["benchmarks"], ci_rel)
    else:  # a file written before intervals existed: drop the ones the measures computed
        for bench in doc["benchmarks"]:
            for key in [k for k in bench["extra_info"]
                        if k.endswith("_ci") or k in ("median_ci_s", "median_interval_coverage")]:
                del bench["extra_info"][key]
    return doc


def side(n: int = 3, first_seed: int = 0, **kwargs) -> list[dict]:
    return [launch(seed=first_seed + i, **kwargs) for i in range(n)]


def cell_launches(*, cells: int = 40, launches: int = 3, seed: int = 0, noise: float = 0.02,
                  launch_offset: float | None = None, shared_offset: float = 0.0,
                  scale: Mapping[int, float] | None = None, num_samples: int = 20
                  ) -> list[list[list[float]]]:
    """The raw samples of one side without a document, for gate statistics over many seeds:
    [cell][launch][sample], the same noise model as `launch` (cell i's base time grows with i)."""
    rng = np.random.default_rng(seed)
    out: list[list[list[float]]] = [[] for _ in range(cells)]
    for _ in range(launches):
        common = 1 + rng.normal(0, shared_offset) if shared_offset else 1.0
        for i in range(cells):
            base_s = 1e-5 * (1 + i) * (scale or {}).get(i, 1.0)
            offset = 1 + rng.normal(0, noise / 4 if launch_offset is None else launch_offset)
            out[i].append(np.abs(base_s * common * offset * (1 + rng.normal(0, noise, num_samples))).tolist())
    return out
