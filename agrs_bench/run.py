"""`torchrun --standalone --nproc-per-node=N -m agrs_bench.run`: measure, then write the run.

Started without torchrun (`python -m agrs_bench.run`) it launches itself through PyTorch's own
launcher on every local GPU, or on 2 CPU processes when there is none.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
from typing import Any

import torch.distributed as dist

from agrs_bench.config.cli import launch_request, parse_run_args
from agrs_bench.config.run_config import RunConfig
from agrs_bench.errors import EXIT_BAD_INPUT, EXIT_MEGATRON_MISMATCH, ConfigError, fail
from agrs_bench.groups import distributed
from agrs_bench.groups.processes import ProcessTree
from agrs_bench.measure import preflight as preflight_mod
from agrs_bench.measure import telemetry
from agrs_bench.measure.runner import Fixtures, groups_span_nodes, measure_all, say
from agrs_bench.measure.watchdog import Watchdog, margin_s
from agrs_bench.results import files as results
from agrs_bench.results import machine, resume, schema
from agrs_bench.results.rundir import OWNER_ENV, check_run_dir, prepare_run_dir, take_run_dir

PROG = "agrs_bench.run"



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
    untimed = context.get("untimed_sources", ())  # not timed on purpose (megatron_core mismatch)
    missing = [schema.cell_id(dict(c, world_size=world)) for c in cfg.cells()
               if schema.cell_key(c) not in done and c["source"] not in untimed]
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
            return write_outputs(cfg, list(finished), context)

    def on_expire(phase: str) -> None:
        # A stopped peer ignores the launcher's SIGTERM until continued: wake it, so that the
        # launcher can end it now rather than after its own grace period.
        distributed.wake_stopped(local_peers)
        save(by_watchdog=True)

    watchdog.on_expire = on_expire
    problem: list[Any] = [None]
    if rank == 0:
        try:
            owned.append(prepare_run_dir(cfg))
        except ConfigError as err:
            problem[0] = str(err)
    dist.broadcast_object_list(problem, src=0)  # every rank leaves as bad input, none hangs
    if problem[0]:
        raise ConfigError(problem[0])
    distributed.make_flight_recorder_dir(info)
    try:
        skip_keys: list[Any] = [[schema.cell_key(b["params"]) for b in skip_cells]]
        dist.broadcast_object_list(skip_keys, src=0)
        fixtures = Fixtures(cfg, info)
        if fixtures.megatron is not None:
            context["notes"]["megatron_core"] = fixtures.megatron.describe()
            context["notes"]["megatron_mismatch"] = fixtures.megatron_mismatch
            context["untimed_sources"] = fixtures.untimed_sources
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
        say(rank, f"agrs_bench: {info.world_size} ranks on {len(set(nodes))} node(s), {info.backend}, "
                   f"layout {cfg.layout.describe()}, {len(cfg.cells())} cells -> {cfg.out_dir}"
                   + (f" (resuming: {len(skip_keys[0])} finished)" if cfg.resume else ""))
        untimed = {schema.cell_key(c) for c in cfg.cells() if c["source"] in fixtures.untimed_sources}
        measure_all(cfg, info, fixtures, finished, skip={tuple(k) for k in skip_keys[0]} | untimed,
                    nodes=nodes, watchdog=watchdog, devices=devices)
        fixtures.close()
    except BaseException as err:
        watchdog.disarm()
        if isinstance(err, Exception):
            # Say why first: writing the outputs takes seconds, and the launcher may end this
            # rank meanwhile (a woken peer fails at once and torchrun stops the job).
            _report_failure(rank, err)
        distributed.wake_stopped(local_peers)
        if rank == 0:
            try:
                save()
            except Exception as save_err:  # disk full, read-only: say so, keep the first error
                print(f"{PROG}: rank 0: could not write the results: {type(save_err).__name__}: "
                      f"{' '.join(str(save_err).split())}", file=sys.stderr, flush=True)
                raise err from None
            print(f"agrs_bench: run failed; {len(finished)} finished cell(s) kept in "
                  f"{os.path.join(cfg.out_dir, results.RESULTS_FILE)} (marked incomplete; "
                  f"finish it with --resume {cfg.out_dir})", file=sys.stderr, flush=True)
        raise
    if rank == 0:
        try:
            path = save()
        except OSError as err:
            print(f"{PROG}: rank 0: could not write the results ({err}); the {len(finished)} measured "
                  f"cell(s) are in {os.path.join(cfg.out_dir, results.CELLS_FILE)}", file=sys.stderr,
                  flush=True)
            err.agrs_reported = True  # type: ignore[attr-defined]
            raise
        print(f"agrs_bench: report: {path}", flush=True)
    if context["notes"].get("megatron_mismatch"):
        # torchrun ends every rank once one exits non-zero: none may leave before rank 0 has written.
        dist.barrier()
        say(rank, "agrs_bench: megatron_core not timed: megatron-core's AG groups differ from its "
                   f"DP groups (see report.md); exit status {EXIT_MEGATRON_MISMATCH}")
        return EXIT_MEGATRON_MISMATCH
    return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the terminal went away
RANKS_GRACE_S = 60.0
"""After a stop signal: how long torchrun and the ranks get to save and exit before SIGKILL
(a rank saves within the watchdog's 20 s; torchrun waits 30 s before it kills a rank)."""


def self_launch(argv: list[str], rank_module: str = PROG) -> int:
    """Run `rank_module` (this one) under torch.distributed.run on every local GPU, or 2 CPU processes.

    The parent checks everything first, takes the run directory, then starts torchrun in a
    session of its own; SIGINT and SIGTERM to the parent end torchrun and every rank (the ranks
    save the finished cells), and the parent returns only once no process of the launch is left.
    """
    gpus = distributed.visible_gpus()
    requested, resume_world = launch_request(argv, stored=resume.stored_for_flags)
    if resume_world is not None:
        nproc = resume_world
    else:
        nproc = gpus if requested != "gloo" and gpus >= 2 else 2
    cfg = parse_run_args(argv, world_size=nproc, gpus=gpus, local_world_size=nproc,
                         stored=resume.stored_for_flags)  # bad input fails here, cleanly
    check_run_dir(cfg)
    if cfg.backend == "gloo":  # GPU memory is checked by the ranks, before they allocate or write
        preflight_mod.check_memory(cfg, *preflight_mod.free_bytes(cfg.backend, 0, nproc))
    lock = take_run_dir(cfg)
    env = dict(os.environ)
    env.setdefault("NCCL_NVLS_ENABLE", "0")
    env[OWNER_ENV] = os.path.abspath(cfg.out_dir)
    if cfg.backend == "gloo":
        env.setdefault("OMP_NUM_THREADS", "1")
    if not cfg.resume and "--out" not in argv and not any(a.startswith("--out=") for a in argv):
        argv = [*argv, "--out", cfg.out_dir]  # the children must not pick their own name
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", "-m", rank_module, *argv]
    try:
        status, stopped_by = _launch_and_wait(cmd, env)
    finally:
        sys.stderr.flush()
    if status == 1 and _megatron_mismatch_only(cfg.out_dir):
        status = EXIT_MEGATRON_MISMATCH  # torchrun turns every rank's non-zero status into 1
    try:
        if status not in (0, EXIT_MEGATRON_MISMATCH) or stopped_by:
            _salvage(cfg.out_dir, quiet=bool(stopped_by))
    finally:
        # a launch that wrote nothing (bad input found by the ranks, which torchrun reports as
        # its status 1) leaves no folder behind
        lock.release(remove_if_unused=True)
    if stopped_by:
        print(f"{PROG}: stopped by {stopped_by.name}; {_kept(cfg.out_dir)} kept in "
              f"{os.path.join(cfg.out_dir, results.RESULTS_FILE)} (marked incomplete; finish it with "
              f"--resume {cfg.out_dir})", file=sys.stderr, flush=True)
        return 128 + stopped_by
    return status


def _launch_and_wait(cmd: list[str], env: dict[str, str]) -> tuple[int, signal.Signals | None]:
    """Run torchrun to its end; on SIGINT/SIGTERM stop it and its ranks. Returns its status and
    the signal that stopped it, once every process of the launch is gone."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.PIPE,
                            preexec_fn=_end_with_parent)
    tree = ProcessTree(proc.pid)
    stopped: list[signal.Signals] = []

    def relay() -> None:  # once stopped, the launch's own messages would bury the one line
        for line in iter(proc.stderr.readline, b""):  # type: ignore[union-attr]
            if not stopped:
                sys.stderr.write(line.decode("utf-8", "replace"))
                sys.stderr.flush()

    def on_signal(signum: int, frame: Any) -> None:
        first = not stopped
        stopped.append(signal.Signals(signum))
        tree.refresh()
        how = signal.SIGTERM if first else signal.SIGKILL  # a second Ctrl-C: no more waiting
        try:
            os.killpg(proc.pid, how)
        except OSError:
            pass
        tree.signal(how)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    relay_thread = threading.Thread(target=relay, daemon=True, name="agrs-relay")
    relay_thread.start()
    deadline: threading.Timer | None = None
    try:
        while proc.poll() is None:
            tree.refresh()
            try:
                proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            if stopped and deadline is None:  # stopped, but what does not end in time is killed
                deadline = threading.Timer(RANKS_GRACE_S, lambda: (os.killpg(proc.pid, signal.SIGKILL)
                                                                   if proc.poll() is None else None,
                                                                   tree.signal(signal.SIGKILL)))
                deadline.daemon = True
                deadline.start()
        # torchrun is gone; its ranks (each in a session of its own) may not be. A launcher that
        # died leaves them nobody to stop them: end them, and never write while one may write.
        if tree.alive():
            if proc.returncode != 0:
                tree.signal(signal.SIGTERM)
            if not tree.wait_gone(RANKS_GRACE_S):
                tree.signal(signal.SIGKILL)
                tree.wait_gone(10.0)
    finally:
        if deadline is not None:
            deadline.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    relay_thread.join(5.0)
    return proc.returncode, (stopped[0] if stopped else None)


def _end_with_parent() -> None:
    """In torchrun's process, before it starts: SIGTERM it when this parent dies (even by
    SIGKILL), so that it stops its ranks rather than running on without anyone to report to."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: a killed parent leaves torchrun to finish on its own


