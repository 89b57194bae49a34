#!/usr/bin/env bash
# NCCL's levers on ONE GPU, in one call (a one-rank NCCL group; the rest needs 2+ GPUs and is
# step 6 of scripts/device_remeasure.sh):
#   1. the gpu tier of the levers (tests/gpu/test_measure_levers.py): every CTA policy makes a working
#      group or is refused in one line; ub and symmetric registration register, check and
#      deregister, or are refused; the low_contention style checks its outputs; a real trace
#      tells a copy-engine copy from a kernel (OUT/levers/levers.json, levers_trace.json: commit
#      the trace as tests/data/levers_trace.json for tests/pure/test_analysis_trace_kinds.py);
#   2. the raw torch paths, each in its own process, with their exact errors (OUT/probe/);
#   3. the SM-contention study: the step's GEMM beside a copy of a bucket's bytes by an SM kernel
#      of N CTAs or by the copy engine (OUT/sm-contention/study.json; the README table:
#      `python3 scripts/sm_contention_study.py --table OUT/sm-contention/study.json`).
# Usage, from the repository root, AGRS_BENCH_COMMIT=<sha> set when the tree has no .git:
#   scripts/device_levers_one_gpu.sh OUT_DIR
set -uo pipefail
out=${1:?usage: scripts/device_levers_one_gpu.sh OUT_DIR}
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1 CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
mkdir -p "$out/levers" "$out/probe" "$out/sm-contention"
status=0
AGRS_LEVERS_OUT="$out/levers" timeout 300 python3 -m pytest -q -m gpu tests/gpu/test_measure_levers.py \
  -p no:cacheprovider > "$out/levers/pytest.log" 2>&1 || status=1
echo "1. gpu tier of the levers: $(tail -1 "$out/levers/pytest.log")"
timeout 300 python3 scripts/probe_levers.py "$out/probe" > "$out/probe/probe.log" 2>&1 || status=1
echo "2. raw torch paths: $out/probe/probe.json"
timeout 600 python3 scripts/sm_contention_study.py "$out/sm-contention" --sizes 64MiB,256MiB --rounds 30 \
  > "$out/sm-contention/study.log" 2>&1 || status=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv >> "$out/sm-contention/study.log"
echo "3. SM-contention study: exit $status; $out/sm-contention/study.json"
exit "$status"
