#!/usr/bin/env bash
# Megatron-FSDP's own step (`--modes mfsdp_step`, megatron-fsdp's fully_shard_model) beside our
# modelled step (`fsdp_step`, issued the way Megatron-FSDP issues) for a dense and a MoE preset,
# on as many GPUs as the host has (one GPU: a group of one rank, NCCL copying locally).
#   OUT/dense/  --model llama3-8b, LAYERS of its 32 layers
#   OUT/moe/    --model qwen3-30b-a3b, LAYERS of its 48 layers, dense and expert buffers
# Usage, from the repository root, with megatron-fsdp and einops importable (the carried wheels:
# pip install --no-deps --target /tmp/site .whl/megatron_fsdp-*.whl .whl/einops-*.whl) and
# AGRS_BENCH_COMMIT=<sha> set when the tree has no .git:
#   scripts/device_megatron_fsdp.sh OUT_DIR [LAYERS] [ITERS]     (defaults 2 and 10)
set -uo pipefail
out=${1:?usage: scripts/device_megatron_fsdp.sh OUT_DIR [LAYERS] [ITERS]}
layers=${2:-2}
iters=${3:-10}
# shellcheck source=scripts/device_env.sh
source "$(dirname "$0")/device_env.sh"
mkdir -p "$out"
gpus=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
[[ $gpus -ge 1 ]] || { echo "needs a GPU, found none" >&2; exit 2; }
status=0
run_one() {  # NAME ARGS...
  local name=$1
  shift
  timeout 900 python3 -m torch.distributed.run --standalone --nproc-per-node="$gpus" -m agrs_bench.run \
    --out "$out/$name" --modes mfsdp_step,fsdp_step --issue megatron_fsdp --layers "$layers" \
    --iters "$iters" --warmup 2 "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc" | tee -a "$out/summary.log"
  [[ $rc == 0 ]] || status=1
}
run_one dense --model llama3-8b --buffers dense --gemm 4096x4096x14336
run_one moe --model qwen3-30b-a3b --buffers dense,expert --gemm 4096x2048x6144
exit "$status"
