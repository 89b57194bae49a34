"""`python -m agrs_bench.run` without torchrun: check everything, take the run directory, then
run the ranks under PyTorch's own launcher on every local GPU, or on 2 CPU processes when there
is none; afterwards rebuild results.json from cells.jsonl if rank 0 could not write it."""

from __future__ import annotations

import os
import sys

from agrs_bench.config.cli import launch_request, parse_run_args
from agrs_bench.errors import EXIT_MEGATRON_MISMATCH
from agrs_bench.groups import distributed
from agrs_bench.launch.torchrun import launch_and_wait, torchrun_cmd
from agrs_bench.measure import preflight
from agrs_bench.results import files as results
from agrs_bench.results import resume, schema
from agrs_bench.results.rundir import OWNER_ENV, check_run_dir, stopped_line, take_run_dir


def self_launch(argv: list[str], rank_module: str, prog: str) -> int:
    """Run `rank_module` under torch.distributed.run on every local GPU, or 2 CPU processes.

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
        preflight.check_memory(cfg, *preflight.free_bytes(cfg.backend, 0, nproc))
    lock = take_run_dir(cfg)
    env = dict(os.environ)
    env.setdefault("NCCL_NVLS_ENABLE", "0")
    env[OWNER_ENV] = os.path.abspath(cfg.out_dir)
    if cfg.backend == "gloo":
        env.setdefault("OMP_NUM_THREADS", "1")
    if not cfg.resume and "--out" not in argv and not any(a.startswith("--out=") for a in argv):
        argv = [*argv, "--out", cfg.out_dir]  # the children must not pick their own name
    try:
        status, stopped_by = launch_and_wait(torchrun_cmd(nproc, rank_module, argv), env)
    finally:
        sys.stderr.flush()
    if status == 1 and megatron_mismatch_only(cfg.out_dir):
        status = EXIT_MEGATRON_MISMATCH  # torchrun turns every rank's non-zero status into 1
    try:
        if status not in (0, EXIT_MEGATRON_MISMATCH) or stopped_by:
            salvage(cfg.out_dir, prog, quiet=bool(stopped_by))
    finally:
        # a launch that wrote nothing (bad input found by the ranks, which torchrun reports as
        # its status 1) leaves no folder behind
        lock.release(remove_if_unused=True)
    if stopped_by:
        print(f"{prog}: {stopped_line(cfg.out_dir, stopped_by.name)}", file=sys.stderr, flush=True)
        return 128 + stopped_by
    return status


def salvage(out_dir: str, prog: str, quiet: bool) -> None:
    """After the launch: rebuild results.json from cells.jsonl when rank 0 could not write it."""
    from agrs_bench.render.report import write_report

    try:
        if not results.salvage(out_dir):
            return
        write_report(out_dir)
    except (schema.SchemaError, OSError) as err:
        print(f"{prog}: could not rebuild {os.path.join(out_dir, results.RESULTS_FILE)}: "
              f"{' '.join(str(err).split())}", file=sys.stderr, flush=True)
        return
    if not quiet:
        print(f"{prog}: rank 0 ended before writing results; rebuilt "
              f"{os.path.join(out_dir, results.RESULTS_FILE)} from {results.CELLS_FILE} "
              "(marked incomplete)", file=sys.stderr, flush=True)


def megatron_mismatch_only(run_dir: str) -> bool:
    """Did the ranks end with status 5: a complete run that found megatron-core's AG mismatch?
    torchrun reports every rank's non-zero status as its own 1, so the parent learns which from
    the file the ranks wrote, the one thing they leave behind."""
    try:
        meta = schema.load(os.path.join(run_dir, results.RESULTS_FILE))["agrs_bench"]
    except schema.SchemaError:
        return False
    return bool(meta.get("complete") and meta.get("megatron_mismatch"))
