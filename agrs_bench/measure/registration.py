"""Buffers registered with the NCCL communicators that use them: NCCL user buffers (`ub`) or
symmetric windows (`symmetric`), per role, the way Megatron does it (megatron/core/nccl_allocator.py:
a `torch.cuda.MemPool` per buffer set, registered with `register_mem_pool` on every group that runs
collectives on it — the DP group and the AG group — and deregistered before the pool goes).

The role's buffers: AG reads `param_shard` and writes `param_full`; RS reads `grad_full` and writes
`grad_shard`. A role's pool holds its two tensors and is registered on every distinct communicator
of the cell (the AG group and the RS group; once when they are one communicator).

`Ledger` is the bookkeeping (what is registered where, undone in reverse), pure and tested without a
GPU; `TorchPools` is the torch side. Which torch path works depends on the build (torch 2.11+cu130
said "NCCL mem allocator is not supported in this NCCL version" for MemPool(backend.mem_allocator)):
every path of a kind is tried in order, the first that registers is used and named in the cell's
results, and where none does the run stops with one line naming each path's error and the build.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from agrs_bench.errors import ConfigError

ROLE_TENSORS = {"ag": ("param_shard", "param_full"), "rs": ("grad_full", "grad_shard")}
"""The ShardedBuffer fields each role's collective reads and writes."""
PATHS = {"ub": ("nccl_allocator", "caching_allocator"), "symmetric": ("nccl_allocator", "symm_mem")}
"""Torch paths per registration, in order of preference:
nccl_allocator: MemPool(backend.mem_allocator) (ncclMemAlloc) + register_mem_pool(pool[, symm=True]);
caching_allocator: MemPool() of torch's own allocator + register_mem_pool(pool) (ncclCommRegister);
symm_mem: torch.distributed._symmetric_memory with the NCCL backend: empty() + rendezvous(group).
On one H200 (torch 2.11.0+cu130, NCCL 2.28.9) nccl_allocator was refused ("NCCL mem allocator is not
supported in this NCCL version") and caching_allocator registered; torch's own pool registered with
symm=True failed inside NCCL ("unhandled cuda error"), so it is no symmetric path."""


def distinct_groups(groups: Sequence[Any]) -> list[Any]:
    """The communicators among `groups`, each once (by identity: an AG group that is the RS
    group is one communicator), None left out. Pure."""
    found: list[Any] = []
    for group in groups:
        if group is not None and not any(group is seen for seen in found):
            found.append(group)
    return found


@dataclass
class Ledger:
    """What is registered where, so that everything is deregistered, in reverse order, before the
    pools go — also when a registration in the middle fails."""

    register: Callable[[Any, Any, bool], None]
    deregister: Callable[[Any, Any], None]
    done: list[tuple[Any, Any]] = field(default_factory=list)

    def add(self, pool: Any, group: Any, symmetric: bool) -> None:
        if any(p is pool and g is group for p, g in self.done):
            raise ValueError("pool already registered on this communicator")
        self.register(pool, group, symmetric)
        self.done.append((pool, group))

    def release(self) -> list[BaseException]:
        """Deregister everything, last first; the errors, not raised, so every entry is tried."""
        errors: list[BaseException] = []
        while self.done:
            pool, group = self.done.pop()
            try:
                self.deregister(pool, group)
            except Exception as err:  # keep going: the other pools must still be released
                errors.append(err)
        return errors


