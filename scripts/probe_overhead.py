"""Where does eager per-op time go at small sizes? torchrun --nproc-per-node=N scripts/probe_overhead.py

Times 1 MiB all-gathers, 20 back-to-back per event pair (median of 10), on the world group:
plain on the current stream; from a side stream with a stream context per op; after creating 12
more process groups; with an NVML sampling thread running. Prints per-op microseconds (max over
ranks) so the overhead of each ingredient of agrs_bench's loop is visible.
"""

import os
import statistics
import sys
import time

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from agrs_bench.measure.kernels import all_gather  # noqa: E402
from agrs_bench.measure.telemetry import GpuMonitor  # noqa: E402


def per_op_us(launch, ops=20, reps=10):
    for _ in range(5):
        launch()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(ops):
            launch()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / ops)
    t = torch.tensor([statistics.median(times)], device="cuda")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def host_us(launch, ops=200):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(ops):
        launch()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) * 1e6 / ops


def main():
    rank = int(os.environ["RANK"])
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl", device_id=torch.device("cuda", int(os.environ["LOCAL_RANK"])))
    n = dist.get_world_size()
    inp = torch.ones((1 << 20) // 2 // n, dtype=torch.bfloat16, device="cuda")
    out = torch.empty(inp.numel() * n, dtype=torch.bfloat16, device="cuda")
    side = torch.cuda.Stream()
    plain = lambda g=None: all_gather(out, inp, group=g)  # noqa: E731

    def on_side(g=None):
        with torch.cuda.stream(side):
            all_gather(out, inp, group=g)

    rows = [("plain, world group", per_op_us(plain), host_us(plain))]
    side.wait_stream(torch.cuda.current_stream())
    rows.append(("stream context per op", per_op_us(on_side), host_us(on_side)))
    groups = [dist.new_group(list(range(n))) for _ in range(12)]
    rows.append(("plain, after 12 more groups", per_op_us(plain), host_us(plain)))
    g = groups[-1]
    rows.append(("plain, on a new group", per_op_us(lambda: plain(g)), host_us(lambda: plain(g))))
    uuid = str(torch.cuda.get_device_properties(torch.cuda.current_device()).uuid)
    with GpuMonitor(uuid):
        rows.append(("plain, NVML thread running", per_op_us(plain), host_us(plain)))
    if rank == 0:
        print(f"torch {torch.__version__} world {n} 1 MiB all-gather")
        for name, dev_us, cpu_us in rows:
            print(f"  {name:<32} {dev_us:7.1f} us/op on device   {cpu_us:7.1f} us/op host issue")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
