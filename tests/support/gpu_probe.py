"""`python -m tests.support.gpu_probe OUT_DIR`: the engine's CUDA path on ONE GPU, printed as one JSON line.

Runs in its own process (tests/gpu/test_measure_nccl.py starts it with a deadline) on a one-rank NCCL group:
CUDA events, the sleep-kernel hold, CUDA-graph replay, fsdp_step's three parts, and --trace on a
GEMM and a copy kernel on two role streams. It prints measurements; the test asserts relations.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys


def main(out_dir: str) -> dict:
    import torch
    import torch.distributed as dist

    from agrs_bench.analysis import measures
    from agrs_bench.measure import buffers as bufs
    from agrs_bench.measure import tracing
    from agrs_bench.measure.device import CudaHandle, Issued
    from agrs_bench.measure.step import VARIANTS, FsdpStepKernel, Gemm
    from agrs_bench.measure.timing import Part, Sampler, TimingPlan

    device = torch.device("cuda", 0)
    torch.cuda.set_device(device)
    dist.init_process_group("nccl", store=dist.FileStore(os.path.join(out_dir, "store"), 1), rank=0, world_size=1)
    dev = CudaHandle(device)
    gemm = Gemm.make(4096, 4096, 4096, torch.bfloat16, device)
    # A converting copy, so that it is a kernel (a same-type contiguous copy_ is a cudaMemcpy,
    # which the profiler files under gpu_memcpy, not kernel).
    src = torch.ones(64 << 20, dtype=torch.float32, device=device)  # 256 MiB
    dst = torch.empty(src.shape, dtype=torch.bfloat16, device=device)
    tiny_src, tiny_dst = torch.ones(1024, device=device), torch.empty(1024, device=device)

    def on(role, work):
        def iteration(pending):
            with dev.role(role):
                work()
            pending.append(Issued(None, None, role))
        return iteration

    def both(pending):
        on("compute", gemm)(pending)
        on("ag", lambda: dst.copy_(src))(pending)

    def serial(pending):
        on("compute", gemm)(pending)
        on("compute", lambda: dst.copy_(src))(pending)

    parts = [Part("gemm", dev, on("compute", gemm), ("compute",)),
             Part("copy", dev, on("ag", lambda: dst.copy_(src)), ("ag",)),
             Part("both", dev, both, ("compute", "ag")),
             Part("serial", dev, serial, ("compute",))]
    copy_kernel = re.compile("copy|elementwise", re.IGNORECASE)  # at::native direct_copy_kernel_cuda
    not_gemm = re.compile("copy|elementwise|spin|sleep", re.IGNORECASE)  # spin_kernel: the hold
    found: dict = {"sleep_cycles_per_s": dev.sleep_cycles_per_s()}
    for exec_mode in ("eager", "graph"):
        plan = TimingPlan(num_warmup=3, num_rounds=8, target_sample_s=2e-3, graph=exec_mode == "graph")
        sampler = Sampler(parts, plan)
        samples = sampler.run()
        medians = {p.name: statistics.median(samples.per_iter_s[p.name]) for p in parts}
        pair = measures.pair_figures(ag=samples.per_iter_s["copy"], rs=samples.per_iter_s["gemm"],
                                     ag_rs=samples.per_iter_s["both"]).extra_info()
        found[exec_mode] = {"medians": medians, "ops": samples.ops_per_sample,
                            "info": {p.name: samples.sample_figures(p.name).extra_info() for p in parts}, **pair}
        for part in ("both", "serial"):
            found[exec_mode][f"trace_{part}"] = tracing.overlap_info(
                sampler, part, f"{exec_mode}-{part}", out_dir, 0,
                a=lambda e: copy_kernel.search(e["name"]) is not None,
                b=lambda e: not_gemm.search(e["name"]) is None).extra_info()
    # Held against unheld, on a kernel far shorter than its launch: the hold hides the host.
    tiny = [Part("tiny", dev, on("compute", lambda: torch.add(tiny_src, 1.0, out=tiny_dst)), ("compute",))]
    held = Sampler(tiny, TimingPlan(num_warmup=3, num_rounds=8, target_sample_s=1e-3, ops_per_sample=200)).run()
    unheld = Sampler(tiny, TimingPlan(num_warmup=3, num_rounds=8, target_sample_s=1e-3, ops_per_sample=200,
                                      hide_launch=False)).run()
    found["tiny_held_s"] = statistics.median(held.per_iter_s["tiny"])
    found["tiny_unheld_s"] = statistics.median(unheld.per_iter_s["tiny"])
    found["tiny_estimate"] = held.estimate_s["tiny"]
    # fsdp_step's three parts on a one-rank group (its collectives are local copies).
    layers = [{"dense": bufs.make_buffer("dense", 16 << 20, torch.bfloat16, [0], device)} for _ in range(4)]
    groups = {"dense": (dist.group.WORLD, dist.group.WORLD)}
    kernels = {v: FsdpStepKernel(dev, layers, groups, gemm, variant=v) for v in VARIANTS}
    rounds = 6
    steps = Sampler([Part(v, dev, k, k.roles) for v, k in kernels.items()],
                    TimingPlan(num_warmup=2, num_rounds=rounds, target_sample_s=2e-3)).run()
    calls = rounds * steps.ops_per_sample
    found["step"] = {
        "medians": {v: statistics.median(steps.per_iter_s[v]) for v in VARIANTS},
        "compute_in_step_s": statistics.median(kernels["step"].compute_s(calls)),
        "compute_alone_s": statistics.median(kernels["compute_only"].compute_s(calls)),
        **measures.step_figures(step=steps.per_iter_s["step"], compute_only=steps.per_iter_s["compute_only"],
                                comm_only=steps.per_iter_s["comm_only"]).extra_info(),
    }
    return found


if __name__ == "__main__":
    print("GPU_PROBE " + json.dumps(main(sys.argv[1])), flush=True)
    sys.stdout.flush()
    os._exit(0)  # never wait on process-group teardown (see design.md)
