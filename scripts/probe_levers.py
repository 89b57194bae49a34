"""Probe NCCL's overlap levers on one GPU, a process group of one rank: which CTA policies make a
working group, which buffer-registration paths register and deregister (or the exact error), whether
PyTorch's low-contention collectives run and give the right output, and a profiler trace of a
copy-engine copy, an SM-kernel copy and NCCL all-gathers under each setting (for the trace
classifier, analysis/trace_kinds.py).

Each probe runs in its own process (a failed registration can leave NCCL unusable): the driver
prints one JSON object per probe and writes them all to OUT/probe.json.

Usage: python3 scripts/probe_levers.py OUT_DIR [NAME,...] (driver: every probe, or those named)
       python3 scripts/probe_levers.py OUT_DIR --one NAME (one probe, used by the driver)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback

PROBES = ("versions", "cta_default", "cta_efficiency", "cta_zero", "ub_nccl_allocator",
          "ub_default_allocator", "symm_pool", "symm_default_pool", "symm_mem_nccl", "low_contention", "trace")
NUMEL = 1 << 20
OUT_DIR = [""]  # set by main: where the probes write their traces


def _init():
    import torch
    import torch.distributed as dist
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=torch.device("cuda", 0))
    return torch, dist


def _group(dist, policy: str | None):
    if policy is None:
        return dist.new_group([0])
    options = dist.ProcessGroupNCCL.Options()
    options.config.cta_policy = getattr(dist.ProcessGroupNCCL, f"NCCL_CTA_POLICY_{policy.upper()}")
    return dist.new_group([0], pg_options=options)


def _ag_ok(torch, dist, group, shard=None, full=None) -> bool:
    shard = shard if shard is not None else torch.arange(NUMEL, device="cuda", dtype=torch.float32)
    full = full if full is not None else torch.full_like(shard, float("nan"))
    full.fill_(float("nan"))
    dist.all_gather_into_tensor(full, shard, group=group)
    torch.cuda.synchronize()
    return bool(torch.equal(full, shard))


def probe_versions() -> dict:
    torch, dist = _init()
    pg = dist.ProcessGroupNCCL
    return {"torch": torch.__version__, "nccl": ".".join(map(str, torch.cuda.nccl.version())),
            "cuda": torch.version.cuda, "card": torch.cuda.get_device_name(0),
            "cta_policy_constants": [a for a in dir(pg) if a.startswith("NCCL_CTA_POLICY")],
            "config_has_cta_policy": hasattr(pg.Options().config, "cta_policy"),
            "config_fields": [a for a in dir(pg.Options().config) if not a.startswith("_")],
            "register_mem_pool_doc": (pg.register_mem_pool.__doc__ or "")[:400],
            "has_mem_allocator": hasattr(pg, "mem_allocator")}


def probe_cta(policy: str) -> dict:
    torch, dist = _init()
    group = _group(dist, policy)
    return {"policy": policy, "all_gather_correct": _ag_ok(torch, dist, group)}


def _registration(pool_allocator: bool, symm: bool) -> dict:
    torch, dist = _init()
    group = dist.new_group([0])
    backend = group._get_backend(torch.device("cuda", 0))
    steps = {}
    try:
        pool = torch.cuda.MemPool(backend.mem_allocator) if pool_allocator else torch.cuda.MemPool()
        steps["pool"] = "ok"
        with torch.cuda.use_mem_pool(pool):
            shard = torch.arange(NUMEL, device="cuda", dtype=torch.float32)
            full = torch.empty_like(shard)
        steps["alloc"] = "ok"
        if symm:
            backend.register_mem_pool(pool, symm=True)
        else:
            backend.register_mem_pool(pool)
        steps["register"] = "ok"
        steps["all_gather_correct"] = _ag_ok(torch, dist, group, shard, full)
        steps["trace"] = _trace_one(torch, lambda f=full, s=shard: dist.all_gather_into_tensor(f, s, group=group),
                                    "probe:registered_all_gather",
                                    f"probe_trace_reg_{int(pool_allocator)}{int(symm)}.json")
        backend.deregister_mem_pool(pool)
        steps["deregister"] = "ok"
        del shard, full
        del pool
        steps["pool_freed"] = "ok"
    except Exception as exc:  # the exact error is the finding
        steps["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return steps


def probe_symm_mem_nccl() -> dict:
    torch, dist = _init()
    import torch.distributed._symmetric_memory as symm_mem
    steps = {}
    try:
        symm_mem.set_backend("NCCL")
        steps["set_backend"] = "ok"
        shard = symm_mem.empty(NUMEL, dtype=torch.float32, device="cuda")
        full = symm_mem.empty(NUMEL, dtype=torch.float32, device="cuda")
        shard.copy_(torch.arange(NUMEL, device="cuda", dtype=torch.float32))
        steps["empty"] = "ok"
        group = dist.group.WORLD
        symm_mem.rendezvous(shard, group)
        symm_mem.rendezvous(full, group)
        steps["rendezvous"] = "ok"
        steps["all_gather_correct"] = _ag_ok(torch, dist, group, shard, full)
        steps["trace"] = _trace_one(torch, lambda: dist.all_gather_into_tensor(full, shard, group=group),
                                    "probe:symmetric_all_gather", "probe_trace_symm.json")
    except Exception as exc:
        steps["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return steps


def _trace_one(torch, op, label: str, file_name: str) -> str:
    from torch.profiler import ProfilerActivity, profile, record_function
    op()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with record_function(label):
            op()
            torch.cuda.synchronize()
    prof.export_chrome_trace(os.path.join(OUT_DIR[0], file_name))
    return file_name


def probe_low_contention() -> dict:
    torch, dist = _init()
    import torch.distributed._symmetric_memory as symm_mem
    steps = {}
    group = dist.group.WORLD
    name = group.group_name
    try:
        if hasattr(symm_mem, "enable_symm_mem_for_group"):
            symm_mem.enable_symm_mem_for_group(name)
        shard = torch.arange(NUMEL, device="cuda", dtype=torch.bfloat16) % 7
        full = torch.ops.symm_mem._low_contention_all_gather(shard, name)
        torch.ops._c10d_functional.wait_tensor(full)
        torch.cuda.synchronize()
        steps["all_gather_correct"] = bool(torch.equal(full, shard))
        grad = (torch.arange(NUMEL, device="cuda") % 2).to(torch.bfloat16)
        out = torch.ops.symm_mem._low_contention_reduce_scatter(grad, "sum", name)
        torch.ops._c10d_functional.wait_tensor(out)
        torch.cuda.synchronize()
        steps["reduce_scatter_correct"] = bool(torch.equal(out, grad))
        steps["trace"] = _trace_one(
            torch, lambda: torch.ops._c10d_functional.wait_tensor(
                torch.ops.symm_mem._low_contention_all_gather(shard, name)),
            "probe:low_contention_all_gather", "probe_trace_lc.json")
    except Exception as exc:
        steps["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        steps["where"] = traceback.format_exc().splitlines()[-3:]
    return steps


def probe_trace(out_dir: str) -> dict:
    """Profiler trace: CE copy, Triton SM copy, NCCL AG under each CTA policy, low-contention AG."""
    torch, dist = _init()
    from torch.profiler import ProfilerActivity, profile, record_function
    sys.path.insert(0, os.path.dirname(__file__))
    from sm_contention_study import sm_copy
    src = torch.randn(16 << 20, device="cuda")
    dst = torch.empty_like(src)
    groups = {p: _group(dist, None if p == "default" else p) for p in ("default", "efficiency", "zero")}
    shard = torch.arange(NUMEL, device="cuda", dtype=torch.float32)
    full = torch.empty_like(shard)
    for _ in range(2):  # warm up: Triton compiles, NCCL connects
        sm_copy(src, dst, 8)
        for group in groups.values():
            dist.all_gather_into_tensor(full, shard, group=group)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with record_function("probe:ce_copy"):
            dst.copy_(src)
            torch.cuda.synchronize()
        with record_function("probe:sm_copy_8"):
            sm_copy(src, dst, 8)
            torch.cuda.synchronize()
        for policy, group in groups.items():
            with record_function(f"probe:nccl_all_gather_{policy}"):
                dist.all_gather_into_tensor(full, shard, group=group)
                torch.cuda.synchronize()
    path = os.path.join(out_dir, "probe_trace.json")
    prof.export_chrome_trace(path)
    return {"trace": os.path.basename(path)}


def run_one(name: str, out_dir: str) -> dict:
    if name == "versions":
        return probe_versions()
    if name.startswith("cta_"):
        return probe_cta(name.removeprefix("cta_"))
    if name == "ub_nccl_allocator":
        return _registration(pool_allocator=True, symm=False)
    if name == "ub_default_allocator":
        return _registration(pool_allocator=False, symm=False)
    if name == "symm_pool":
        return _registration(pool_allocator=True, symm=True)
    if name == "symm_default_pool":
        return _registration(pool_allocator=False, symm=True)
    if name == "symm_mem_nccl":
        return probe_symm_mem_nccl()
    if name == "low_contention":
        return probe_low_contention()
    return probe_trace(out_dir)


def main() -> None:
    out_dir = sys.argv[1]
    OUT_DIR[0] = out_dir
    if "--one" in sys.argv:
        name = sys.argv[sys.argv.index("--one") + 1]
        try:
            found = run_one(name, out_dir)
        except Exception as exc:
            found = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        print("PROBE " + json.dumps(found), flush=True)
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()
        return
    os.makedirs(out_dir, exist_ok=True)
    everything = {}
    chosen = sys.argv[2].split(",") if len(sys.argv) > 2 else PROBES
    for name in chosen:
        try:
            done = subprocess.run([sys.executable, __file__, out_dir, "--one", name], capture_output=True,
                                  text=True, timeout=40)
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith("PROBE ")]
            found = json.loads(lines[-1][6:]) if lines else {"error": f"exit {done.returncode}",
                                                             "stderr": done.stderr.splitlines()[-5:]}
        except subprocess.TimeoutExpired:
            found = {"error": "timed out after 40 s"}
        everything[name] = found
        print(name, json.dumps(found), flush=True)
    with open(os.path.join(out_dir, "probe.json"), "w", encoding="utf-8") as fh:
        json.dump(everything, fh, indent=1)


if __name__ == "__main__":
    main()
