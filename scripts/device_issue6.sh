#!/usr/bin/env bash
# One GPU session of measurements beyond the baselines (run on a 4-GPU host):
#  precision at the anchors' sizes, the NCCL-options sweep with CUDA graphs on 4 and 2 GPUs,
#  graph-ordering variables, and more A/A launches plus a mild slowdown for the gate.
# Usage: scripts/device_issue6.sh OUT_DIR
set -uo pipefail
out=${1:?usage: scripts/device_issue6.sh OUT_DIR}
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
run() { local n=$1 name=$2; shift 2
  timeout 300 torchrun --standalone --nproc-per-node="$n" -m agrs_bench.run --out "$out/$name" "$@" 2>&1 \
    | grep -v '^W\|\*\*\*' > "$out/$name.log"; echo "$name: $(tail -1 "$out/$name.log")"; }
mkdir -p "$out"
P="--sizes 1MiB,8MiB,64MiB,512MiB --modes ag,rs --buffers dense --sources single_comm"
run 4 precision-x4 $P
run 4 precision-x4-launch-bound $P --launch-bound
CUDA_VISIBLE_DEVICES=0,1 run 2 precision-x2 $P
CUDA_VISIBLE_DEVICES=0,1 run 2 precision-x2-launch-bound $P --launch-bound
S="--sizes 1MiB,16MiB,256MiB --sweep-nccl-options --graph --iters 10"
run 4 sweep-x4 $S
CUDA_VISIBLE_DEVICES=0,1 run 2 sweep-x2 $S --buffers dense
O="--sizes 1MiB,64MiB --buffers dense --sources single_comm,pg_collection --modes ag,rs,ag_rs --graph"
export CUDA_VISIBLE_DEVICES=0,1
run 2 order-default $O
NCCL_GRAPH_STREAM_ORDERING=0 run 2 order-gso0 $O
NCCL_LAUNCH_ORDER_IMPLICIT=1 run 2 order-implicit1 $O
G="--sizes 8MiB,64MiB,256MiB --buffers dense --sources single_comm,pg_collection --modes ag,rs,ag_rs --no-reference"
for i in 5 6; do run 2 gate-A$i $G; NCCL_MAX_NCHANNELS=16 run 2 gate-C$i $G; done
NCCL_MAX_NCHANNELS=16 run 2 gate-C7 $G
