"""What moved a collective's bytes, read from a profiler trace (PyTorch's Chrome-trace export):
NCCL kernels on the SMs (and which: ring, tree, NVLS, symmetric, one-rank), copy-engine copies
(memcpy activity, no kernel), or SM copy kernels; and how many CTAs the NCCL kernels held (the
kernel event's grid). Pure: JSON events in, a summary out.

Kernels are complete events ("ph": "X") of category "kernel"; copies are of category "gpu_memcpy"
(the profiler names them "Memcpy DtoD (Device -> Device)", "Memcpy PtoP ...", and so on).
NCCL's kernels are named ncclDevKernel_<Coll>_<ALGO>_<PROTO> (ring/tree/NVLS...) and, for its
symmetric-memory kernels (NCCL >= 2.27), ncclSymk... / ...Symmetric...: the name says which.

`judge` compares what a cell asked NCCL for with what ran: a lever that NCCL silently ignored
(CTA policy zero that still ran SM kernels, symmetric registration that still ran ring/tree
kernels) is reported as ignored, not as a measured lever.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NCCL_KERNEL = re.compile(r"nccl", re.IGNORECASE)
ALGORITHMS = (("symmetric", re.compile(r"symk|symmetric|_sym_", re.IGNORECASE)),
              ("nvls", re.compile(r"nvls", re.IGNORECASE)),
              ("collnet", re.compile(r"collnet", re.IGNORECASE)),
              ("tree", re.compile(r"tree", re.IGNORECASE)),
              ("ring", re.compile(r"ring", re.IGNORECASE)),
              ("pat", re.compile(r"_pat_", re.IGNORECASE)),
              ("one_rank", re.compile(r"onerank|one_rank", re.IGNORECASE)))
"""How an NCCL kernel name is read, first match wins (a symmetric ring kernel is symmetric)."""
COPY_ENGINE = "copy_engine"
SM_KERNELS = "sm_kernels"


def _complete(events: Iterable[Mapping[str, Any]], category: str) -> list[Mapping[str, Any]]:
    return [e for e in events if e.get("ph", "X") == "X" and e.get("cat") == category and "dur" in e]


def algorithm(name: str) -> str:
    """ring / tree / nvls / collnet / symmetric / pat / one_rank / other, from an NCCL kernel name."""
    for label, pattern in ALGORITHMS:
        if pattern.search(name):
            return label
    return "other"


def ctas(event: Mapping[str, Any]) -> int | None:
    """CTAs of a kernel event: the product of its grid, where the trace has it."""
    grid = (event.get("args") or {}).get("grid")
    if not isinstance(grid, Sequence) or not grid or not all(isinstance(g, int) and g > 0 for g in grid):
        return None
    return math.prod(grid)


def within(events: Iterable[Mapping[str, Any]], window: tuple[float, float] | None) -> list[Mapping[str, Any]]:
    events = list(events)
    if window is None:
        return events
    start, end = window
    return [e for e in events if "ts" in e and start <= float(e["ts"]) <= end]


def summarize(events: Iterable[Mapping[str, Any]], window: tuple[float, float] | None = None,
              collective: str | None = None) -> dict[str, Any]:
    """What ran on the device (inside `window`, µs, when given; NCCL kernels of `collective` alone,
    e.g. "AllGather", when given — copies cannot be told apart by collective and all count).

    engine: "copy_engine" (memcpy activity and no NCCL kernel), "sm_kernels" (NCCL kernels and
    no memcpy), "mixed", or "none"; nccl_algorithms: kernel count per algorithm; nccl_ctas_max: the
    largest grid of an NCCL kernel (None where the trace has no grid); other_kernel_count: kernels
    that are not NCCL's (SM copies, reductions, barriers); memcpy_kinds: the copies' names."""
    events = within(events, window)
    every_kernel = _complete(events, "kernel")
    nccl = [k for k in every_kernel if NCCL_KERNEL.search(str(k.get("name", "")))]
    if collective is not None:
        every_kernel = [k for k in every_kernel if k not in nccl or collective in str(k.get("name", ""))]
        nccl = [k for k in nccl if collective in str(k.get("name", ""))]
    copies = _complete(events, "gpu_memcpy")
    grids = [c for c in (ctas(k) for k in nccl) if c is not None]
    if nccl and copies:
        engine = "mixed"
    elif nccl:
        engine = SM_KERNELS
    elif copies:
        engine = COPY_ENGINE
    else:
        engine = "none"
    return {"engine": engine,
            "nccl_algorithms": dict(Counter(algorithm(str(k["name"])) for k in nccl)),
            "nccl_kernel_names": sorted({str(k["name"]).split("(")[0] for k in nccl}),
            "nccl_ctas_max": max(grids) if grids else None,
            "other_kernel_count": len(every_kernel) - len(nccl),
            "memcpy_count": len(copies),
            "memcpy_kinds": sorted({str(c.get("name", "")) for c in copies})}


def judge(requested: Mapping[str, str], seen: Mapping[str, Any], *, nodes: int = 1, ranks: int = 2) -> list[str]:
    """The levers of `requested` (cta_policy, registration) that NCCL did not act on, as messages.

    cta_policy=zero takes effect only on one node with symmetric buffers (NCCL >= 2.28): where SM
    kernels still moved the bytes, it was ignored. registration=symmetric takes effect where NCCL
    ran its symmetric kernels or the copy engines: ring/tree kernels alone mean it was ignored.
    On a group of one rank NCCL runs no collective at all: it copies locally (a Memcpy DtoD under
    every CTA policy, as a trace of NCCL 2.28.9 on one H200 shows, tests/data/levers_trace.json),
    so no lever is in play, and a copy-engine result there is not CTA policy zero at work."""
    if ranks == 1:
        return [f"{lever}={requested[lever]} not in play on a group of one rank: NCCL copies locally"
                for lever, idle in (("cta_policy", "default"), ("registration", "none"))
                if requested.get(lever, idle) != idle]
    ignored = []
    engine = seen.get("engine")
    algorithms = set(seen.get("nccl_algorithms") or {})
    if requested.get("cta_policy") == "zero" and engine == SM_KERNELS:
        why = " across nodes" if nodes > 1 else (
            " without symmetric buffers" if requested.get("registration") != "symmetric" else "")
        ignored.append(f"cta_policy=zero ignored{why}: NCCL ran SM kernels "
                       f"({', '.join(sorted(algorithms)) or 'unnamed'}, up to {seen.get('nccl_ctas_max')} CTAs)")
    if (requested.get("registration") == "symmetric" and engine == SM_KERNELS
            and "symmetric" not in algorithms):
        ignored.append(f"registration=symmetric ignored: NCCL ran {', '.join(sorted(algorithms))} kernels, "
                       "not its symmetric ones")
    return ignored


ROLE_COLLECTIVES = {"ag": "AllGather", "rs": "ReduceScatter"}


def cell_info(events: Sequence[Mapping[str, Any]], requested: Mapping[str, Mapping[str, str]],
              *, nodes: int = 1, ranks: int = 2) -> dict[str, Any]:
    """extra_info of a traced cell: per role what moved the bytes, and the levers NCCL ignored.
    `requested`: role -> {"cta_policy": ..., "registration": ...} as the cell asked; `ranks`: the
    communicators' size (1: no collective ran, see judge)."""
    kinds = {role: summarize(events, collective=name) for role, name in ROLE_COLLECTIVES.items()}
    ignored = [f"{role}: {message}" for role, asked in requested.items() if role in kinds
               for message in judge(asked, kinds[role], nodes=nodes, ranks=ranks)]
    return {"trace_kinds": kinds, "levers_ignored": ignored}
