"""`torchrun --standalone --nproc-per-node=N -m agrs_bench.run`: measure, then write the run.

Started without torchrun (`python -m agrs_bench.run`) it launches itself through PyTorch's own
launcher on every local GPU, or on 2 CPU processes when there is none.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import traceback
from typing import Any

import torch
import torch.distributed as dist

from agrs_bench.measure import buffers as bufs
from agrs_bench.measure import cells as cellmod
from agrs_bench.groups import distributed
from agrs_bench.results import machine
from agrs_bench.results import resume
from agrs_bench.results import files as results
from agrs_bench.results import schema
from agrs_bench.measure import telemetry
from agrs_bench.measure import faults as testhooks
from agrs_bench.measure import preflight as preflight_mod
from agrs_bench.config.cli import parse_run_args
from agrs_bench.config.run_config import RunConfig
from agrs_bench.measure.device import make_handle
from agrs_bench.errors import EXIT_BAD_INPUT, ConfigError, fail
from agrs_bench.groups import RS_GROUP_KIND, build_source
from agrs_bench.groups.membership import check_membership
from agrs_bench.config.nccl_options import pair_label
from agrs_bench.measure.step import Gemm
from agrs_bench.measure.watchdog import Watchdog, margin_s

PROG = "agrs_bench.run"


def _say(rank: int, text: str) -> None:
    if rank == 0:
        print(text, flush=True)


class CellFailed(RuntimeError):
    """A cell stopped with an error (a peer died, a collective timed out): names the cell."""


def check_out_dir(out: str) -> None:
    """The run directory must be new (or hold no run) and creatable; leaves nothing behind."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out!r} exists and is not a directory")
    if os.path.isdir(out) and any(os.path.exists(os.path.join(out, f)) for f in results.RUN_FILES):
        raise ConfigError(f"--out {out!r} already holds a run; choose another directory "
                          "(or --resume it)")
    ancestor = os.path.abspath(out)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ConfigError(f"--out {out!r} is not writable ({ancestor!r} is not a directory)")
    try:  # os.access says yes to root on read-only mounts and on folders without w bits
        os.rmdir(tempfile.mkdtemp(prefix=".agrs-probe-", dir=ancestor))
    except OSError as err:
        raise ConfigError(f"--out {out!r} is not writable ({ancestor!r}: {err.strerror})") from None


def check_run_dir(cfg: RunConfig) -> list[dict]:
    """Touches nothing: a new run needs a usable --out; a resumed one, a matching run.
    Returns the finished cells of a resumed run."""
    if cfg.resume:
        return resume.finished_cells(cfg)
    check_out_dir(cfg.out_dir)
    return []


