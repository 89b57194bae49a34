"""`torchrun --standalone --nproc-per-node=N -m agrs_bench.run`: measure, then write the run.

Started without torchrun (`python -m agrs_bench.run`) it launches itself through PyTorch's own
launcher on every local GPU, or on 2 CPU processes when there is none (agrs_bench.launch).
"""

from __future__ import annotations

# The SIGINT hook goes in before the imports that take a second (E402 is that order).
# ruff: noqa: E402

if __name__ == "__main__":  # before the imports below (torch: a second or more) can be interrupted
    from agrs_bench import interrupt

    interrupt.starting("agrs_bench.run")

import datetime
import os
import signal
import sys
import threading
from typing import Any

import torch.distributed as dist

from agrs_bench import interrupt
from agrs_bench.config import models
from agrs_bench.config.cli import parse_rank_args
from agrs_bench.config.run_config import RunConfig
from agrs_bench.errors import EXIT_BAD_INPUT, EXIT_MEGATRON_MISMATCH, ConfigError, RunFailed, fail, report_failure
from agrs_bench.groups import distributed
from agrs_bench.launch.self_launch import self_launch
from agrs_bench.launch.torchrun import StderrOutlivingItsReader
from agrs_bench.measure import preflight
from agrs_bench.measure.runner import Fixtures, measure_all, say
from agrs_bench.measure.startup import gather_machine
from agrs_bench.measure.watchdog import Watchdog, margin_s
from agrs_bench.results import files as results
from agrs_bench.results import resume, schema
from agrs_bench.results.rundir import OWNER_ENV, check_run_dir, claim_run_dir, save_after_failure, write_results

PROG = "agrs_bench.run"


def run(cfg: RunConfig, info: distributed.DistInfo, watchdog: Watchdog, skip_cells: list[dict]) -> int:
    """After preflight: make the run directory, the groups, measure, write. Returns the exit
    status; a failure raises (RunFailed once said), after rank 0 saved the finished cells."""
    rank = info.rank
    finished: list = list(skip_cells)  # a resumed run's cells (rank 0 only; empty elsewhere)
    context: dict[str, Any] = {
        "started_utc": datetime.datetime.now(datetime.UTC).isoformat(),
        "machine_info": {"backend": info.backend, "world_size": info.world_size},
        "notes": {"nccl_env_set": info.nccl_env_set,
                  "resumed_cells": len(skip_cells) if cfg.resume else 0},
    }
    local_peers: list[int] = []  # pids of the other ranks of this node's agent
    owned: list[Any] = []  # rank 0, once the run directory is this run's: write only then
    # The watchdog thread (timeout, SIGTERM) and the main thread (a failing collective) may both
    # save at once: one writer at a time, and none after the watchdog's save (it then _exits,
    # which would cut a main-thread write in half).
    save_lock, expiring = threading.Lock(), threading.Event()

    def save(by_watchdog: bool = False) -> str | None:
        if by_watchdog:
            expiring.set()
        with save_lock:
            if rank != 0 or not owned or (expiring.is_set() and not by_watchdog):
                return None
            from agrs_bench.render.report import write_report  # plots: import only to write

            write_results(cfg, list(finished), context)
            return write_report(cfg.out_dir)

    def on_expire(phase: str) -> None:
        # A stopped peer ignores the launcher's SIGTERM until continued: wake it, so that the
        # launcher can end it now rather than after its own grace period.
        distributed.wake_stopped(local_peers)
        save(by_watchdog=True)

    watchdog.on_expire = on_expire
    owned.extend(claim_run_dir(cfg, rank))
    distributed.make_flight_recorder_dir(info)
    try:
        skip_keys: list[Any] = [[schema.cell_key(b["params"]) for b in skip_cells]]
        dist.broadcast_object_list(skip_keys, src=0)
        fixtures = Fixtures(cfg, info)
        if fixtures.megatron is not None:
            context["notes"]["megatron_core"] = fixtures.megatron.describe()
            context["notes"]["megatron_mismatch"] = fixtures.megatron_mismatch
            context["untimed_sources"] = fixtures.untimed_sources
        context["machine_info"], ranks = gather_machine(cfg, info)
        local_peers.extend(ranks.peers_here())
        watchdog.disarm()
        say(rank, f"agrs_bench: {info.world_size} ranks on {len(set(ranks.nodes))} node(s), {info.backend}, "
                   f"layout {cfg.layout.describe()}, {len(cfg.cells())} cells -> {cfg.out_dir}"
                   + (f" (resuming: {len(skip_keys[0])} finished)" if cfg.resume else ""))
        if cfg.model is not None:
            say(rank, f"agrs_bench: {models.summary_line(cfg.model_record())}")
        untimed = {c.key for c in cfg.cells() if c.source in fixtures.untimed_sources}
        measure_all(cfg, info, fixtures, finished, skip={tuple(k) for k in skip_keys[0]} | untimed,
                    nodes=ranks.nodes, watchdog=watchdog, devices=ranks.devices)
        fixtures.close()
    except BaseException as err:
        watchdog.disarm()
        if isinstance(err, Exception):
            # Say why first: writing the outputs takes seconds, and the launcher may end this
            # rank meanwhile (a woken peer fails at once and torchrun stops the job).
            report_failure(PROG, rank, err)
        distributed.wake_stopped(local_peers)
        if rank == 0:
            save_after_failure(PROG, cfg, save, len(finished))
        if isinstance(err, Exception) and not isinstance(err, ConfigError):
            raise RunFailed(str(err)) from err
        raise
    if rank == 0:
        try:
            path = save()
        except OSError as err:
            print(f"{PROG}: rank 0: could not write the results ({err}); the {len(finished)} measured "
                  f"cell(s) are in {os.path.join(cfg.out_dir, results.CELLS_FILE)}", file=sys.stderr,
                  flush=True)
            raise RunFailed(str(err)) from err
        print(f"agrs_bench: report: {path}", flush=True)
    if context["notes"].get("megatron_mismatch"):
        # torchrun ends every rank once one exits non-zero: none may leave before rank 0 has written.
        dist.barrier()
        say(rank, "agrs_bench: megatron_core not timed: megatron-core's AG groups differ from its "
                   f"DP groups (see report.md); exit status {EXIT_MEGATRON_MISMATCH}")
        return EXIT_MEGATRON_MISMATCH
    return 0


