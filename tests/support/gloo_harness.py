"""Run a function on N real gloo ranks (one process each) and collect what each returns.

Workers are module-level functions `fn(rank, world_size, *args) -> picklable`. A worker that raises
sends its exception text back; the harness fails the test with it. Nothing waits forever: every
join has a deadline and leftover processes are killed.
"""

from __future__ import annotations

import datetime
import multiprocessing as mp
import os
import socket
import traceback
from collections.abc import Callable
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry(fn: Callable, rank: int, world_size: int, port: int, args: tuple, queue) -> None:
    import torch.distributed as dist

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world_size, timeout=datetime.timedelta(seconds=60))
        queue.put((rank, "ok", fn(rank, world_size, *args)))
    except BaseException as err:  # report, never hang the parent
        queue.put((rank, "error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# Ranks fork from one server process that imported these once (multiprocessing's forkserver):
# a spawned rank imports torch again (~1.5 s of CPU) and megatron-core (~5 s), which made a
# 4-rank launch take 6.6 s instead of 0.4 s on 2 cores. The server imports them before it
# starts any thread, so the forks are safe; a module that is not installed is skipped.
PRELOAD = ["torch", "torch.distributed", "megatron.core.parallel_state", "agrs_bench.measure.kernels"]


def _context():
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # read when the server starts: the first launch
    return ctx


def run_gloo(world_size: int, fn: Callable, *args: Any, timeout_s: float = 120.0) -> list[Any]:
    ctx = _context()
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_entry, args=(fn, r, world_size, port, args, queue), daemon=True)
             for r in range(world_size)]
    for proc in procs:
        proc.start()
    outcomes: dict[int, tuple[str, Any]] = {}
    try:
        for _ in range(world_size):
            rank, status, value = queue.get(timeout=timeout_s)
            outcomes[rank] = (status, value)
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    errors = [f"rank {r}: {v}" for r, (s, v) in sorted(outcomes.items()) if s == "error"]
    if errors:
        raise AssertionError("\n".join(errors))
    return [outcomes[r][1] for r in range(world_size)]
