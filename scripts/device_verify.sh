#!/usr/bin/env bash
# Commas inside the flag array below separate the values of one flag, not array elements:
# shellcheck disable=SC2054
# Faults and GPU tests on real NCCL (2 GPUs): the gpu test tier; a rank SIGKILLed mid-run, then
# --resume; a rank SIGSTOPped mid-run (timeout fires, flight recorder dumps). Usage: OUT_DIR
set -uo pipefail
out=${1:?usage: scripts/device_verify.sh OUT_DIR}
# shellcheck source=scripts/device_env.sh
source "$(dirname "$0")/device_env.sh"
export CUDA_VISIBLE_DEVICES=0,1
mkdir -p "$out"
timeout 300 python3 -m pytest -q -m gpu tests/gpu/test_measure_nccl.py 2>&1 | tail -4 | tee "$out/gpu-tests.log"
F=(--sizes 1MiB,64MiB --buffers dense --modes ag,rs,ag_rs --iters 5 --timeout 30)
t0=$(date +%s)
AGRS_BENCH_TEST_SIGNAL=KILL@1:5 timeout 200 torchrun --standalone --nproc-per-node=2 -m tests.support.fault_entry \
  --out "$out/kill" "${F[@]}" > "$out/kill.log" 2>&1; rc=$?
echo "kill: exit $rc after $(( $(date +%s) - t0 )) s; cells.jsonl lines: $(wc -l < "$out/kill/cells.jsonl")" | tee -a "$out/summary.log"
grep -h "agrs_bench" "$out/kill.log" | tail -3
timeout 200 torchrun --standalone --nproc-per-node=2 -m agrs_bench.run --resume "$out/kill" "${F[@]}" > "$out/resume.log" 2>&1
echo "resume: exit $? complete=$(python3 -c "import json;print(json.load(open('$out/kill/results.json'))['agrs_bench']['complete'])")" | tee -a "$out/summary.log"
t0=$(date +%s)
AGRS_BENCH_TEST_SIGNAL=STOP@1:5 timeout 200 torchrun --standalone --nproc-per-node=2 -m tests.support.fault_entry \
  --out "$out/stop" "${F[@]}" --timeout 20 > "$out/stop.log" 2>&1; rc=$?
echo "stop: exit $rc after $(( $(date +%s) - t0 )) s; flight recorder files: $(find "$out/stop/flight_recorder" -type f 2>/dev/null | wc -l)" | tee -a "$out/summary.log"
grep -h "agrs_bench\|watchdog\|timed out\|Timeout" "$out/stop.log" | head -5
pgrep -f agrs_bench.run && echo "LEFTOVER PROCESSES" | tee -a "$out/summary.log"