def prepare_run_dir(cfg: RunConfig) -> None:
    """Rank 0 only, once the preflight checks passed: create the run directory and config.json."""
    if cfg.resume:
        results.drop_partial_line(cfg.out_dir)
        return
    check_out_dir(cfg.out_dir)
    try:
        os.makedirs(cfg.out_dir, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {cfg.out_dir!r} cannot be created ({err.strerror})") from None
    cell_ids = [schema.cell_id(dict(c, world_size=cfg.layout.world_size)) for c in cfg.cells()]
    results.write_atomic(os.path.join(cfg.out_dir, results.CONFIG_FILE),
                         json.dumps(dict(cfg.record(), cells=cell_ids), indent=1) + "\n")


def preflight(cfg: RunConfig, info: distributed.DistInfo) -> None:
    """Collective: every rank checks that the largest cell fits its free memory, before anything
    is allocated or written; all ranks raise the first rank's problem."""
    free, where = preflight_mod.free_bytes(info.backend, info.local_rank, info.local_world_size)
    try:
        preflight_mod.check_memory(cfg, free, where)
        mine = None
    except ConfigError as err:
        mine = f"rank {info.rank}: {err}" if info.rank else str(err)
    everyone: list[Any] = [None] * info.world_size
    dist.all_gather_object(everyone, mine)
    problems = [p for p in everyone if p]
    if problems:
        raise ConfigError(problems[0])


def groups_span_nodes(cfg: RunConfig, nodes: list[str]) -> dict[str, bool]:
    """Per buffer kind: does any of its groups (in the whole layout) hold ranks of several nodes?"""
    return {kind: any(len({nodes[r] for r in ranks}) > 1 for ranks in cfg.layout.rank_lists(RS_GROUP_KIND[kind]))
            for kind in cfg.buffers}


def measure_all(cfg: RunConfig, info: distributed.DistInfo, fixtures: "Fixtures", finished: list,
                *, skip: set, nodes: list[str], watchdog: Watchdog, devices: list[dict]) -> None:
    """Every cell not in `skip`, in order; each finished cell goes to `finished` and (rank 0) to
    cells.jsonl at once. A cell that fails raises CellFailed naming it."""
    rank, layout = info.rank, cfg.layout
    group_ranks = {kind: layout.group_of(RS_GROUP_KIND[kind], rank) for kind in cfg.buffers}
    todo = cfg.cells()
    budget_s = cfg.timeout_s + margin_s(cfg.timeout_s, cfg.backend)
    allocated: dict[tuple, Any] = {}
    spans = groups_span_nodes(cfg, nodes)
    uuid = devices[rank].get("uuid") if cfg.telemetry else None
    # The slowest GPU's per-direction link rate bounds every group: the link floor of ag_rs.
    link_gbps = min((d["nvml"].get("link_gbps_per_direction") or 0 for d in devices), default=0) or None
    for index, cell in enumerate(todo, start=1):
        if schema.cell_key(cell) in skip:
            continue
        name = schema.cell_id(dict(cell, world_size=info.world_size))
        testhooks.maybe_signal_self(rank, index)
        watchdog.arm(f"cell {name} ({index}/{len(todo)})", budget_s)
        dev = fixtures.handles[cell["nccl_options"]]
        try:
            with telemetry.CellSampler(uuid if dev.is_cuda else None) as sampler:
                bench = _measure_cell(cfg, info, dev, fixtures.sources[(cell["source"], cell["nccl_options"])],
                                      cell, name, group_ranks, allocated, link_gbps)
            every_rank: list[Any] = [None] * info.world_size
            dist.all_gather_object(every_rank, sampler.summary())
        except cellmod.OutputCheckError:
            raise  # names the cell, the rank and the first wrong element already
        except Exception as err:
            detail = " ".join(str(err).split())
            raise CellFailed(f"cell {name} ({index}/{len(todo)}) failed: {type(err).__name__}: {detail}") \
                from err
        watchdog.disarm()
        kinds = cfg.buffers if cell["mode"] == "fsdp_step" else (cell["buffer"],)
        bench["extra_info"]["spans_nodes"] = any(spans[kind] for kind in kinds)
        bench["extra_info"]["telemetry"] = record = telemetry.combine(every_rank)
        if record.get("throttled"):
            bench["extra_info"].setdefault("warnings", []).append(
                f"GPU clocks throttled during this cell (SM clock down to {record['sm_clock_mhz_min']} MHz; "
                + ", ".join(record["clock_event_reasons"]) + ")")
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
          f"({extra['ops_per_sample']} ops/sample)", flush=True)