def _salvage(out_dir: str, quiet: bool) -> None:
    """After the launch: rebuild results.json from cells.jsonl when rank 0 could not write it."""
    from agrs_bench.render.report import write_report

    try:
        if not results.salvage(out_dir):
            return
        write_report(out_dir)
    except (schema.SchemaError, OSError) as err:
        print(f"{PROG}: could not rebuild {os.path.join(out_dir, results.RESULTS_FILE)}: "
              f"{' '.join(str(err).split())}", file=sys.stderr, flush=True)
        return
    if not quiet:
        print(f"{PROG}: rank 0 ended before writing results; rebuilt "
              f"{os.path.join(out_dir, results.RESULTS_FILE)} from {results.CELLS_FILE} "
              "(marked incomplete)", file=sys.stderr, flush=True)


def _kept(out_dir: str) -> str:
    try:
        return f"{len(schema.load(os.path.join(out_dir, results.RESULTS_FILE))['benchmarks'])} finished cell(s)"
    except schema.SchemaError:
        return "the finished cells"


def _megatron_mismatch_only(run_dir: str) -> bool:
    """Did the ranks end with status 5: a complete run that found megatron-core's AG mismatch?"""
    try:
        meta = schema.load(os.path.join(run_dir, results.RESULTS_FILE))["agrs_bench"]
    except schema.SchemaError:
        return False
    return bool(meta.get("complete") and meta.get("megatron_mismatch"))


