"""What one GPU can show about SM contention: the slowdown of the FSDP step's GEMM beside a copy of
a bucket's bytes done by an SM kernel of N CTAs (a Triton grid-stride copy, one program per CTA)
or by the copy engine (`Tensor.copy_` between two device buffers: cudaMemcpyAsync device-to-device,
checked in the trace to be a Memcpy DtoD and not a kernel).

Each layer: the GEMM on the compute stream and the copy on a copy stream start together (the copy
stream waits for an event of the compute stream), then the compute stream waits for the copy (the
next layer starts after both). Parts, sampled in interleaved rounds (rotated order, agrs_bench's
paired rounds): `gemm_alone`, `copy_alone:<copier>` and `gemm+copy:<copier>` for every copier.
Per part and round, the mean over `layers` layers of the GEMM's time, the copy's time and the
layer's makespan (device events). Figures (paired bootstrap intervals, analysis.paired):
GEMM slowdown = GEMM beside copy / GEMM alone; copy slowdown = copy beside GEMM / copy alone;
exposed copy = makespan - GEMM alone.

Usage: python3 scripts/sm_contention_study.py OUT_DIR [--sizes 64MiB,256MiB]
       [--ctas 1,2,4,8,16,32,64,132] [--rounds 30] [--layers 4] [--gemm 8192,8192,3072]
       python3 scripts/sm_contention_study.py --table OUT_DIR/study.json   (the README's table)
Writes OUT_DIR/study.json (settings, samples, figures) and OUT_DIR/study_trace.json (one layer
of each copier beside the GEMM, profiler Chrome trace).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from agrs_bench.analysis.paired import paired_interval, rotation
from agrs_bench.vocab import size_label

COPY_BLOCK = 8192
"""int32 elements one CTA moves per loop iteration (32 KiB)."""
COPY_WARPS = 16
"""512 threads per CTA, as NCCL's kernels use."""


_KERNEL: list = []


def _grid_stride_copy():
    """The Triton copy kernel, compiled on first use (Triton is needed on the GPU host only)."""
    if not _KERNEL:
        import triton
        import triton.language as tl

        @triton.jit
        def grid_stride_copy(src, dst, numel, BLOCK: tl.constexpr):
            start = tl.program_id(0) * BLOCK
            step = tl.num_programs(0) * BLOCK
            for offset in range(start, numel, step):
                index = offset + tl.arange(0, BLOCK)
                mask = index < numel
                tl.store(dst + index, tl.load(src + index, mask=mask), mask=mask)

        _KERNEL.append(grid_stride_copy)
    return _KERNEL[0]


def sm_copy(src: torch.Tensor, dst: torch.Tensor, num_ctas: int) -> None:
    """Copy src to dst with exactly `num_ctas` CTAs (each loops over the buffer in strides)."""
    src32, dst32 = src.view(torch.int32), dst.view(torch.int32)
    _grid_stride_copy()[(num_ctas,)](src32, dst32, src32.numel(), BLOCK=COPY_BLOCK, num_warps=COPY_WARPS)


def parse_size(text: str) -> int:
    units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
    for unit, scale in units.items():
        if text.endswith(unit):
            return int(text[:-len(unit)]) * scale
    return int(text)


class Layer:
    """One layer's work: GEMM on `compute`, a copy on `copier_stream`, events around each."""

    def __init__(self, gemm, copy, compute, copy_stream):
        self.gemm, self.copy, self.compute, self.copy_stream = gemm, copy, compute, copy_stream

    def run(self, spans: dict[str, list]) -> None:
        ev = {k: torch.cuda.Event(enable_timing=True) for k in ("start", "gemm0", "gemm1", "copy0", "copy1", "end")}
        with torch.cuda.stream(self.compute):
            ev["start"].record()
            if self.copy is not None:
                self.copy_stream.wait_stream(self.compute)
                with torch.cuda.stream(self.copy_stream):
                    ev["copy0"].record()
                    self.copy()
                    ev["copy1"].record()
            if self.gemm is not None:
                ev["gemm0"].record()
                self.gemm()
                ev["gemm1"].record()
            if self.copy is not None:
                self.compute.wait_stream(self.copy_stream)
            ev["end"].record()
        spans["events"].append((ev, self.gemm is not None, self.copy is not None))


