#!/usr/bin/env bash
# Nightly perf gate: run the suite LAUNCHES times, write each launch's report, compare with the
# committed baseline for this card and GPU count (results/baselines/<card>-x<N>.json), write
# comparison.md and github-action-benchmark JSON, and exit like agrs_bench.compare does
# (0 pass, 1 regression, 2 bad input, 3 incomparable), or 4 when a launch itself failed (a crash
# must not read as a regression). No baseline yet: says how to adopt one, exits 0.
set -euo pipefail
export NCCL_NVLS_ENABLE=0  # NVLink multicast can take every GPU of a shared host out of service

usage() {
  echo "usage: scripts/nightly.sh [--out DIR] [--launches N] [--nproc N] [--threshold PCT] [--baselines DIR] [-- RUN_ARGS...]" >&2
  exit 2
}

out="results/nightly/$(date -u +%Y%m%dT%H%M%SZ)"
launches=3
nproc=""
threshold=5
baselines="results/baselines"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out|--launches|--nproc|--threshold|--baselines)
      [[ $# -ge 2 ]] || usage
      case "$1" in
        --out) out=$2 ;; --launches) launches=$2 ;; --nproc) nproc=$2 ;;
        --threshold) threshold=$2 ;; --baselines) baselines=$2 ;;
      esac
      shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[[ $launches =~ ^[1-9][0-9]*$ ]] || usage
if [[ -z $nproc ]]; then
  nproc=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
  [[ $nproc -ge 2 ]] || nproc=2
fi
[[ $nproc =~ ^[1-9][0-9]*$ ]] || usage

cd "$(dirname "$0")/.."
for i in $(seq 1 "$launches"); do
  python3 -m torch.distributed.run --standalone --nproc-per-node="$nproc" -m agrs_bench.run \
    --out "$out/head/launch-$i" "$@" \
    || { echo "nightly: launch $i failed (status $?); see $out/head/launch-$i" >&2; exit 4; }
done

baseline=$(python3 -m agrs_bench baseline "$out/head/launch-1" --dir "$baselines" --path-only)
if [[ ! -e $baseline ]]; then
  echo "nightly: no baseline $baseline for this card and GPU count; nothing gated." >&2
  echo "nightly: to adopt launch 1 as the baseline: python3 -m agrs_bench baseline $out/head/launch-1 --dir $baselines" >&2
  exit 0
fi

status=0
python3 -m agrs_bench.compare "$baseline" "$out/head" --out "$out/comparison" --threshold "$threshold" \
  --export-github-benchmark "$out/github-benchmark.json" || status=$?
if [[ -n ${GITHUB_STEP_SUMMARY:-} && -f $out/comparison/comparison.md ]]; then
  cat "$out/comparison/comparison.md" >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"