def _report_failure(rank: int, err: Exception) -> None:
    """One line on stderr naming the rank and the error (a traceback only on request)."""
    print(f"{PROG}: rank {rank}: {type(err).__name__}: {' '.join(str(err).split())}",
          file=sys.stderr, flush=True)
    if os.environ.get("AGRS_BENCH_TRACEBACK"):
        traceback.print_exc()
    err.agrs_reported = True  # type: ignore[attr-defined]


class _StderrOutlivingItsReader:
    """stderr of a rank under the self-launch parent, which reads it through a pipe: if the
    parent dies (SIGKILL), a write must not raise BrokenPipeError into the save-and-exit path."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError:
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _rank_main(argv: list[str], launch: distributed.LaunchEnv) -> int:
    """One rank under torchrun. Exit status: 0 done, 1 failed (results kept), 2 bad input,
    3 a phase hung past --timeout plus margin (the watchdog ended it), 5 megatron-core's AG groups
    differ from its DP groups (megatron_core not timed, the others timed), 143 torchrun's SIGTERM."""
    if os.environ.get(OWNER_ENV):
        sys.stderr = _StderrOutlivingItsReader(sys.stderr)  # type: ignore[assignment]
    rank, world = launch.rank, launch.world_size
    try:
        if world < 2:
            raise ConfigError(f"world size {world}: AG/RS overlap needs at least 2 ranks "
                              "(use --nproc-per-node=2 or more)")
        cfg = parse_run_args(argv, world_size=world, gpus=distributed.visible_gpus(),
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
        preflight(cfg, info)
        status = run(cfg, info, watchdog, skip_cells)
    except ConfigError as err:
        status = EXIT_BAD_INPUT
        if rank == 0:
            print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # SIGINT sent to this rank itself: the cells are saved above
        status = 128 + signal.SIGINT
        print(f"{PROG}: rank {rank}: interrupted (SIGINT)", file=sys.stderr, flush=True)
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


def main(argv: list[str] | None = None, *, rank_module: str = PROG) -> int:
    """The program: a rank under torchrun, or the parent that launches `rank_module` (a module
    whose main ends in this one) on every local GPU."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        launch = distributed.launch_env(os.environ)
        if launch is None:
            return self_launch(argv, rank_module)
    except ConfigError as err:
        fail(str(err), PROG)
    except KeyboardInterrupt:  # Ctrl-C before torchrun started: nothing to stop, nothing written
        print(f"{PROG}: interrupted (SIGINT) before the launch", file=sys.stderr, flush=True)
        return 128 + signal.SIGINT
    return _rank_main(argv, launch)


if __name__ == "__main__":
    sys.exit(main())
