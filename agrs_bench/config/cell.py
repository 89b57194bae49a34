"""One cell of a run: what is measured, typed and frozen, made once by RunConfig.cells().

Measuring reads its attributes; the results layer alone turns it into JSON (`params()`). Its
`key` and `name` are the ones the results files have always matched and named cells by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agrs_bench.vocab import DEFAULT_ISSUE, size_label

# Params a results file may leave out, with the value that means: an eager cell on default
# NCCL options, issued on our role streams.
OPTIONAL_PARAMS = {"exec": "eager", "nccl_options": "default", "issue": DEFAULT_ISSUE}

Mode = Literal["ag", "rs", "ag_rs", "fsdp_step", "mfsdp_step"]  # vocab.ALL_MODES
Source = Literal["single_comm", "global_state", "pg_collection", "megatron_core"]  # vocab.SOURCES
Issue = Literal["role_streams", "megatron_fsdp", "low_contention"]  # vocab.ISSUE_STYLES
Exec = Literal["eager", "graph"]


def key_of(params: dict[str, Any]) -> tuple:
    """What makes two cells the same measurement (for matching runs and resuming)."""
    return (params["mode"], params["buffer"], params["source"], int(params["size_bytes"]), params["dtype"],
            *(params.get(k, default) for k, default in OPTIONAL_PARAMS.items()))


def name_of(params: dict[str, Any]) -> str:
    """mode-buffer-source-size, then every optional param that is not its default."""
    name = f"{params['mode']}-{params['buffer']}-{params['source']}-{size_label(int(params['size_bytes']))}"
    for key, default in OPTIONAL_PARAMS.items():
        if params.get(key, default) != default:
            name += f"-{params[key]}"
    return name


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One measurement of a run: a mode on a buffer, from a group source, at one size."""

    mode: Mode
    """The collective(s) or step measured (vocab.ALL_MODES)."""
    buffer: str
    """The buffer kind (vocab.BUFFERS); a step cell names all of them joined by '+'."""
    source: Source
    """Where the process groups come from (vocab.SOURCES)."""
    size_bytes: int
    """The buffer size per layer (a step cell: the bucket size), in bytes."""
    dtype: Literal["bf16", "fp32"]
    """The element type of the buffers."""
    exec: Exec = "eager"
    """Launched op by op, or replayed from a captured CUDA graph."""
    nccl_options: str = "default"
    """The label of the (AG, RS) NCCL options pair (config.nccl_options.pair_label)."""
    issue: Issue = DEFAULT_ISSUE
    """How the collectives are issued (vocab.ISSUE_STYLES)."""

    def params(self) -> dict[str, Any]:
        """The cell as results.json's params store it (before world and group size)."""
        return {"mode": self.mode, "buffer": self.buffer, "source": self.source, "size_bytes": self.size_bytes,
                "dtype": self.dtype, "exec": self.exec, "nccl_options": self.nccl_options, "issue": self.issue}

    @property
    def key(self) -> tuple:
        """What makes two cells the same measurement: equal to key_of on its results params."""
        return key_of(self.params())

    @property
    def name(self) -> str:
        """The cell's name in results, progress lines and errors, e.g. 'ag-dense-single_comm-4KiB'."""
        return name_of(self.params())
