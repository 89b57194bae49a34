#!/usr/bin/env bash
# Re-measure on one multi-GPU host, in one call: the figures README quotes and nightly gates on.
#   1. the default sweep on N GPUs (and on 2 of them when N > 2), LAUNCHES launches each, kept as
#      the card's baseline: OUT/<card>-x<N>/launch-<k>/ (adopt with `agrs-bench baseline`);
#   2. megatron-core's own groups (the carried 0.19.2 wheel) beside ours, both issue styles, on
#      NCCL: OUT/<card>-x<N>-megatron/;
#   3. --trace on 2 GPUs: kernel-timeline overlap beside the timing-derived overlap of every
#      ag_rs cell: OUT/<card>-x2-trace/;
#   4. an A/A calibration of the gate at 1-4 MiB: two sets of LAUNCHES launches, interleaved,
#      compared: OUT/aa-1-4MiB/ (the gate must flag 0 cells);
#   5. the NCCL fault cases (a rank killed, a rank stopped) with their exit times:
#      scripts/device_verify.sh into OUT/faults/;
#   6. NCCL's levers: --sweep-nccl-options (its CTA-policy and registration rows beside the
#      default, sampled in the same rounds) on pg_collection with --trace, in ag_rs and the step:
#      OUT/<card>-x<N>-levers/; the low_contention style beside role_streams:
#      OUT/<card>-x<N>-low-contention/; then each lever setting on every source:
#      OUT/<card>-x<N>-lever-<setting>/ (dry run: the levers must be refused on gloo).
#   7. Megatron-FSDP's own step beside the modelled step (Megatron's issue path) for a dense and a
#      MoE preset on N GPUs (the carried megatron-fsdp and einops wheels):
#      scripts/device_megatron_fsdp.sh into OUT/<card>-x<N>-megatron-fsdp/.
# Usage, from the repository root, AGRS_BENCH_COMMIT=<sha> set when the tree has no .git:
#   scripts/device_remeasure.sh OUT_DIR [LAUNCHES]        (LAUNCHES default 3, at least 3)
# With AGRS_BENCH_DRY_RUN=1 it runs every step on 2 gloo ranks with tiny sizes (CPU only), so
# the script itself is checked where no GPU is. Exit 0 when every step did what it should.
set -uo pipefail
out=${1:?usage: scripts/device_remeasure.sh OUT_DIR [LAUNCHES]}
launches=${2:-3}
[[ $launches =~ ^[0-9]+$ && $launches -ge 3 ]] || { echo "LAUNCHES must be >= 3, got $launches" >&2; exit 2; }
# shellcheck source=scripts/device_env.sh
source "$(dirname "$0")/device_env.sh"
mkdir -p "$out"
summary="$out/summary.log"
status=0

if [[ ${AGRS_BENCH_DRY_RUN:-0} == 1 ]]; then
  gpus=2 card=cpu
  tiny=(--backend gloo --sizes 4KiB --iters 3 --warmup 1 --layers 2 --step-sizes 8KiB --gemm 16x16x16
        --sample-ms 0.5)
else
  gpus=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
  [[ $gpus -ge 2 ]] || { echo "needs at least 2 GPUs, found $gpus" | tee -a "$summary"; exit 2; }
  card=$(python3 -c "import torch; print(torch.cuda.get_device_name(0).split()[1].lower())")
  tiny=()
fi

launch() {  # NPROC RUN_DIR ARGS...: one launch; prints its exit status
  local nproc=$1 dir=$2
  shift 2
  local visible
  visible=$(seq -s, 0 $((nproc - 1)))
  CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES_OVERRIDE:-$visible} timeout 1800 \
    python3 -m torch.distributed.run --standalone --nproc-per-node="$nproc" -m agrs_bench.run \
    --out "$dir" "${tiny[@]}" "$@" > "$dir.log" 2>&1
  echo $?
}

say() { echo "$*" | tee -a "$summary"; }

# 1. Baselines: LAUNCHES launches per GPU count, one after another on the same host.
counts=("$gpus")
[[ $gpus -gt 2 ]] && counts+=(2)
for n in "${counts[@]}"; do
  for k in $(seq 1 "$launches"); do
    mkdir -p "$out/$card-x$n"
    rc=$(launch "$n" "$out/$card-x$n/launch-$k")
    say "1. $card-x$n launch $k: exit $rc"
    [[ $rc == 0 ]] || status=1
  done
done