def _rank_main(argv: list[str], launch: distributed.LaunchEnv) -> int:
    """One rank under torchrun. Exit status: 0 done, 1 failed (results kept), 2 bad input,
    3 a phase hung past --timeout plus margin (the watchdog ended it), 5 megatron-core's AG groups
    differ from its DP groups (megatron_core not timed, the others timed), 143 torchrun's SIGTERM."""
    if os.environ.get(OWNER_ENV):
        sys.stderr = StderrOutlivingItsReader(sys.stderr)  # type: ignore[assignment]
    rank, world = launch.rank, launch.world_size
    try:
        cfg = parse_rank_args(argv, world_size=world, gpus=distributed.visible_gpus(),
                              local_world_size=launch.local_world_size, stored=resume.stored_for_flags)
        skip_cells = check_run_dir(cfg) if rank == 0 else []
    except ConfigError as err:
        if rank == 0:
            fail(str(err), PROG)
        raise SystemExit(EXIT_BAD_INPUT) from None
    watchdog = Watchdog(PROG, rank)
    watchdog.catch_sigterm()
    watchdog.arm("start-up (process groups)", cfg.timeout_s + margin_s(cfg.timeout_s, cfg.backend))
    status = 1
    try:
        info = distributed.init(cfg.timeout_s, cfg.backend, run_dir=cfg.out_dir)
        preflight.check_every_rank(cfg, info)
        status = run(cfg, info, watchdog, skip_cells)
    except ConfigError as err:
        status = EXIT_BAD_INPUT
        if rank == 0:
            print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # SIGINT sent to this rank itself: the cells are saved above
        status = 128 + signal.SIGINT
        print(f"{PROG}: rank {rank}: interrupted (SIGINT)", file=sys.stderr, flush=True)
    except RunFailed as err:  # said already, the finished cells saved
        status = err.status
    except Exception as err:
        report_failure(PROG, rank, err)
    finally:
        watchdog.stop()
        if not distributed.teardown(grace_s=margin_s(cfg.timeout_s, cfg.backend)):
            print(f"{PROG}: rank {rank}: destroy_process_group hung; exiting without it",
                  file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(status)
    return status


def main(argv: list[str] | None = None, *, rank_module: str = PROG) -> int:
    """The program: a rank under torchrun, or the parent that launches `rank_module` (a module
    whose main ends in this one) on every local GPU."""
    interrupt.started()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        launch = distributed.launch_env(os.environ)
        if launch is None:
            return self_launch(argv, rank_module, PROG)
    except ConfigError as err:
        fail(str(err), PROG)
    except KeyboardInterrupt:  # Ctrl-C before torchrun started: nothing to stop, nothing written
        print(f"{PROG}: interrupted (SIGINT) before the launch", file=sys.stderr, flush=True)
        return 128 + signal.SIGINT
    return _rank_main(argv, launch)


if __name__ == "__main__":
    sys.exit(main())
