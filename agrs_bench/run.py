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

from agrs_bench.groups import distributed
from agrs_bench.results import machine
from agrs_bench.results import files as results
from agrs_bench.results import schema
from agrs_bench.measure import telemetry
from agrs_bench.measure import preflight as preflight_mod
from agrs_bench.config.cli import parse_run_args
from agrs_bench.config.run_config import RunConfig
from agrs_bench.errors import EXIT_BAD_INPUT, ConfigError, fail
from agrs_bench.measure.runner import Fixtures, groups_span_nodes, measure_all
from agrs_bench.measure.watchdog import Watchdog, margin_s
from agrs_bench.results.rundir import check_run_dir, prepare_run_dir

PROG = "agrs_bench.run"


def _say(rank: int, text: str) -> None:
    if rank == 0:
        print(text, flush=True)



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
