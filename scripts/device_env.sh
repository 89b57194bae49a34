# shellcheck shell=bash
# Sourced by the device_*.sh scripts: the environment every GPU measurement of this repository
# runs under.
# NVLink multicast off: a program that uses it can put every GPU of a shared host out of service.
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
# A device copy of the tree has no .git: pass AGRS_BENCH_COMMIT=<sha> in, so that results.json
# records the commit (commit_info.id); from a checkout it is read here.
if [[ -z ${AGRS_BENCH_COMMIT:-} ]] && sha=$(git rev-parse HEAD 2>/dev/null); then export AGRS_BENCH_COMMIT=$sha; fi
[[ -n ${AGRS_BENCH_COMMIT:-} ]] || echo "warning: no AGRS_BENCH_COMMIT and no git: the results will record no commit" >&2
