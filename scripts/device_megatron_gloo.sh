#!/usr/bin/env bash
# Issue 10 on the GPU host, on its CPU cores: megatron-core 0.19.2 (the carried wheel, Python 3.12)
# builds the groups of `--sources megatron_core` for 8 gloo ranks.
#   1. world 8, pp 2, order tp-cp-ep-pp-dp: 0.19.2's create_all_gather_groups builds AG groups on
#      other ranks than the DP groups (NVIDIA/Megatron-LM#4261): expect every rank to exit 5
#      (torchrun: 1, naming exitcode 5), megatron_core not timed, the other sources timed.
#   2. the default order: expect exit 0 with megatron_core timed.
#   3. the default order in both issue styles (informational: gloo under torch 2.11).
# Usage, from the repository root, with .whl/ carried: scripts/device_megatron_gloo.sh [OUT_DIR]
# (default $OUT). Needs no network. Exit 0 when runs 1 and 2 did what they should.
set -uo pipefail
out=${1:-${OUT:?usage: scripts/device_megatron_gloo.sh OUT_DIR (or set OUT)}}
mkdir -p "$out"
summary="$out/summary.log"

wheels=(.whl/megatron_core-0.19.2-*.whl)
if [[ ! -f ${wheels[0]} ]]; then
  echo "no .whl/megatron_core-0.19.2-*.whl: carry .whl to this machine" | tee -a "$summary"
  exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "${wheels[0]}" || exit 2
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 NCCL_NVLS_ENABLE=0
python3 -c "import sys, torch, megatron.core.parallel_state as ps; from megatron.core.package_info import __version__ as v; print('python', sys.version.split()[0], 'torch', torch.__version__, 'megatron-core', v, 'create_all_gather_groups:', hasattr(ps, 'create_all_gather_groups'))" 2>&1 \
  | grep -v -i warn | tee -a "$summary"

# gloo on the CPU cores: --backend gloo where the run has it, else hide the GPUs.
backend=()
if python3 -m agrs_bench.run --help 2>/dev/null | grep -q -- '--backend'; then
  backend=(--backend gloo)
else
  export CUDA_VISIBLE_DEVICES=""
fi
common=(--sizes "16KiB,256KiB" --iters 3 --warmup 1 --modes "ag,rs,ag_rs,fsdp_step" --layers 2
        --step-sizes 16KiB --gemm 64x64x64 --sample-ms 0.5 --timeout 120
        --sources "megatron_core,pg_collection,global_state,single_comm" "${backend[@]}")

run() {  # NAME ARGS...: one 8-rank run into $out/NAME; prints its exit status
  local name=$1
  shift
  timeout 900 python3 -m torch.distributed.run --standalone --nproc-per-node=8 -m agrs_bench.run \
    --out "$out/$name" "${common[@]}" "$@" > "$out/$name.log" 2>&1
  echo $?
}

mismatch() {  # RUN_DIR: the megatron_mismatch entries of its results.json, one a line
  python3 - "$1" <<'EOF'
import json, sys
try:
    meta = json.load(open(f"{sys.argv[1]}/results.json"))["agrs_bench"]
except (OSError, ValueError, KeyError):
    sys.exit("no results.json")
print("megatron_core:", meta.get("megatron_core"), "complete:", meta.get("complete"))
for f in meta.get("megatron_mismatch") or []:
    print(f"  rank {f['rank']} {f['buffer']}: rs {f['rs_ranks']} ag {f['ag_ranks']} ({f['layout']})")
EOF
}

status=0
rc=$(run pp-last-not-default --pp 2 --ep 1 --order tp-cp-ep-pp-dp)
found=$(mismatch "$out/pp-last-not-default")
echo "1. world 8, pp 2, order tp-cp-ep-pp-dp: torchrun exit $rc; $found" | tee -a "$summary"
if grep -q "exitcode *: 5" "$out/pp-last-not-default.log" && grep -q "rank 0 dense" <<< "$found"; then
  echo "   as expected: the mismatch was found, megatron_core not timed, ranks exited 5" | tee -a "$summary"
else
  echo "   UNEXPECTED (log: $out/pp-last-not-default.log)" | tee -a "$summary"
  status=1
fi

rc=$(run default-order)
echo "2. world 8, default order (ep 2): exit $rc; $(mismatch "$out/default-order")" | tee -a "$summary"
[[ $rc == 0 ]] || { echo "   UNEXPECTED (log: $out/default-order.log)" | tee -a "$summary"; status=1; }

rc=$(run issue-styles --modes "ag,rs,ag_rs" --issue "role_streams,megatron_fsdp")
echo "3. default order, both issue styles: exit $rc (informational)" | tee -a "$summary"

exit "$status"
