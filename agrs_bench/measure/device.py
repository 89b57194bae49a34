"""CPU and GPU behind one handle: role streams, issuing a collective, joining it, and a clock.

Kernels never branch on the backend; they call `issue`, `join` and `timer` here. On CUDA each role
(ag, rs, compute) has its own stream, created once, and a collective issued with async_op=False
runs on the stream that is current when it is issued (PyTorch >= 2.8 launches sync NCCL
collectives on the current stream), so the role stream *is* where the op runs. On CPU (gloo) the
same calls issue async work and join by waiting on the work handles.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
import torch.distributed as dist

ROLES = ("ag", "rs", "compute")


class Issued(NamedTuple):
    """One op in flight: its completion event (CUDA, when asked for), its async handle (gloo),
    and the role stream it runs on."""

    event: Any  # torch.cuda.Event recorded on the role stream after the op, or None
    work: Any  # dist.Work on gloo; None on CUDA, where the role stream carries the dependency
    role: str


class CpuTimer:
    """`record()` / `elapsed_s()` on a monotonic host clock, the CPU twin of a CUDA event."""

    def __init__(self) -> None:
        self.t_s = 0.0

    def record(self) -> None:
        self.t_s = time.perf_counter()

    def elapsed_s(self, end: CpuTimer) -> float:
        return end.t_s - self.t_s


class CudaTimer:
    """A CUDA event on a stream (default: the current one); read only after a synchronize."""

    def __init__(self, stream: Any = None) -> None:
        self.event = torch.cuda.Event(enable_timing=True)
        self.stream = stream

    def record(self) -> None:
        self.event.record(self.stream)

    def elapsed_s(self, end: CudaTimer) -> float:
        return self.event.elapsed_time(end.event) / 1e3


class CpuHandle:
    """gloo on CPU: async work handles, a host clock, a barrier before every sample."""

    backend = "gloo"
    is_cuda = False

    def __init__(self) -> None:
        self.device = torch.device("cpu")

    @contextlib.contextmanager
    def role(self, name: str) -> Iterator[None]:
        yield

    def fork(self, roles: tuple[str, ...]) -> None:
        pass  # gloo ops read their inputs when issued: nothing to wait for

    def issue(self, role: str, collective: Callable[..., Any], output: torch.Tensor, *args,
              record_event: bool = False, **kwargs) -> Issued:
        work = collective(output, *args, async_op=True, **kwargs)
        return Issued(None, work, role)

    def wait(self, role: str, issued: Issued | None) -> None:
        """Work of `role` issued from now on needs `issued` done (gloo: block until it is)."""
        if issued is not None and issued.work is not None:
            issued.work.wait()

    def mark(self, role: str) -> Issued | None:
        return None  # CPU compute runs synchronously: done when the call returns

    def span(self, role: str) -> tuple[CpuTimer, CpuTimer]:
        return CpuTimer(), CpuTimer()

    def join(self, pending: list[Issued]) -> None:
        for issued in pending:
            if issued.work is not None:
                issued.work.wait()
        pending.clear()

    def timer(self) -> CpuTimer:
        return CpuTimer()

    def sample_start(self, hold_s: float = 0.0) -> None:
        # Host clocks of different ranks are not aligned: line them up before each sample.
        dist.barrier()

    def synchronize(self) -> None:
        pass


class CudaHandle:
    """NCCL on one GPU: a stream per role, CUDA events as the clock."""

    backend = "nccl"
    is_cuda = True

    def __init__(self, device: torch.device, high_priority_roles: tuple[str, ...] = ()) -> None:
        self.device = device
        with torch.cuda.device(device):
            # One stream per role, created once: AG and RS must be able to run at the same time
            # (on two communicators), and compute must be able to run beside both. A role whose
            # communicators ask for a high-priority stream gets it here, where its kernels run.
            self.streams = {name: torch.cuda.Stream(device, priority=-1 if name in high_priority_roles else 0)
                            for name in ROLES}
        self._cycles_per_s: float | None = None

    @contextlib.contextmanager
    def role(self, name: str) -> Iterator[None]:
        with torch.cuda.stream(self.streams[name]):
            yield

    def fork(self, roles: tuple[str, ...]) -> None:
        """Role streams wait for what the current stream has queued (inputs written there)."""
        current = torch.cuda.current_stream()
        for name in roles:
            self.streams[name].wait_stream(current)

    def issue(self, role: str, collective: Callable[..., Any], output: torch.Tensor, *args,
              record_event: bool = False, **kwargs) -> Issued:
        stream = self.streams[role]
        with torch.cuda.stream(stream):
            collective(output, *args, async_op=False, **kwargs)
        # Events cost host time, so the hot loops of ag/rs/ag_rs ask for none.
        return Issued(stream.record_event() if record_event else None, None, role)

    def wait(self, role: str, issued: Issued) -> None:
        """Work of `role` issued from now on waits on the device for `issued` to finish."""
        self.streams[role].wait_event(issued.event)

    def mark(self, role: str) -> Issued:
        """An event at the current end of the stream of `role`, for another role to wait on."""
        return Issued(self.streams[role].record_event(), None, role)

    def span(self, role: str) -> tuple[CudaTimer, CudaTimer]:
        """A start/end timer pair that `record` on the stream of `role`."""
        return CudaTimer(self.streams[role]), CudaTimer(self.streams[role])

    def join(self, pending: list[Issued]) -> None:
        current = torch.cuda.current_stream()
        for name in {issued.role for issued in pending}:
            current.wait_stream(self.streams[name])
        for issued in pending:
            # An async op (megatron_fsdp style) runs on its process group's internal stream, not
            # on the role stream: its work handle makes the current stream wait for it.
            if issued.work is not None:
                issued.work.wait()
        pending.clear()

    def timer(self) -> CudaTimer:
        return CudaTimer()

    def sample_start(self, hold_s: float = 0.0) -> None:
        """Hold the stream for `hold_s` with a sleep kernel, so the host can queue the whole
        sample before the device starts it: the sample then measures the device, not Python's
        launch rate (without the hold, small ops are launch-bound)."""
        if hold_s > 0:
            torch.cuda._sleep(int(hold_s * self.sleep_cycles_per_s()))

    def sleep_cycles_per_s(self) -> float:
        if self._cycles_per_s is None:
            cycles = 2_000_000
            torch.cuda._sleep(cycles)  # first call loads the kernel
            start, end = CudaTimer(), CudaTimer()
            start.record()
            torch.cuda._sleep(cycles)
            end.record()
            self.synchronize()
            self._cycles_per_s = cycles / start.elapsed_s(end)
        return self._cycles_per_s

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)


def make_handle(backend: str, local_rank: int, high_priority_roles: tuple[str, ...] = ()
                ) -> CpuHandle | CudaHandle:
    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        return CudaHandle(device, high_priority_roles)
    return CpuHandle()
