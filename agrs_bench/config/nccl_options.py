"""Per-role NCCL communicator options: what the AG groups and the RS groups are created with.

Upstream, the AG communicator is created with default options even when the DP communicator is
tuned; these let the two roles differ. `high_priority` also puts the role's CUDA stream at high
priority, since sync NCCL collectives run on the stream that issues them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agrs_bench.errors import ConfigError

_INT_KEYS = ("min_ctas", "max_ctas", "cga_cluster_size")
CTA_POLICIES = ("default", "efficiency", "zero")
"""ncclConfig_t.CTAPolicy: NCCL's default; `efficiency` (fewer CTAs for the same bandwidth);
`zero` (no CTAs where NCCL can move the data with the copy engines: one node, symmetric buffers)."""
REGISTRATIONS = ("none", "ub", "symmetric")
"""How a role's buffers are registered with its communicators: not at all; NCCL user buffers
(ncclCommRegister, Megatron's --use-nccl-ub); symmetric windows (ncclCommWindowRegister, NCCL >= 2.27)."""
CTA_POLICY_MIN_NCCL = {"default": (2, 27), "efficiency": (2, 27), "zero": (2, 28)}
"""The NCCL release that added each policy (NCCL 2.27 added the CTA policy, 2.28 policy zero)."""


@dataclass(frozen=True, kw_only=True)
class NcclOptions:
    """Options of one role's communicators; None leaves NCCL's default."""

    high_priority: bool = False
    """High-priority stream for the role (the role stream and the group's internal stream)."""
    min_ctas: int | None = None
    """NCCL_MIN_CTAS of these communicators (ncclConfig_t.minCTAs)."""
    max_ctas: int | None = None
    """NCCL_MAX_CTAS of these communicators (ncclConfig_t.maxCTAs)."""
    cga_cluster_size: int | None = None
    """CGA cluster size of the NCCL kernels (ncclConfig_t.cgaClusterSize), 0-8."""
    cta_policy: str | None = None
    """ncclConfig_t.CTAPolicy, one of CTA_POLICIES; None leaves the field unset."""
    registration: str = "none"
    """How this role's buffers are registered with the communicators that use them (REGISTRATIONS)."""

    def __post_init__(self) -> None:
        if self.registration not in REGISTRATIONS:
            raise ConfigError(f"NCCL option registration={self.registration!r} is not one of "
                              f"{'|'.join(REGISTRATIONS)}")
        if self.cta_policy is not None and self.cta_policy not in CTA_POLICIES:
            raise ConfigError(f"NCCL option cta_policy={self.cta_policy!r} is not one of {'|'.join(CTA_POLICIES)}")
        for key in _INT_KEYS:
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or value < 0 or value > 64):
                raise ConfigError(f"NCCL option {key}={value!r} must be an integer in 0..64")
        if self.min_ctas and self.max_ctas and self.min_ctas > self.max_ctas:
            raise ConfigError(f"NCCL options min_ctas={self.min_ctas} > max_ctas={self.max_ctas}")
        if self.cga_cluster_size is not None and self.cga_cluster_size > 8:
            raise ConfigError(f"NCCL option cga_cluster_size={self.cga_cluster_size} must be 0..8")

    @property
    def is_default(self) -> bool:
        return self == NcclOptions()

    def label(self) -> str:
        parts = ["hp"] if self.high_priority else []
        parts += [f"{k}={getattr(self, k)}" for k in _INT_KEYS if getattr(self, k) is not None]
        if self.cta_policy is not None:
            parts.append(f"cta_policy={self.cta_policy}")
        if self.registration != "none":
            parts.append(f"registration={self.registration}")
        return "+".join(parts) or "default"

    @property
    def communicator_is_default(self) -> bool:
        """Nothing of the communicator itself differs from NCCL's defaults (registration is a
        property of the buffers, not of the communicator)."""
        return self.label() in ("default", f"registration={self.registration}")

    def to_process_group_options(self) -> Any:
        """A ProcessGroupNCCL.Options, or None for all defaults (needs an NCCL build of torch)."""
        if self.communicator_is_default:
            return None
        import torch.distributed as dist

        options = dist.ProcessGroupNCCL.Options()
        options.is_high_priority_stream = self.high_priority
        for key in _INT_KEYS:
            if getattr(self, key) is not None:
                setattr(options.config, key, getattr(self, key))
        if self.cta_policy is not None:
            options.config.cta_policy = getattr(dist.ProcessGroupNCCL, f"NCCL_CTA_POLICY_{self.cta_policy.upper()}")
        return options


