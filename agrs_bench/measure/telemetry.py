"""GPU telemetry through NVML (nvidia-ml-py): identity, links, and per-cell clocks and throttling.

Everything here is optional: without nvidia-ml-py, a driver or a GPU, the functions return a
record that says telemetry is absent, never an error. NVML ignores CUDA_VISIBLE_DEVICES, so GPUs
are matched by UUID, taken from torch.
"""

from __future__ import annotations

import statistics
import threading
from typing import Any

# NVML clocks-event (throttle) reason bits (nvml.h, nvmlClocksEventReason*).
CLOCK_EVENT_BITS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting", 0x200: "board_limit",
    0x400: "reliability",
}
# Reasons that lower clocks under load; idle and settings-only reasons do not make a cell suspect.
THROTTLE_REASONS = {"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown",
                    "hw_power_brake_slowdown", "board_limit", "reliability"}
# nvmlDeviceGetNvLinkVersion returns an enum: 1=1.0, 2=2.0, 3=2.2, 4=3.0, 5=3.1, 6=4.0, 7=5.0.
NVLINK_VERSION_NAMES = {1: "1.0", 2: "2.0", 3: "2.2", 4: "3.0", 5: "3.1", 6: "4.0", 7: "5.0"}
# Per-direction bandwidth of one NVLink, GB/s, by that enum (2.x, 3.x and 4.0 run 25 GB/s a
# link: 18 links of NVLink 4 give an H100/H200 its 450 GB/s per direction; 5.0 doubles it).
NVLINK_GBPS_PER_LINK = {1: 20.0, 2: 25.0, 3: 25.0, 4: 25.0, 5: 25.0, 6: 25.0, 7: 50.0}


def decode_reasons(mask: int) -> list[str]:
    return [name for bit, name in CLOCK_EVENT_BITS.items() if mask & bit]


def _nvml():
    try:
        import pynvml
        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no package, no driver, no GPU: telemetry is simply absent
        return None


def _handle(nvml, torch_uuid: str | None):
    uuid = str(torch_uuid or "")
    return nvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def device_identity(torch_uuid: str | None) -> dict[str, Any]:
    """Name, UUID, driver, NVLink links and their version for the GPU with this UUID."""
    nvml = _nvml()
    if nvml is None or not torch_uuid:
        return {"nvml": False}
    try:
        handle = _handle(nvml, torch_uuid)
        links, version = 0, None
        for link in range(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18)):
            try:
                if nvml.nvmlDeviceGetNvLinkState(handle, link) != nvml.NVML_FEATURE_ENABLED:
                    continue
            except Exception:
                continue
            links += 1
            try:
                version = version or int(nvml.nvmlDeviceGetNvLinkVersion(handle, link))
            except Exception:
                pass
        info = {
            "nvml": True,
            "name": _text(nvml.nvmlDeviceGetName(handle)),
            "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
            "pci_bus_id": _text(nvml.nvmlDeviceGetPciInfo(handle).busId).lower(),
            "driver": _text(nvml.nvmlSystemGetDriverVersion()),
            "nvlink_links": links,
            "nvlink_version": NVLINK_VERSION_NAMES.get(version, version),
        }
        if links and version:
            info["link_gbps_per_direction"] = links * NVLINK_GBPS_PER_LINK.get(version, 25.0)
        return info
    except Exception as err:
        return {"nvml": False, "error": f"{type(err).__name__}: {err}"}


def topology(identities: list[dict[str, Any]]) -> dict[str, Any]:
    """How every pair of GPUs on this host is linked (NVLink or the PCIe path), asked of NVML.

    `identities` are the ranks' device_identity records; pairs are only formed between GPUs that
    NVML on this host can open, so on several hosts each host's own pairs appear.
    """
    nvml = _nvml()
    link_gbps = min((d["link_gbps_per_direction"] for d in identities if d.get("link_gbps_per_direction")),
                    default=None)
    if nvml is None:
        return {"nvml": False, "pairs": {}, "link_gbps_per_direction": link_gbps}
    levels = {getattr(nvml, f"NVML_TOPOLOGY_{name}", None): name for name in
              ("INTERNAL", "SINGLE", "MULTIPLE", "HOSTBRIDGE", "NODE", "SYSTEM")}
    handles = {}
    for rank, ident in enumerate(identities):
        try:
            handles[rank] = nvml.nvmlDeviceGetHandleByUUID(ident["uuid"])
        except Exception:
            continue
    pairs = {}
    ranks = sorted(handles)
    for i, a in enumerate(ranks):
        for b in ranks[i + 1:]:
            if identities[a].get("uuid") == identities[b].get("uuid"):
                continue
            try:
                nvlink = nvml.nvmlDeviceGetP2PStatus(handles[a], handles[b], nvml.NVML_P2P_CAPS_INDEX_NVLINK) \
                    == nvml.NVML_P2P_STATUS_OK
                if nvlink:
                    pairs[f"{a}-{b}"] = f"NVLink x{identities[a].get('nvlink_links')}"
                else:
                    level = nvml.nvmlDeviceGetTopologyCommonAncestor(handles[a], handles[b])
                    pairs[f"{a}-{b}"] = f"PCIe {levels.get(level, level)}"
            except Exception as err:
                pairs[f"{a}-{b}"] = f"unknown ({type(err).__name__})"
    return {"nvml": True, "pairs": pairs, "link_gbps_per_direction": link_gbps}


