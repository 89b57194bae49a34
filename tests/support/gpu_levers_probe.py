"""`python -m tests.support.gpu_levers_probe OUT_DIR`: NCCL's levers through agrs_bench's own code on ONE
GPU (a one-rank NCCL group), printed as one JSON line; tests/gpu/test_measure_levers.py asserts on it.

- every CTA policy: a group made from NcclOptions(cta_policy=...) all-gathers correctly, or the
  build refuses it in one line (config.nccl_options.support_problem);
- every registration kind: measure.registration.registered() registers the AG and RS buffers,
  AG and RS give the right outputs, and it deregisters; or its one-line refusal;
- the low_contention issue style runs ag_rs and its outputs check;
- a profiler trace of a copy-engine copy, an SM kernel copy and NCCL all-gathers under the levers,
  read by analysis.trace_kinds (OUT_DIR/levers_trace.json, trimmed to device events).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack

SIZE_BYTES = 1 << 20


def _trimmed(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    keep = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_user_annotation", "user_annotation")]
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"traceEvents": keep}, fh)
    return keep


def main(out_dir: str) -> dict:
    import torch
    import torch.distributed as dist
    from torch.profiler import ProfilerActivity, profile, record_function

    from agrs_bench.analysis import trace_kinds
    from agrs_bench.config.nccl_options import CTA_POLICIES, NcclOptions, support_problem
    from agrs_bench.errors import ConfigError
    from agrs_bench.measure import buffers as bufs
    from agrs_bench.measure.cell_levers import build
    from agrs_bench.measure.device import CudaHandle
    from agrs_bench.measure.low_contention import LowContentionKernel
    from agrs_bench.measure.registration import registered

    device = torch.device("cuda", 0)
    torch.cuda.set_device(device)
    dist.init_process_group("nccl", store=dist.FileStore(os.path.join(out_dir, "store"), 1), rank=0,
                            world_size=1, device_id=device)
    found: dict = {"build": build(), "card": torch.cuda.get_device_name(0)}

    def fresh():
        buf = bufs.make_buffer("dense", SIZE_BYTES, torch.bfloat16, [0], device)
        return buf

    def check(buf) -> list[str]:
        wrong = []
        if bufs.first_mismatch(buf.param_full, bufs.expected_ag(buf, 3)):
            wrong.append("AG")
        if bufs.first_mismatch(buf.grad_shard, bufs.expected_rs(buf, 0, 3)):
            wrong.append("RS")
        return wrong

    def nccl_ag_rs(buf, group):
        dist.all_gather_into_tensor(buf.param_full, buf.param_shard, group=group)
        dist.reduce_scatter_tensor(buf.grad_shard, buf.grad_full, group=group)

    groups = {}
    for policy in CTA_POLICIES:
        problem = support_problem([NcclOptions(cta_policy=policy)])
        if problem:
            found[f"cta_{policy}"] = {"refused": problem}
            continue
        group = dist.new_group([0], pg_options=NcclOptions(cta_policy=policy).to_process_group_options())
        groups[policy] = group
        buf = fresh()
        bufs.fill_for_check(buf, 0, 3)
        nccl_ag_rs(buf, group)
        torch.cuda.synchronize()
        found[f"cta_{policy}"] = {"wrong": check(buf)}
    plain = dist.new_group([0])
    groups.setdefault("default", plain)

    traced = []  # (label, callable) run inside the profiler
    try:
        buf = fresh()
        kernel = LowContentionKernel(CudaHandle(device), "ag_rs", buf, plain, plain)
        bufs.fill_for_check(buf, 0, 3)
        kernel.dev.fork(kernel.roles)
        pending: list = []
        kernel(pending)
        kernel.dev.join(pending)
        torch.cuda.synchronize()
        found["low_contention"] = {"wrong": check(buf)}
        traced.append(("levers:low_contention", lambda k=kernel: k([])))  # before symmetric windows:
        # torch allows one symmetric-memory backend per process, and this style's is CUDA
    except Exception as err:  # the finding is the error
        found["low_contention"] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}

    held = ExitStack()
    for kind in ("ub", "symmetric"):
        buf = fresh()
        group = groups.get("zero", plain) if kind == "symmetric" else plain
        try:
            paths = held.enter_context(registered(buf, {"ag": kind, "rs": kind}, [group], device, build()))
        except ConfigError as err:
            found[f"registration_{kind}"] = {"refused": str(err)}
            continue
        bufs.fill_for_check(buf, 0, 3)
        nccl_ag_rs(buf, group)
        torch.cuda.synchronize()
        found[f"registration_{kind}"] = {"paths": paths, "wrong": check(buf)}
        traced.append((f"levers:registered_{kind}", lambda b=buf, g=group: nccl_ag_rs(b, g)))

    src = torch.randn(8 << 20, device=device)
    dst = torch.empty_like(src)
    traced += [("levers:ce_copy", lambda: dst.copy_(src)),
               ("levers:sm_copy", lambda: torch.add(src, 0, out=dst))]
    for policy, group in groups.items():
        buf = fresh()
        traced.append((f"levers:nccl_{policy}", lambda b=buf, g=group: nccl_ag_rs(b, g)))
    for _, op in traced:  # warm up outside the trace
        op()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for label, op in traced:
            with record_function(label):
                op()
                torch.cuda.synchronize()
    path = os.path.join(out_dir, "levers_trace.json")
    prof.export_chrome_trace(path)
    events = _trimmed(path)
    found["trace"] = {label: trace_kinds.summarize(events, trace_kinds_window(events, label))
                      for label, _ in traced}
    held.close()
    found["deregistered"] = True
    return found


def trace_kinds_window(events: list[dict], label: str) -> tuple[float, float] | None:
    """The device-side window of a record_function range (gpu_user_annotation), else the host's."""
    for category in ("gpu_user_annotation", "user_annotation"):
        for e in events:
            if e.get("cat") == category and e.get("name") == label:
                return float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0))
    return None


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    result = main(out)
    print("LEVERS " + json.dumps(result), flush=True)
    import torch.distributed as dist
    dist.destroy_process_group()