def read_spans(events: list) -> dict[str, float]:
    """Mean per layer, in seconds, of the GEMM, the copy and the makespan."""
    gemm, copy, make = [], [], []
    for ev, has_gemm, has_copy in events:
        make.append(ev["start"].elapsed_time(ev["end"]) / 1e3)
        if has_gemm:
            gemm.append(ev["gemm0"].elapsed_time(ev["gemm1"]) / 1e3)
        if has_copy:
            copy.append(ev["copy0"].elapsed_time(ev["copy1"]) / 1e3)
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {"gemm_s": mean(gemm), "copy_s": mean(copy), "makespan_s": mean(make)}


def study_size(size_bytes: int, ctas: list[int], args, gemm) -> dict:
    numel = size_bytes // 4
    src = torch.randn(numel, device="cuda")
    dst = torch.empty_like(src)
    compute = torch.cuda.Stream()
    copy_stream = torch.cuda.Stream()  # same priority as the compute stream, as NCCL's default
    copiers = {"ce": lambda: dst.copy_(src)}
    for n in ctas:
        copiers[f"sm{n}"] = lambda n=n: sm_copy(src, dst, n)
    parts = {"gemm_alone": Layer(gemm, None, compute, copy_stream)}
    for name, fn in copiers.items():
        parts[f"copy_alone:{name}"] = Layer(None, fn, compute, copy_stream)
        parts[f"gemm+copy:{name}"] = Layer(gemm, fn, compute, copy_stream)
    names = list(parts)
    for name in names:  # warm-up: Triton compiles every grid, cuBLAS picks its kernel
        for _ in range(2):
            parts[name].run({"events": []})
    torch.cuda.synchronize()
    samples: dict[str, list[dict]] = {name: [] for name in names}
    for round_index in range(args.rounds):
        for i in rotation(len(names), round_index):
            spans = {"events": []}
            for _ in range(args.layers):
                parts[names[i]].run(spans)
            torch.cuda.synchronize()
            samples[names[i]].append(read_spans(spans["events"]))
    assert torch.equal(dst, src), "the copies wrote wrong data"
    return {"size_bytes": size_bytes, "samples": samples, "figures": figures(samples, list(copiers))}


def figures(samples: dict[str, list[dict]], copiers: list[str]) -> dict[str, dict]:
    """Per copier: GEMM slowdown, copy slowdown, exposed copy time, with paired intervals."""
    alone = [s["gemm_s"] for s in samples["gemm_alone"]]
    out = {}
    for name in copiers:
        both = samples[f"gemm+copy:{name}"]
        copy_alone = [s["copy_s"] for s in samples[f"copy_alone:{name}"]]
        series = {"alone": alone, "gemm": [s["gemm_s"] for s in both], "copy": [s["copy_s"] for s in both],
                  "make": [s["makespan_s"] for s in both], "copy_alone": copy_alone}
        row = {}
        for key, stat in (("gemm_slowdown", lambda m: m["gemm"] / m["alone"]),
                          ("copy_slowdown", lambda m: m["copy"] / m["copy_alone"]),
                          ("exposed_copy_s", lambda m: m["make"] - m["alone"]),
                          ("copy_alone_s", lambda m: m["copy_alone"]),
                          ("gemm_alone_s", lambda m: m["alone"])):
            interval = paired_interval(series, stat)
            row[key] = None if interval is None else {"point": interval.point, "ci": interval.bounds()}
        out[name] = row
    return out