class TorchPools:
    """The torch side of one path: make a pool for a communicator, allocate in it, (de)register."""

    def __init__(self, path: str, device: Any) -> None:
        self.path, self.device = path, device

    def backend(self, group: Any) -> Any:
        import torch
        return group._get_backend(torch.device(self.device))

    def make_pool(self, group: Any) -> Any:
        import torch
        if self.path == "nccl_allocator":
            return torch.cuda.MemPool(self.backend(group).mem_allocator)
        if self.path == "caching_allocator":
            return torch.cuda.MemPool()
        return None  # symm_mem allocates per tensor

    def empty_like(self, pool: Any, tensor: Any) -> Any:
        import torch
        if self.path == "symm_mem":
            import torch.distributed._symmetric_memory as symm_mem
            current = getattr(symm_mem, "get_backend", lambda device: None)(tensor.device)
            if current not in (None, "NCCL"):  # torch allows one backend per process, set once
                raise RuntimeError(f"symmetric memory of this process already uses the {current} backend")
            symm_mem.set_backend("NCCL")
            return symm_mem.empty(tensor.shape, dtype=tensor.dtype, device=tensor.device)
        with torch.cuda.use_mem_pool(pool):
            return torch.empty_like(tensor)

    def register(self, pool: Any, group: Any, symmetric: bool, tensors: Sequence[Any] = ()) -> None:
        if self.path == "symm_mem":
            import torch.distributed._symmetric_memory as symm_mem
            for tensor in tensors:
                symm_mem.rendezvous(tensor, group)
            return
        backend = self.backend(group)
        if symmetric:
            backend.register_mem_pool(pool, symm=True)
        else:
            backend.register_mem_pool(pool)

    def deregister(self, pool: Any, group: Any) -> None:
        if self.path != "symm_mem":  # symmetric-memory windows live as long as their tensors
            self.backend(group).deregister_mem_pool(pool)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


@contextmanager
def registered(buf: Any, registrations: dict[str, str], groups: Sequence[Any], device: Any,
               found: str, make_pools: Callable[[str, Any], Any] = TorchPools) -> Iterator[dict[str, str]]:
    """Give `buf`'s role tensors registered copies for as long as the block runs; yields the path
    used per role, "<role>_refused" naming the earlier paths' errors where one fell through (and,
    after the block, "deregister_errors" if any deregistration failed).
    `found` names the build for the one-line refusal."""
    pools_of: dict[str, tuple[Any, Ledger]] = {}
    paths: dict[str, str] = {}
    originals = {name: getattr(buf, name) for role in ROLE_TENSORS for name in ROLE_TENSORS[role]}
    groups = distinct_groups(groups)
    try:
        for role, kind in registrations.items():
            if kind == "none":
                continue
            errors = []
            for path in PATHS[kind]:
                torch_side = make_pools(path, device)
                attempt = Ledger(lambda p, g, s, t=torch_side, r=role: t.register(p, g, s, _tensors(buf, r)),
                                 torch_side.deregister)
                try:
                    pool = torch_side.make_pool(groups[0])
                    for name in ROLE_TENSORS[role]:
                        setattr(buf, name, torch_side.empty_like(pool, originals[name]))
                    for group in groups:
                        attempt.add(pool, group, kind == "symmetric")
                except Exception as err:  # this path does not work on this build: try the next
                    errors.append(f"{path}: {_one_line(err)}")
                    errors.extend(f"{path} deregister: {_one_line(e)}" for e in attempt.release())
                    for name in ROLE_TENSORS[role]:
                        setattr(buf, name, originals[name])
                    continue
                pools_of[role] = (pool, attempt)
                paths[role] = path
                if errors:  # the paths this build refused, said beside the one that worked
                    paths[f"{role}_refused"] = "; ".join(errors)
                break
            else:
                raise ConfigError(f"registration={kind} of the {role} buffers: no torch path works on {found} "
                                  f"({'; '.join(errors)})")
        yield paths
    finally:
        errors = []
        for role, (_pool, attempt) in reversed(list(pools_of.items())):
            errors += [f"{role}: {_one_line(e)}" for e in attempt.release()]
            for name in ROLE_TENSORS[role]:
                setattr(buf, name, originals[name])  # the pool goes once its tensors are dropped
        if errors:  # read by the caller after the block: the cell's results name them
            paths["deregister_errors"] = "; ".join(errors)


def _tensors(buf: Any, role: str) -> list[Any]:
    return [getattr(buf, name) for name in ROLE_TENSORS[role]]