class GpuMonitor:
    """Reads SM clock, clock-event reasons, power and temperature in a thread while a cell runs
    (a monitor, not a Sampler: timing.Sampler is what produces samples of the collectives)."""

    def __init__(self, torch_uuid: str | None, period_s: float = 0.02) -> None:
        self.period_s = period_s
        self.nvml = _nvml() if torch_uuid else None
        self.handle = None
        if self.nvml is not None:
            try:
                self.handle = _handle(self.nvml, torch_uuid)
            except Exception:
                self.nvml = None
        self.samples: list[tuple[int, int, float, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> None:
        nvml, h = self.nvml, self.handle
        reasons_fn = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
            nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        self.samples.append((nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM), int(reasons_fn(h)),
                             nvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
                             nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)))

    def _loop(self) -> None:
        while True:
            try:
                self._read()
            except Exception:
                return
            if self._stop.wait(self.period_s):
                return

    def __enter__(self) -> GpuMonitor:
        if self.nvml is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="agrs-nvml")
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=2)
            try:
                self._read()  # at least one reading at the end of the cell
            except Exception:
                pass

    def summary(self) -> dict[str, Any]:
        return summarize_samples(self.samples) if self.nvml is not None else {"nvml": False}


def summarize_samples(samples: list[tuple[int, int, float, int]]) -> dict[str, Any]:
    """Pure: the per-cell telemetry record from raw (sm_mhz, reasons_mask, power_w, temp_c)."""
    if not samples:
        return {"nvml": True, "num_readings": 0}
    clocks = [s[0] for s in samples]
    mask = 0
    for s in samples:
        mask |= s[1]
    reasons = decode_reasons(mask)
    return {
        "nvml": True,
        "num_readings": len(samples),
        "sm_clock_mhz_min": min(clocks),
        "sm_clock_mhz_median": statistics.median(clocks),
        "clock_event_reasons": reasons,
        "throttled": bool(THROTTLE_REASONS.intersection(reasons)),
        "power_w_max": max(s[2] for s in samples),
        "temperature_c_max": max(s[3] for s in samples),
    }


def combine(per_rank: list[dict[str, Any]]) -> dict[str, Any]:
    """Pure: one cell record from every rank's: the worst clock, every reason, any throttling."""
    present = [r for r in per_rank if r.get("nvml") and r.get("num_readings")]
    if not present:
        return {"nvml": False}
    return {
        "nvml": True,
        "num_readings": sum(r["num_readings"] for r in present),
        "sm_clock_mhz_min": min(r["sm_clock_mhz_min"] for r in present),
        "sm_clock_mhz_median": statistics.median(r["sm_clock_mhz_median"] for r in present),
        "clock_event_reasons": sorted({x for r in present for x in r["clock_event_reasons"]}),
        "throttled": any(r["throttled"] for r in present),
        "throttled_ranks": [i for i, r in enumerate(per_rank) if r.get("throttled")],
        "power_w_max": max(r["power_w_max"] for r in present),
        "temperature_c_max": max(r["temperature_c_max"] for r in present),
    }


def throttle_warnings(record: dict[str, Any]) -> list[str]:
    """The cell's warning when a GPU's clocks were throttled while it ran (a `combine` record)."""
    if not record.get("throttled"):
        return []
    return [f"GPU clocks throttled during this cell (SM clock down to {record['sm_clock_mhz_min']} MHz; "
            + ", ".join(record["clock_event_reasons"]) + ")"]