# 2. megatron-core's own groups beside ours, on NCCL, both issue styles.
wheels=(.whl/megatron_core-*.whl)
if [[ -f ${wheels[0]} ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "${wheels[0]}" \
    && export PYTHONPATH="/tmp/site:$PWD"
fi
rc=$(launch "$gpus" "$out/$card-x$gpus-megatron" --modes ag,rs,ag_rs \
  --sources megatron_core,pg_collection,global_state,single_comm --issue role_streams,megatron_fsdp)
say "2. megatron_core beside ours on $gpus GPUs: exit $rc"
[[ $rc == 0 ]] || status=1

# 3. Overlap seen in the kernel timeline, on 2 GPUs.
rc=$(launch 2 "$out/$card-x2-trace" --modes ag,rs,ag_rs --trace)
say "3. --trace on 2 GPUs: exit $rc"
[[ $rc == 0 ]] || status=1

# 4. A/A at 1-4 MiB: two sets of launches of the same build, interleaved A B A B ...
mkdir -p "$out/aa-1-4MiB/a" "$out/aa-1-4MiB/b"
small=(--sizes "1MiB,2MiB,4MiB" --modes "ag,rs,ag_rs")
[[ ${AGRS_BENCH_DRY_RUN:-0} == 1 ]] && small=(--modes "ag,rs,ag_rs")
for k in $(seq 1 "$launches"); do
  for side in a b; do
    rc=$(launch "$gpus" "$out/aa-1-4MiB/$side/launch-$k" "${small[@]}")
    [[ $rc == 0 ]] || { say "4. A/A launch $side$k: exit $rc"; status=1; }
  done
done
python3 -m agrs_bench compare "$out/aa-1-4MiB/a" "$out/aa-1-4MiB/b" --out "$out/aa-1-4MiB/comparison" \
  > "$out/aa-1-4MiB/compare.log" 2>&1
rc=$?
say "4. A/A gate at 1-4 MiB: compare exit $rc; $(tail -1 "$out/aa-1-4MiB/compare.log")"
[[ $rc == 0 ]] || status=1

# 5. The NCCL fault cases (real GPUs only).
if [[ ${AGRS_BENCH_DRY_RUN:-0} != 1 ]]; then
  "$(dirname "$0")/device_verify.sh" "$out/faults" >> "$summary" 2>&1 || status=1
fi
# 6. NCCL's levers: paired against the default in the sweep, then on every source.
if [[ ${AGRS_BENCH_DRY_RUN:-0} == 1 ]]; then
  for lever in "--ag-nccl-options cta_policy=zero" "--rs-nccl-options registration=symmetric" "--issue low_contention"; do
    # shellcheck disable=SC2086  # the lever is a flag and its value
    python3 -m agrs_bench run --backend gloo $lever --out "$out/levers-refused" > "$out/levers-refused.log" 2>&1
    rc=$?
    say "6. $lever on gloo: exit $rc (must be 2, refused)"
    [[ $rc == 2 ]] || status=1
  done
else
  # shellcheck disable=SC2054  # commas separate the values of one flag
  L=(--sizes 16MiB,256MiB --step-sizes 16MiB,64MiB --modes ag,rs,ag_rs,fsdp_step --buffers dense,expert --trace)
  rc=$(launch "$gpus" "$out/$card-x$gpus-levers" "${L[@]}" --sources pg_collection --sweep-nccl-options)
  say "6. lever sweep on $gpus GPUs: exit $rc"
  [[ $rc == 0 ]] || status=1
  # torch's low-contention style: its own launch (one symmetric-memory backend per process)
  rc=$(launch "$gpus" "$out/$card-x$gpus-low-contention" --sizes 16MiB,256MiB --modes ag,rs,ag_rs \
    --buffers dense,expert --trace --sources single_comm,pg_collection --issue role_streams,low_contention)
  say "6. low_contention beside role_streams on $gpus GPUs: exit $rc"
  [[ $rc == 0 ]] || status=1
  for setting in cta_policy=efficiency registration=ub registration=symmetric \
                 cta_policy=zero,registration=symmetric; do
    rs=${setting/cta_policy=zero,/}  # zero on the AG role only: the RS keeps its SMs
    rc=$(launch "$gpus" "$out/$card-x$gpus-lever-${setting//[=,]/-}" "${L[@]}" \
      --sources single_comm,global_state,pg_collection --ag-nccl-options "$setting" --rs-nccl-options "$rs")
    say "6. lever $setting on every source, $gpus GPUs: exit $rc"
    [[ $rc == 0 ]] || status=1
  done
fi
# 7. Megatron-FSDP's own step beside the modelled one (real GPUs only: it needs CUDA).
if [[ ${AGRS_BENCH_DRY_RUN:-0} != 1 ]]; then
  fsdp_wheels=(.whl/megatron_fsdp-*.whl .whl/einops-*.whl)
  if [[ -f ${fsdp_wheels[0]} ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "${fsdp_wheels[@]}" \
      && export PYTHONPATH="/tmp/site:$PWD"
  fi
  "$(dirname "$0")/device_megatron_fsdp.sh" "$out/$card-x$gpus-megatron-fsdp" 4 20 >> "$summary" 2>&1
  rc=$?
  say "7. Megatron-FSDP's own step beside the modelled one on $gpus GPUs: exit $rc"
  [[ $rc == 0 ]] || status=1
fi
say "done: exit $status"
exit "$status"
