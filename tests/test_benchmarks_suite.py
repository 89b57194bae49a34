"""benchmarks/ under torchrun on 2 gloo ranks writes a pytest-benchmark JSON; without torchrun it
skips instead of waiting for peers."""

import json
import os
import subprocess
import sys

import pytest

TINY = {"AGRS_BENCH_SIZES": "4KiB", "AGRS_BENCH_ROUNDS": "3", "AGRS_BENCH_WARMUP": "1", "AGRS_BENCH_SAMPLE_MS": "0.5",
        "AGRS_BENCH_TIMEOUT_S": "60", "OMP_NUM_THREADS": "1"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    env = dict(os.environ, **TINY)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    return env


@pytest.mark.gloo
def test_torchrun_suite_writes_pytest_benchmark_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "-m", "pytest", "benchmarks/", f"--benchmark-json={out}", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(doc)
    assert len(doc["benchmarks"]) == 3 * 2 * 3
    comparisons = {}
    for bench in doc["benchmarks"]:
        extra = bench["extra_info"]
        assert bench["stats"]["rounds"] == 3 and len(bench["stats"]["data"]) == 3
        assert extra["world_size"] == 2 and extra["backend"] == "gloo"
        # The engine's samples, not rank 0's own timing: the stats hold exactly its per-round data
        # (seconds per iteration of samples of ops_per_sample iterations, max over ranks).
        assert extra["rounds"] == 3 and extra["ops_per_sample"] >= 1
        assert min(bench["stats"]["data"]) * extra["ops_per_sample"] == pytest.approx(extra["sample_s_min"])
        comparisons.setdefault(extra["comparison"], set()).add(extra["source"])
        if extra["mode"] == "ag_rs":
            assert "overlap_efficiency_ci" in extra and "speedup_vs_single_comm_ci" in extra
    assert set(comparisons) == {"dense-4KiB-eager", "expert-4KiB-eager"}
    assert all(len(sources) == 3 for sources in comparisons.values())  # every source sampled together
    compare = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", str(out)],
                             capture_output=True, text=True, timeout=120)
    assert compare.returncode == 0, compare.stderr


def test_plain_pytest_skips_without_hanging(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "-q", "-p", "no:cacheprovider",
                           f"--benchmark-json={tmp_path / 'b.json'}", "-rs"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "18 skipped" in proc.stdout and "needs >= 2 ranks" in proc.stdout