def _measure_cell(cfg: RunConfig, info: distributed.DistInfo, dev, source, cell: dict, name: str,
                  group_ranks: dict[str, list[int]], allocated: dict[tuple, Any],
                  link_gbps: float | None) -> dict:
    """Measure one cell; `allocated` keeps the buffers of the current size for its next cells."""
    rank = info.rank
    params = dict(cell, world_size=info.world_size)
    key = (cell["mode"] == "fsdp_step", cell["buffer"], cell["size_bytes"])
    if key not in allocated:
        allocated.clear()  # one size at a time on the device
        if dev.is_cuda:
            torch.cuda.empty_cache()
        if cell["mode"] == "fsdp_step":
            m, n, k = cfg.gemm_mnk
            allocated[key] = (cellmod.make_step_layers(cfg, cell["size_bytes"], group_ranks, dev.device),
                               Gemm.make(m, n, k, bufs.DTYPES[cfg.dtype], dev.device))
        else:
            allocated[key] = bufs.make_buffer(cell["buffer"], cell["size_bytes"], bufs.DTYPES[cfg.dtype],
                                               group_ranks[cell["buffer"]], dev.device)
    if cell["mode"] == "fsdp_step":
        layers, gemm = allocated[key]
        samples, extra = cellmod.measure_step(dev, cfg, cell, name, source, layers, gemm, rank)
        params["group_size"] = len(group_ranks[cfg.buffers[0]])
        extra["group_sizes"] = {kind: len(r) for kind, r in group_ranks.items()}
        extra["group_ranks"] = dict(group_ranks)
    else:
        buf = allocated[key]
        samples, extra = cellmod.measure_collective(dev, cfg, cell, name, source, buf, rank)
        params["group_size"] = len(buf.group_ranks)
        extra["shard_bytes"] = buf.param_shard.numel() * buf.param_shard.element_size()
        extra["group_ranks"] = buf.group_ranks
    extra["checked"] = cfg.check
    if link_gbps:
        extra["link_gbps_per_direction"] = link_gbps
    options = {"timer": "cuda_event" if dev.is_cuda else "perf_counter", "warmup": cfg.num_warmup,
               "min_rounds": cfg.num_samples, "disable_gc": False, "max_time": 0, "min_time": 0}
    return results.make_benchmark(params, samples.per_iter_s, samples.ops_per_sample, extra, options)


def write_outputs(cfg: RunConfig, finished: list, context: dict) -> str:
    """results.json (complete, or marked incomplete with the missing cells), results.csv, report.md."""
    from agrs_bench.render.report import write_report

    done = {schema.cell_key(b["params"]) for b in finished}
    world = cfg.layout.world_size
    missing = [schema.cell_id(dict(c, world_size=world)) for c in cfg.cells()
               if schema.cell_key(c) not in done]
    doc = results.build_document(finished, machine_info=context["machine_info"],
                                 commit_info=machine.commit_info(), config=cfg.record(),
                                 missing_cells=missing, started_utc=context["started_utc"],
                                 notes=context["notes"])
    results.write_run(cfg.out_dir, doc)
    return write_report(cfg.out_dir)


class Fixtures:
    """What cells share: device handles and group sources per NCCL options pair, created once,
    collectively, in the same order on every rank; then the membership check."""

    def __init__(self, cfg: RunConfig, info: distributed.DistInfo) -> None:
        self.handles: dict[str, Any] = {}
        self.sources: dict[tuple[str, str], Any] = {}
        corrupt = testhooks.corrupt_ag_layout(cfg.layout)
        for name in cfg.sources:
            for ag, rs in cfg.option_pairs(name):
                label = pair_label(ag, rs)
                options = {"ag": ag, "rs": rs}
                if label not in self.handles:
                    high = tuple(role for role, opt in options.items() if opt.high_priority)
                    self.handles[label] = make_handle(info.backend, info.local_rank, high)
                make_group = distributed.group_maker(
                    cfg.timeout_s, lambda role, o=options: o[role].to_process_group_options())
                self.sources[(name, label)] = build_source(
                    name, cfg.layout, info.rank, make_group=make_group,
                    ag_layout=corrupt if name == "pg_collection" else None)
        if corrupt is None:
            check_membership(list(self.sources.values()), cfg.layout, info.rank)
        else:
            _say(info.rank, f"agrs_bench: TEST HOOK {testhooks.CORRUPT_AG_VAR}: pg_collection AG groups "
                            f"from order {corrupt.order!r}, membership check skipped")


