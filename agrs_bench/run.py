"""`torchrun --standalone --nproc-per-node=N -m agrs_bench.run`: measure, then write the run.

Started without torchrun (`python -m agrs_bench.run`) it launches itself through PyTorch's own
launcher on every local GPU, or on 2 CPU processes when there is none.
"""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import traceback
from typing import Any

import torch
import torch.distributed as dist

from agrs_bench import buffers as bufs
from agrs_bench import cells as cellmod
from agrs_bench import distributed, machine, results, schema, telemetry
from agrs_bench.cli import parse_run_args
from agrs_bench.config import RunConfig
from agrs_bench.device import make_handle
from agrs_bench.errors import EXIT_BAD_INPUT, ConfigError, fail
from agrs_bench.groups import RS_GROUP_KIND, build_source
from agrs_bench.groups.membership import check_membership
from agrs_bench.nccl_options import pair_label
from agrs_bench.step import Gemm

PROG = "agrs_bench.run"


def _say(rank: int, text: str) -> None:
    if rank == 0:
        print(text, flush=True)


def check_out_dir(out: str) -> None:
    """The run directory must be new (or hold no run) and creatable; touches nothing."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out!r} exists and is not a directory")
    if os.path.isdir(out) and any(os.path.exists(os.path.join(out, f))
                                  for f in (results.RESULTS_FILE, results.CELLS_FILE)):
        raise ConfigError(f"--out {out!r} already holds a run; choose another directory")
    ancestor = os.path.abspath(out)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out!r} is not writable ({ancestor!r} does not allow writing)")


def prepare_run_dir(cfg: RunConfig) -> None:
    """Rank 0 only: check, then create the run directory."""
    check_out_dir(cfg.out_dir)
    try:
        os.makedirs(cfg.out_dir, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {cfg.out_dir!r} cannot be created ({err.strerror})") from None


def config_record(cfg: RunConfig) -> dict[str, Any]:
    return {
        "sizes_bytes": list(cfg.sizes_bytes), "dtype": cfg.dtype, "modes": list(cfg.modes),
        "buffers": list(cfg.buffers), "sources": list(cfg.sources), "num_warmup": cfg.num_warmup,
        "num_samples": cfg.num_samples, "ops_per_sample": cfg.ops_per_sample,
        "target_sample_ms": cfg.target_sample_ms, "step_layers": cfg.step_layers,
        "step_sizes_bytes": list(cfg.step_sizes_bytes), "gemm_mnk": list(cfg.gemm_mnk),
        "timeout_s": cfg.timeout_s, "check": cfg.check, "layout": cfg.layout.describe(),
        "reference": cfg.reference, "hide_launch": cfg.hide_launch, "graph": cfg.graph, "ag_options": cfg.ag_options.label(),
        "rs_options": cfg.rs_options.label(), "sweep_nccl_options": cfg.sweep_nccl_options,
        "argv": cfg.extra.get("argv", []),
    }


class Fixtures:
    """What cells share: device handles and group sources per NCCL options pair, created once,
    collectively, in the same order on every rank."""

    def __init__(self, cfg: RunConfig, info: distributed.DistInfo) -> None:
        self.handles: dict[str, Any] = {}
        self.sources: dict[tuple[str, str], Any] = {}
        for name in cfg.sources:
            for ag, rs in cfg.option_pairs(name):
                label = pair_label(ag, rs)
                options = {"ag": ag, "rs": rs}
                if label not in self.handles:
                    high = tuple(role for role, opt in options.items() if opt.high_priority)
                    self.handles[label] = make_handle(info.backend, info.local_rank, high)
                make_group = distributed.group_maker(
                    cfg.timeout_s, lambda role, o=options: o[role].to_process_group_options())
                self.sources[(name, label)] = build_source(name, cfg.layout, info.rank, make_group=make_group)
        self.default_handle = next(iter(self.handles.values()))


def _allocate(cfg: RunConfig, cell: dict, group_ranks: dict, dev) -> Any:
    if dev.is_cuda:
        torch.cuda.empty_cache()
    if cell["mode"] == "fsdp_step":
        m, n, k = cfg.gemm_mnk
        return (cellmod.make_step_layers(cfg, cell["size_bytes"], group_ranks, dev.device),
                Gemm.make(m, n, k, bufs.DTYPES[cfg.dtype], dev.device))
    return bufs.make_buffer(cell["buffer"], cell["size_bytes"], bufs.DTYPES[cfg.dtype],
                           group_ranks[cell["buffer"]], dev.device)


def measure_all(cfg: RunConfig, info: distributed.DistInfo, fixtures: Fixtures, context: dict,
                finished: list) -> None:
    """Every cell in order; each finished cell goes to `finished` and (rank 0) to cells.jsonl."""
    rank, layout = info.rank, cfg.layout
    group_ranks = {kind: layout.group_of(RS_GROUP_KIND[kind], rank) for kind in cfg.buffers}
    todo = cfg.cells()
    uuid = context["machine_info"]["devices"][rank].get("uuid")
    link_gbps = min((d["nvml"].get("link_gbps_per_direction") or 0 for d in context["machine_info"]["devices"]),
                    default=0) or None
    allocated: dict[tuple, Any] = {}
    for index, cell in enumerate(todo, start=1):
        params = dict(cell, world_size=info.world_size)
        name = schema.cell_id(params)
        source = fixtures.sources[(cell["source"], cell["nccl_options"])]
        dev = fixtures.handles[cell["nccl_options"]]
        key = (cell["mode"] == "fsdp_step", cell["buffer"], cell["size_bytes"])
        if key not in allocated:
            allocated.clear()  # one size at a time on the device
            allocated[key] = _allocate(cfg, cell, group_ranks, dev)
        with telemetry.CellSampler(uuid if dev.is_cuda and cfg.telemetry else None) as sampler:
            if cell["mode"] == "fsdp_step":
                layers, gemm = allocated[key]
                samples, extra = cellmod.measure_step(dev, cfg, cell, name, source, layers, gemm, rank)
                params["group_size"] = len(group_ranks[cfg.buffers[0]])
                extra["group_ranks"] = group_ranks
            else:
                buf = allocated[key]
                samples, extra = cellmod.measure_collective(dev, cfg, cell, name, source, buf, rank)
                params["group_size"] = len(buf.group_ranks)
                extra["group_ranks"] = buf.group_ranks
                extra["shard_bytes"] = buf.param_shard.numel() * buf.param_shard.element_size()
        every_rank: list[Any] = [None] * info.world_size
        dist.all_gather_object(every_rank, sampler.summary())
        extra["telemetry"] = telemetry.combine(every_rank)
        extra["checked"] = cfg.check
        if link_gbps:
            extra["link_gbps_per_direction"] = link_gbps
        options = {"timer": "cuda_event" if dev.is_cuda else "perf_counter", "warmup": cfg.num_warmup,
                   "min_rounds": cfg.num_samples, "disable_gc": False, "max_time": 0, "min_time": 0}
        bench = results.make_benchmark(params, samples.per_iter_s, samples.ops_per_sample, extra, options)
        finished.append(bench)
        if rank == 0:
            results.append_cell(cfg.out_dir, bench)
            _progress(index, len(todo), name, bench)


def _progress(index: int, total: int, name: str, bench: dict) -> None:
    extra = bench["extra_info"]
    if "busbw_gbps" in extra:
        tail = f"busbw {extra['busbw_gbps']:7.1f} GB/s"
        if "busbw_vs_reference" in extra:
            tail += f" ({extra['busbw_vs_reference']:.0%} of reference)"
    else:
        tail = f"exposed {extra['exposed_comm_s'] * 1e3:.3f} ms"
    print(f"[{index}/{total}] {name:<48} median {bench['stats']['median'] * 1e3:9.4f} ms  {tail}  "
          f"({bench['stats']['iterations']} ops/sample)", flush=True)


def write_outputs(cfg: RunConfig, finished: list, missing: list[str], context: dict) -> str:
    from agrs_bench.report import write_report

    doc = results.build_document(finished, machine_info=context["machine_info"],
                                 commit_info=machine.commit_info(), config=config_record(cfg),
                                 missing_cells=missing, started_utc=context["started_utc"])
    results.write_run(cfg.out_dir, doc)
    return write_report(cfg.out_dir)


def run(cfg: RunConfig, info: distributed.DistInfo) -> int:
    rank = info.rank
    started = datetime.datetime.now(datetime.timezone.utc).isoformat()
    fixtures = Fixtures(cfg, info)
    check_membership(list(fixtures.sources.values()), cfg.layout, rank)
    hosts: list[Any] = [None] * info.world_size
    devices: list[Any] = [None] * info.world_size
    dist.all_gather_object(hosts, socket.gethostname())
    mine = machine.local_device(info.backend, info.local_rank)
    mine["nvml"] = telemetry.device_identity(mine.get("uuid")) if info.backend == "nccl" else {"nvml": False}
    dist.all_gather_object(devices, mine)
    info_record = machine.machine_info(backend=info.backend, world_size=info.world_size, hosts=hosts,
                                       layout=cfg.layout.describe(), devices=devices)
    info_record["topology"] = telemetry.topology([d["nvml"] for d in devices]) if rank == 0 else {}
    context = {"started_utc": started, "machine_info": info_record}
    _say(rank, f"agrs_bench: {info.world_size} ranks, {info.backend}, layout {cfg.layout.describe()}, "
               f"{len(cfg.cells())} cells -> {cfg.out_dir}")
    finished: list = []
    try:
        measure_all(cfg, info, fixtures, context, finished)
    except BaseException:
        if rank == 0:
            done = {schema.cell_key(b["params"]) for b in finished}
            missing = [schema.cell_id(dict(c, world_size=info.world_size)) for c in cfg.cells()
                       if schema.cell_key(c) not in done]
            write_outputs(cfg, finished, missing, context)
            print(f"agrs_bench: run failed; {len(finished)} finished cell(s) kept in "
                  f"{os.path.join(cfg.out_dir, results.RESULTS_FILE)} (marked incomplete)",
                  file=sys.stderr, flush=True)
        raise
    if rank == 0:
        path = write_outputs(cfg, finished, [], context)
        print(f"agrs_bench: report: {path}", flush=True)
    return 0


def self_launch(argv: list[str]) -> int:
    """Re-run this module under torch.distributed.run on every local GPU, or 2 CPU processes."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    nproc = gpus if gpus >= 2 else 2
    backend = "nccl" if gpus >= 2 else "gloo"
    cfg = parse_run_args(argv, world_size=nproc, backend=backend)  # bad input fails here, cleanly
    check_out_dir(cfg.out_dir)
    env = dict(os.environ)
    env.setdefault("NCCL_NVLS_ENABLE", "0")
    if backend == "gloo":
        env.setdefault("OMP_NUM_THREADS", "1")
    if "--out" not in argv and not any(a.startswith("--out=") for a in argv):
        argv = [*argv, "--out", cfg.out_dir]  # the children must not pick their own timestamp
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", "-m", "agrs_bench.run", *argv]
    return subprocess.run(cmd, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not distributed.launched_by_torchrun():
        try:
            return self_launch(argv)
        except ConfigError as err:
            fail(str(err), PROG)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    try:
        if world < 2:
            raise ConfigError(f"world size {world}: AG/RS overlap needs at least 2 ranks "
                              "(use --nproc-per-node=2 or more)")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        cfg = parse_run_args(argv, world_size=world, backend=distributed.pick_backend(local_world))
        if rank == 0:
            prepare_run_dir(cfg)
    except ConfigError as err:
        if rank == 0:
            fail(str(err), PROG)
        raise SystemExit(EXIT_BAD_INPUT)
    info = distributed.init(cfg.timeout_s, cfg.backend)
    status = 1
    try:
        status = run(cfg, info)
    except Exception as err:
        print(f"{PROG}: rank {rank}: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        if os.environ.get("AGRS_BENCH_TRACEBACK"):
            traceback.print_exc()
    finally:
        if not distributed.teardown():
            print(f"{PROG}: rank {rank}: destroy_process_group hung; exiting without it",
                  file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
