"""What a cell's samples were: their count and length against the budget, where the cell sat in
each round, and the held estimate the count came from. Pure: measure/timing.py fills it,
results/measured.py writes it into extra_info."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class SampleFigures:
    """The extra_info fields of a cell about its samples (timing.PairedSamples.sample_figures)."""

    rounds: int
    """Samples of the cell, one per round."""
    ops_per_sample: int
    """Back-to-back iterations between one pair of timers (the same for every part)."""
    sample_s_min: float
    """The shortest whole sample, in seconds (a step cell: the shortest of its parts')."""
    sample_s_target: float
    """The budget every sample should reach (--sample-ms)."""
    sampling_position: tuple[int, ...]
    """Where in each round the cell was sampled (0 = first)."""
    estimate_device_s: float
    """Device seconds per iteration from the held estimate, the slowest rank's."""
    estimate_host_s: float
    """Host seconds to issue one iteration, the slowest rank's."""

    @property
    def sample_short(self) -> bool:
        """sample_s_min fell short of sample_s_target."""
        return self.sample_s_min < self.sample_s_target

    def extra_info(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "ops_per_sample": self.ops_per_sample, "sample_s_min": self.sample_s_min,
                "sample_s_target": self.sample_s_target, "sample_short": self.sample_short,
                "sampling_position": list(self.sampling_position), "estimate_device_s": self.estimate_device_s,
                "estimate_host_s": self.estimate_host_s}