def run(cfg: RunConfig, info: distributed.DistInfo, watchdog: Watchdog, skip_cells: list[dict]) -> int:
    """After preflight: make the run directory, the groups, measure, write. Raises on failure,
    after rank 0 wrote the finished cells as an incomplete results.json."""
    rank = info.rank
    finished: list = list(skip_cells)  # a resumed run's cells (rank 0 only; empty elsewhere)
    context: dict[str, Any] = {
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine_info": {"backend": info.backend, "world_size": info.world_size},
        "notes": {"nccl_env_set": info.nccl_env_set,
                  "resumed_cells": len(skip_cells) if cfg.resume else 0},
    }
    local_peers: list[int] = []  # pids of the other ranks of this node's agent

    def on_expire(phase: str) -> None:
        # A stopped peer ignores the launcher's SIGTERM until continued: wake it, so that the
        # launcher can end it now rather than after its own grace period.
        distributed.wake_stopped(local_peers)
        if rank == 0:
            write_outputs(cfg, list(finished), context)

    watchdog.on_expire = on_expire
    if rank == 0:
        prepare_run_dir(cfg)
    distributed.make_flight_recorder_dir(info)
    try:
        skip_keys: list[Any] = [[schema.cell_key(b["params"]) for b in skip_cells]]
        dist.broadcast_object_list(skip_keys, src=0)
        fixtures = Fixtures(cfg, info)
        mine = machine.local_device(info.backend, info.local_rank)
        mine["nvml"] = telemetry.device_identity(mine.get("uuid")) if info.backend == "nccl" else {"nvml": False}
        gathered: list[Any] = [None] * info.world_size
        dist.all_gather_object(gathered, (socket.gethostname(), distributed.node_id(), os.getpid(), mine))
        hosts, nodes, pids, devices = (list(column) for column in zip(*gathered))
        local_peers.extend(pid for node, pid in zip(nodes, pids)
                           if node == distributed.node_id() and pid != os.getpid())
        context["machine_info"] = machine.machine_info(
            backend=info.backend, world_size=info.world_size, hosts=hosts,
            layout=cfg.layout.describe(), devices=devices)
        context["machine_info"].update(nodes=nodes, num_nodes=len(set(nodes)),
                                       groups_span_nodes=groups_span_nodes(cfg, nodes))
        if rank == 0:
            context["machine_info"]["topology"] = telemetry.topology([d["nvml"] for d in devices])
        watchdog.disarm()
        _say(rank, f"agrs_bench: {info.world_size} ranks on {len(set(nodes))} node(s), {info.backend}, "
                   f"layout {cfg.layout.describe()}, {len(cfg.cells())} cells -> {cfg.out_dir}"
                   + (f" (resuming: {len(skip_keys[0])} finished)" if cfg.resume else ""))
        measure_all(cfg, info, fixtures, finished, skip={tuple(k) for k in skip_keys[0]},
                    nodes=nodes, watchdog=watchdog, devices=devices)
    except BaseException as err:
        watchdog.disarm()
        if isinstance(err, Exception):
            # Say why first: writing the outputs takes seconds, and the launcher may end this
            # rank meanwhile (a woken peer fails at once and torchrun stops the job).
            _report_failure(rank, err)
        distributed.wake_stopped(local_peers)
        if rank == 0:
            write_outputs(cfg, finished, context)
            print(f"agrs_bench: run failed; {len(finished)} finished cell(s) kept in "
                  f"{os.path.join(cfg.out_dir, results.RESULTS_FILE)} (marked incomplete; "
                  f"finish it with --resume {cfg.out_dir})", file=sys.stderr, flush=True)
        raise
    if rank == 0:
        path = write_outputs(cfg, finished, context)
        print(f"agrs_bench: report: {path}", flush=True)
    return 0


