#!/usr/bin/env bash
# Baselines on a 4-GPU host: the overhead probe, then the full default sweep on 4 GPUs and on 2
# (CUDA_VISIBLE_DEVICES=0,1), each with its report. Usage: scripts/device_baselines.sh OUT_DIR
set -uo pipefail
out=${1:?usage: scripts/device_baselines.sh OUT_DIR}
# shellcheck source=scripts/device_env.sh
source "$(dirname "$0")/device_env.sh"
card=$(python3 -c "import torch; print(torch.cuda.get_device_name(0).split()[1].lower())")
mkdir -p "$out"
torchrun --standalone --nproc-per-node=4 scripts/probe_overhead.py 2>&1 | grep -v '^W\|\*\*\*' | tee "$out/probe-x4.log"
timeout 280 torchrun --standalone --nproc-per-node=4 -m agrs_bench.run --out "$out/$card-x4" 2>&1 \
  | grep -v '^W\|\*\*\*' > "$out/$card-x4.log"; tail -3 "$out/$card-x4.log"
CUDA_VISIBLE_DEVICES=0,1 timeout 200 torchrun --standalone --nproc-per-node=2 -m agrs_bench.run \
  --out "$out/$card-x2" 2>&1 | grep -v '^W\|\*\*\*' > "$out/$card-x2.log"; tail -3 "$out/$card-x2.log"
