#!/usr/bin/env bash
# A/B on one machine: launch the suite from a BASE and a HEAD checkout, interleaved
# (A B A B ..., at least 3 launches each, so drift of the machine hits both sides alike), then
# gate HEAD against BASE. BASE and HEAD are checkout folders or git revisions of this repository
# (checked out into temporary worktrees). The same one twice is an A/A run: see docs/gate.md.
# AGRS_LAUNCHER replaces the launcher (default: python3 -m torch.distributed.run --standalone
# --nproc-per-node=N); it is given `-m agrs_bench.run --out DIR RUN_ARGS...`.
# Exit status: agrs_bench.compare's (0 pass, 1 regression, 2 bad input, 3 incomparable), 4 a launch failed.
set -euo pipefail
export NCCL_NVLS_ENABLE=0  # NVLink multicast can take every GPU of a shared host out of service

usage() {
  echo "usage: scripts/ab.sh BASE HEAD [--launches N>=3] [--out DIR] [--nproc N] [--threshold PCT] [-- RUN_ARGS...]" >&2
  exit 2
}

[[ $# -ge 2 && $1 != -* && $2 != -* ]] || usage
base_spec=$1
head_spec=$2
shift 2
launches=3
out="results/ab/$(date -u +%Y%m%dT%H%M%SZ)"
nproc=""
threshold=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --launches|--out|--nproc|--threshold)
      [[ $# -ge 2 ]] || usage
      case "$1" in
        --launches) launches=$2 ;; --out) out=$2 ;; --nproc) nproc=$2 ;; --threshold) threshold=$2 ;;
      esac
      shift 2 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[[ $launches =~ ^[0-9]+$ && $launches -ge 3 ]] || usage
if [[ -z $nproc ]]; then
  nproc=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
  [[ $nproc -ge 2 ]] || nproc=2
fi
[[ $nproc =~ ^[1-9][0-9]*$ ]] || usage
launcher=${AGRS_LAUNCHER:-python3 -m torch.distributed.run --standalone --nproc-per-node=$nproc}

repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
worktrees=()
# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
  for wt in ${worktrees[@]+"${worktrees[@]}"}; do git -C "$repo" worktree remove --force "$wt" || true; done
}
trap cleanup EXIT

checkout_of() {  # a folder as is, or a revision checked out into a temporary worktree
  if [[ -d $1 ]]; then
    (cd "$1" && pwd)
  else
    local wt="$out/checkout-$2"
    git -C "$repo" rev-parse --verify --quiet "$1^{commit}" >/dev/null \
      || { echo "ab.sh: $1 is neither a folder nor a revision of $repo" >&2; exit 2; }
    git -C "$repo" worktree add --detach --quiet "$wt" "$1" >&2
    echo "$wt"
  fi
}
base_dir=$(checkout_of "$base_spec" base)
head_dir=$(checkout_of "$head_spec" head)
# checkout_of ran in a subshell: register revision worktrees here so the trap removes them
for wt in "$out/checkout-base" "$out/checkout-head"; do
  if [[ -d $wt ]]; then worktrees+=("$wt"); fi
done

launch() {  # side checkout index RUN_ARGS...
  local side=$1 dir=$2 i=$3
  shift 3
  local found
  found=$(cd "$dir" && PYTHONPATH="$dir" python3 -c 'import agrs_bench, os; print(os.path.dirname(os.path.dirname(os.path.abspath(agrs_bench.__file__))))')
  [[ $found == "$dir" ]] || { echo "ab.sh: $side imports agrs_bench from $found, not $dir" >&2; exit 2; }
  echo "ab.sh: $side launch $i of $launches ($dir)" >&2
  # shellcheck disable=SC2086  # the launcher is a command line, split on purpose
  (cd "$dir" && PYTHONPATH="$dir" $launcher -m agrs_bench.run --out "$out/$side/launch-$i" "$@") \
    || { echo "ab.sh: $side launch $i failed (status $?); see $out/$side/launch-$i" >&2; exit 4; }
}

for i in $(seq 1 "$launches"); do
  launch base "$base_dir" "$i" "$@"
  launch head "$head_dir" "$i" "$@"
done

status=0
(cd "$repo" && PYTHONPATH="$repo" python3 -m agrs_bench.compare "$out/base" "$out/head" \
  --out "$out/comparison" --threshold "$threshold") || status=$?
exit "$status"