def support_problem(options: list[NcclOptions]) -> str | None:
    """Why the installed torch/NCCL cannot create groups with these options, or None.

    Reads the installed build (so it imports torch): the CTA policy needs ProcessGroupNCCL's
    NCCL_CTA_POLICY_* constants and a `cta_policy` config field, and NCCL new enough for the policy."""
    wanted = sorted({o.cta_policy for o in options if o.cta_policy is not None},
                    key=CTA_POLICY_MIN_NCCL.__getitem__)
    if not wanted:
        return None
    import torch
    import torch.distributed as dist

    needed = max(CTA_POLICY_MIN_NCCL[p] for p in wanted)
    pg = getattr(dist, "ProcessGroupNCCL", None)
    nccl = nccl_version()
    found = f"torch {torch.__version__}, NCCL {'.'.join(map(str, nccl)) if nccl else 'none'}"
    need = f"cta_policy={'/'.join(wanted)} needs NCCL >= {needed[0]}.{needed[1]} and a torch whose ProcessGroupNCCL"
    if pg is None or nccl is None:
        return f"{need} exists; found {found} (no NCCL in this build)"
    missing = [f"NCCL_CTA_POLICY_{p.upper()}" for p in wanted if not hasattr(pg, f"NCCL_CTA_POLICY_{p.upper()}")]
    if missing or not hasattr(pg.Options().config, "cta_policy"):
        return f"{need} has {', '.join(missing) or 'Options().config.cta_policy'} (torch >= 2.9); found {found}"
    if nccl < needed:
        return f"{need} runs it; found {found}"
    return None


def nccl_version() -> tuple[int, ...] | None:
    """The NCCL version torch was built with, or None for a build without NCCL."""
    import torch

    try:
        version = torch.cuda.nccl.version()
    except Exception:  # CPU builds have no NCCL to ask
        return None
    return tuple(version) if isinstance(version, tuple) else (version // 1000, version // 100 % 10, version % 100)


def parse_nccl_options(text: str) -> NcclOptions:
    """'high_priority,min_ctas=4,max_ctas=16,cga_cluster_size=2,cta_policy=zero' (or 'default')."""
    fields: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        if item == "default":
            continue
        if item in ("high_priority", "hp"):
            fields["high_priority"] = True
            continue
        key, sep, value = item.partition("=")
        if sep and key in ("cta_policy", "registration"):
            fields[key] = value
            continue
        if not sep or key not in _INT_KEYS:
            raise ConfigError(f"NCCL option {item!r} is not high_priority, {'/'.join(_INT_KEYS)}=INT, "
                              f"cta_policy={'|'.join(CTA_POLICIES)} or registration={'|'.join(REGISTRATIONS)}")
        if not re.fullmatch(r"[0-9]{1,9}", value.strip()):  # int() would take '٤' and 4300 digits
            raise ConfigError(f"NCCL option {item!r}: {value!r} is not an integer")
        fields[key] = int(value)
    return NcclOptions(**fields)


# The grid of --sweep-nccl-options: (AG options, RS options) pairs, default first.
SWEEP_GRID = (
    (NcclOptions(), NcclOptions()),
    (NcclOptions(high_priority=True), NcclOptions()),
    (NcclOptions(), NcclOptions(high_priority=True)),
    (NcclOptions(high_priority=True), NcclOptions(high_priority=True)),
    (NcclOptions(max_ctas=8), NcclOptions(max_ctas=8)),
    (NcclOptions(max_ctas=16), NcclOptions(max_ctas=16)),
    (NcclOptions(max_ctas=8), NcclOptions(max_ctas=24)),
    (NcclOptions(min_ctas=16, max_ctas=32), NcclOptions(min_ctas=16, max_ctas=32)),
    (NcclOptions(cga_cluster_size=4), NcclOptions(cga_cluster_size=4)),
    (NcclOptions(cta_policy="efficiency"), NcclOptions(cta_policy="efficiency")),
    (NcclOptions(cta_policy="zero"), NcclOptions()),
    (NcclOptions(cta_policy="zero"), NcclOptions(cta_policy="efficiency")),
    (NcclOptions(registration="ub"), NcclOptions(registration="ub")),
    (NcclOptions(registration="symmetric"), NcclOptions(registration="symmetric")),
    (NcclOptions(registration="symmetric", cta_policy="zero"), NcclOptions(registration="symmetric")),
)
"""The lever rows: CTA policy efficiency on both roles; zero on the AG role alone (the AG NCCL can
move on copy engines), beside a default or an efficiency RS; registered user buffers and symmetric
windows on both roles; and zero with symmetric AG buffers, the one combination under which NCCL
runs the AG on copy engines (without symmetric buffers NCCL ignores zero: the trace says so)."""


def pair_label(ag: NcclOptions, rs: NcclOptions) -> str:
    return "default" if ag.is_default and rs.is_default else f"ag:{ag.label()}/rs:{rs.label()}"