def trace_layers(size_bytes: int, ctas: list[int], gemm, path: str) -> None:
    """One layer of each copier beside the GEMM, in a profiler trace."""
    from torch.profiler import ProfilerActivity, profile, record_function
    src = torch.randn(size_bytes // 4, device="cuda")
    dst = torch.empty_like(src)
    compute, copy_stream = torch.cuda.Stream(), torch.cuda.Stream()
    copiers = {"ce": lambda: dst.copy_(src), **{f"sm{n}": (lambda n=n: sm_copy(src, dst, n)) for n in ctas}}
    for fn in copiers.values():
        Layer(gemm, fn, compute, copy_stream).run({"events": []})
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for name, fn in copiers.items():
            with record_function(f"study:gemm+copy:{name}"):
                Layer(gemm, fn, compute, copy_stream).run({"events": []})
                torch.cuda.synchronize()
    prof.export_chrome_trace(path)


def table(record: dict) -> str:
    """study.json as a markdown table (the README's)."""
    lines = ["| copy bytes | copier | GEMM slowdown [95%] | copy alone µs [95%] | copy slowdown beside GEMM [95%] "
             "| exposed copy µs [95%] |", "| --- | --- | --- | --- | --- | --- |"]

    def cell(found, scale=1.0, spec=".3f"):
        if not found:
            return "-"
        low, high = found["ci"]
        return f"{found['point'] * scale:{spec}} [{low * scale:{spec}}, {high * scale:{spec}}]"

    for size in record["sizes"]:
        for name, row in size["figures"].items():
            copier = "copy engine (cudaMemcpyAsync DtoD)" if name == "ce" else f"SM kernel, {name[2:]} CTAs"
            lines.append(f"| {size_label(size['size_bytes'])} | {copier} | {cell(row['gemm_slowdown'])} "
                         f"| {cell(row['copy_alone_s'], 1e6, '.1f')} | {cell(row['copy_slowdown'], spec='.2f')} "
                         f"| {cell(row['exposed_copy_s'], 1e6, '.1f')} |")
    gemm = record["sizes"][0]["figures"]["ce"]["gemm_alone_s"]
    lines.append("")
    lines.append(f"GEMM {'x'.join(map(str, record['gemm_mnk']))} bf16 alone: {cell(gemm, 1e6, '.1f')} µs.")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        with open(sys.argv[2], encoding="utf-8") as fh:
            print(table(json.load(fh)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--sizes", default="64MiB,256MiB")
    parser.add_argument("--ctas", default="1,2,4,8,16,32,64,132")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--gemm", default="8192,8192,3072", help="M,N,K of the step's GEMM (bf16)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("sm_contention_study: needs a CUDA GPU; none is visible")
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    ctas = [min(int(n), sms) for n in args.ctas.split(",")]
    m, n, k = (int(x) for x in args.gemm.split(","))
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(m, k, generator=gen).to("cuda", torch.bfloat16)
    b = torch.randn(k, n, generator=gen).to("cuda", torch.bfloat16)
    out = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
    gemm = lambda: torch.mm(a, b, out=out)  # noqa: E731
    os.makedirs(args.out_dir, exist_ok=True)
    trace_layers(sizes[0], [ctas[0], ctas[-1]], gemm, os.path.join(args.out_dir, "study_trace.json"))
    results = []
    for size in sizes:
        found = study_size(size, ctas, args, gemm)
        results.append(found)
        for name, row in found["figures"].items():
            g, c, e = row["gemm_slowdown"], row["copy_alone_s"], row["exposed_copy_s"]
            print(f"{size_label(size):>7} {name:>6}: GEMM slowdown {g['point']:.3f} "
                  f"[{g['ci'][0]:.3f}, {g['ci'][1]:.3f}]"
                  f"  copy alone {c['point'] * 1e6:8.1f} us  exposed {e['point'] * 1e6:8.1f} us", flush=True)
    record = {"card": torch.cuda.get_device_name(0), "sms": sms, "gpu_count": 1, "torch": torch.__version__,
              "triton": __import__("triton").__version__, "commit": os.environ.get("AGRS_BENCH_COMMIT", "unknown"),
              "argv": sys.argv[1:], "gemm_mnk": [m, n, k], "ctas": ctas, "rounds": args.rounds,
              "layers": args.layers, "copy_block_int32": COPY_BLOCK, "copy_warps": COPY_WARPS, "sizes": results}
    with open(os.path.join(args.out_dir, "study.json"), "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1)


if __name__ == "__main__":
    main()
