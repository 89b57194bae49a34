#!/usr/bin/env bash
# Commas inside the flag arrays below separate the values of one flag, not array elements:
# shellcheck disable=SC2054
# The studies beyond the baselines, in one GPU session on a 4-GPU host: precision at the
# nccl-tests reference sizes, the NCCL-options sweep with CUDA graphs on 4 and 2 GPUs, the
# graph-ordering variables, and A/A launches plus a mild slowdown for the gate calibration.
# OUT_DIR gets the layout of results/studies/ (precision/, nccl-options-sweep/, graph-ordering/,
# gate-calibration/), so a session's output can be reviewed and committed folder for folder.
# Usage: scripts/device_studies.sh OUT_DIR
set -uo pipefail
out=${1:?usage: scripts/device_studies.sh OUT_DIR}
# shellcheck source=scripts/device_env.sh
source "$(dirname "$0")/device_env.sh"
run() { local n=$1 name=$2; shift 2
  mkdir -p "$(dirname "$out/$name")"
  timeout 300 torchrun --standalone --nproc-per-node="$n" -m agrs_bench.run --out "$out/$name" "$@" 2>&1 \
    | grep -v '^W\|\*\*\*' > "$out/$name.log"; echo "$name: $(tail -1 "$out/$name.log")"; }
on2() { CUDA_VISIBLE_DEVICES=0,1 run 2 "$@"; }
P=(--sizes 1MiB,8MiB,64MiB,512MiB --modes ag,rs --buffers dense --sources single_comm)
run 4 precision/h200-x4 "${P[@]}"
run 4 precision/h200-x4-launch-bound "${P[@]}" --launch-bound
on2 precision/h200-x2 "${P[@]}"
on2 precision/h200-x2-launch-bound "${P[@]}" --launch-bound
S=(--sizes 1MiB,16MiB,256MiB --sweep-nccl-options --graph --iters 10)
run 4 nccl-options-sweep/h200-x4 "${S[@]}"
on2 nccl-options-sweep/h200-x2 "${S[@]}" --buffers dense
O=(--sizes 1MiB,64MiB --buffers dense --sources single_comm,pg_collection --modes ag,rs,ag_rs --graph)
on2 graph-ordering/default "${O[@]}"
NCCL_GRAPH_STREAM_ORDERING=0 on2 graph-ordering/graph-stream-ordering-0 "${O[@]}"
NCCL_LAUNCH_ORDER_IMPLICIT=1 on2 graph-ordering/launch-order-implicit-1 "${O[@]}"
G=(--sizes 8MiB,64MiB,256MiB --buffers dense --sources single_comm,pg_collection --modes ag,rs,ag_rs --no-reference)
for i in 5 6; do on2 "gate-calibration/A$i" "${G[@]}"; NCCL_MAX_NCHANNELS=16 on2 "gate-calibration/C$i" "${G[@]}"; done
NCCL_MAX_NCHANNELS=16 on2 gate-calibration/C7 "${G[@]}"
