"""One finished cell as measuring hands it over: typed parts, not a free dict. measure/ builds it,
results.files.cell_benchmark alone turns it into a benchmark of results.json (the figures of
analysis.measures are computed there, from the samples, so a stored cell recomputes the same way)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agrs_bench.analysis.measures import ReferenceFigures
from agrs_bench.analysis.sampling import SampleFigures
from agrs_bench.analysis.trace_overlap import TraceFigures
from agrs_bench.config.cell import Cell


@dataclass(frozen=True, kw_only=True)
class StepParts:
    """A step cell's parts sampled in the same rounds as the step (seconds per iteration, one per
    round, the slowest rank's): analysis.measures.step_figures pairs them with the step."""

    compute_only: tuple[float, ...]
    """The step's compute alone (fsdp_step: its compute_only variant; mfsdp_step: the module unsharded)."""
    comm_only: tuple[float, ...] | None
    """The step's communication alone; None: the step has no such part (mfsdp_step)."""
    compute_in_step: tuple[float, ...] | None = None
    """The step's GEMMs timed with events inside the step; None: not timed (a CUDA graph cannot
    hold those events)."""
    compute_alone: tuple[float, ...] | None = None
    """The same GEMMs in the compute-only variant."""

    def extra_info(self) -> dict[str, Any]:
        found: dict[str, Any] = {"compute_only_data": list(self.compute_only),
                                 "comm_only_data": list(self.comm_only) if self.comm_only is not None else None}
        if self.compute_in_step is not None and self.compute_alone is not None:
            found.update(compute_in_step_data=list(self.compute_in_step), compute_alone_data=list(self.compute_alone))
        return found


@dataclass(frozen=True, kw_only=True)
class Measured:
    """One finished cell: what was measured, its samples, and what it ran with."""

    cell: Cell
    """What was measured."""
    group_size: int
    """The ranks of the cell's group (a step cell: of its first buffer kind's)."""
    data: tuple[float, ...]
    """Seconds per iteration, one per round."""
    settings: dict[str, Any]
    """What the cell ran with, recorded as it is: the comparison, the kernel's and the levers'
    settings (describe()), group ranks and shapes. A dict on purpose: every kernel, issue style,
    lever and Megatron-FSDP version has its own open-ended settings, no figure is computed from
    them, and results.json keeps them under their own names."""
    samples: SampleFigures
    """What the samples were (rounds, ops per sample, the shortest against the budget)."""
    reference: ReferenceFigures | None = None
    """ag and rs cells: the nccl-tests-style reference, or why it is left out; None: other modes."""
    parts: StepParts | None = None
    """Step cells: the parts sampled with the step."""
    trace: TraceFigures | None = None
    """--trace on ag_rs cells: the trace file and what it showed."""
    warnings: tuple[str, ...] = ()
    """What a reader of this cell's numbers must know (short samples, a path not taken)."""

    def extra_info(self) -> dict[str, Any]:
        """The measured part of extra_info (the figures follow in files.make_benchmark)."""
        found = {**self.settings, **self.samples.extra_info()}
        for part in (self.reference, self.parts, self.trace):
            if part is not None:
                found.update(part.extra_info())
        return found