def self_launch(argv: list[str]) -> int:
    """Re-run this module under torch.distributed.run on every local GPU, or 2 CPU processes."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    nproc = gpus if gpus >= 2 else 2
    backend = "nccl" if gpus >= 2 else "gloo"
    cfg = parse_run_args(argv, world_size=nproc, backend=backend)  # bad input fails here, cleanly
    check_run_dir(cfg)
    if backend == "gloo":  # GPU memory is checked by the ranks, before they allocate or write
        preflight_mod.check_memory(cfg, *preflight_mod.free_bytes(backend, 0, nproc))
    env = dict(os.environ)
    env.setdefault("NCCL_NVLS_ENABLE", "0")
    if backend == "gloo":
        env.setdefault("OMP_NUM_THREADS", "1")
    if "--out" not in argv and not any(a.startswith("--out=") for a in argv):
        argv = [*argv, "--out", cfg.out_dir]  # the children must not pick their own timestamp
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", "-m", "agrs_bench.run", *argv]
    status = subprocess.run(cmd, env=env).returncode
    if status not in (0, EXIT_BAD_INPUT) and results.salvage(cfg.out_dir):
        from agrs_bench.render.report import write_report

        write_report(cfg.out_dir)
        print(f"{PROG}: rank 0 ended before writing results; rebuilt "
              f"{os.path.join(cfg.out_dir, results.RESULTS_FILE)} from {results.CELLS_FILE} "
              "(marked incomplete)", file=sys.stderr, flush=True)
    return status


def _report_failure(rank: int, err: Exception) -> None:
    """One line on stderr naming the rank and the error (a traceback only on request)."""
    print(f"{PROG}: rank {rank}: {type(err).__name__}: {' '.join(str(err).split())}",
          file=sys.stderr, flush=True)
    if os.environ.get("AGRS_BENCH_TRACEBACK"):
        traceback.print_exc()
    err.agrs_reported = True  # type: ignore[attr-defined]


def _rank_main(argv: list[str], rank: int, world: int) -> int:
    """One rank under torchrun. Exit status: 0 done, 1 failed (results kept), 2 bad input,
    3 a phase hung past --timeout plus margin (the watchdog ended it), 143 torchrun's SIGTERM."""
    try:
        if world < 2:
            raise ConfigError(f"world size {world}: AG/RS overlap needs at least 2 ranks "
                              "(use --nproc-per-node=2 or more)")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        cfg = parse_run_args(argv, world_size=world, backend=distributed.pick_backend(local_world))
        skip_cells = check_run_dir(cfg) if rank == 0 else []
    except ConfigError as err:
        if rank == 0:
            fail(str(err), PROG)
        raise SystemExit(EXIT_BAD_INPUT)
    watchdog = Watchdog(PROG, rank)
    watchdog.catch_sigterm()
    watchdog.arm("start-up (process groups)", cfg.timeout_s + margin_s(cfg.timeout_s, cfg.backend))
    status = 1
    try:
        info = distributed.init(cfg.timeout_s, cfg.backend, run_dir=cfg.out_dir)
        preflight(cfg, info)
        status = run(cfg, info, watchdog, skip_cells)
    except ConfigError as err:
        status = EXIT_BAD_INPUT
        if rank == 0:
            print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr, flush=True)
    except Exception as err:
        if not getattr(err, "agrs_reported", False):
            _report_failure(rank, err)
    finally:
        watchdog.stop()
        if not distributed.teardown(grace_s=margin_s(cfg.timeout_s, cfg.backend)):
            print(f"{PROG}: rank {rank}: destroy_process_group hung; exiting without it",
                  file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(status)
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not distributed.launched_by_torchrun():
        try:
            return self_launch(argv)
        except ConfigError as err:
            fail(str(err), PROG)
    return _rank_main(argv, int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))


if __name__ == "__main__":
    sys.exit(main())
