#!/usr/bin/env bash
# Nightly perf gate: run the suite LAUNCHES times (default 3), write each launch's report, compare
# with every launch of the committed baseline for this card and GPU count
# (results/<card>-x<N>/baseline/launch-<k>/), write comparison.md and github-action-benchmark JSON
# (the JSON every night, baseline or not, so the dashboard's history starts on the first night),
# and exit like agrs_bench.compare does (0 pass, 1 regression, 2 bad input, 3 incomparable), or 4
# when a launch itself failed (a crash must not read as a regression). No baseline yet: says how
# to adopt this night's launches as one, exits 0. AGRS_BENCH_COMMIT names the code in every
# result when the checkout has no .git (set from git here when it has).
set -euo pipefail
export NCCL_NVLS_ENABLE=0  # NVLink multicast can take every GPU of a shared host out of service

usage() {
  echo "usage: scripts/nightly.sh [--out DIR] [--launches N] [--nproc N] [--threshold PCT] [--baselines ROOT] [-- RUN_ARGS...]" >&2
  exit 2
}

out="results/nightly/$(date -u +%Y%m%dT%H%M%SZ)"
launches=3
nproc=""
threshold=5
baselines="results"
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
if [[ -z ${AGRS_BENCH_COMMIT:-} ]] && commit=$(git rev-parse HEAD 2>/dev/null); then
  export AGRS_BENCH_COMMIT=$commit
fi
for i in $(seq 1 "$launches"); do
  python3 -m torch.distributed.run --standalone --nproc-per-node="$nproc" -m agrs_bench.run \
    --out "$out/head/launch-$i" "$@" \
    || { echo "nightly: launch $i failed (status $?); see $out/head/launch-$i" >&2; exit 4; }
done

# History from the first night on: the export needs no baseline (names carry card and GPU count).
python3 -m agrs_bench.gate.export "$out/head" --out "$out/github-benchmark.json"

baseline=$(python3 -m agrs_bench baseline "$out/head/launch-1" --dir "$baselines" --path-only)
if [[ ! -d $baseline ]]; then
  few=""
  if [[ $launches -lt 3 ]]; then few=" --allow-few"; fi
  echo "nightly: no baseline $baseline for this card and GPU count; nothing gated." >&2
  echo "nightly: to adopt this night's $launches launch(es) as the baseline: python3 -m agrs_bench baseline $out/head --dir $baselines$few" >&2
  exit 0
fi

status=0
python3 -m agrs_bench.compare "$baseline" "$out/head" --out "$out/comparison" --threshold "$threshold" \
  || status=$?
if [[ -n ${GITHUB_STEP_SUMMARY:-} && -f $out/comparison/comparison.md ]]; then
  cat "$out/comparison/comparison.md" >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"
