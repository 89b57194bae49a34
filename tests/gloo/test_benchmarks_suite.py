"""benchmarks/ under torchrun on 2 gloo ranks writes a pytest-benchmark JSON; without torchrun it
skips instead of waiting for peers."""

import json
import sys

import pytest

from tests.support import launch


def test_torchrun_suite_writes_pytest_benchmark_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = launch.run(launch.torchrun_cmd(2, "benchmarks/", f"--benchmark-json={out}", "-q", "-p", "no:cacheprovider",
                                          module="pytest"),
                      deadline_s=240, cwd=launch.ROOT, env_extra=launch.FAST_BENCH_ENV)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(doc)
    assert len(doc["benchmarks"]) == 3 * 2 * 3
    comparisons = {}
    for bench in doc["benchmarks"]:
        extra = bench["extra_info"]
        rounds = launch.FAST_ITERS
        assert bench["stats"]["rounds"] == rounds and len(bench["stats"]["data"]) == rounds
        assert extra["world_size"] == 2 and extra["backend"] == "gloo"
        # The engine's samples, not rank 0's own timing: the stats hold exactly its per-round data
        # (seconds per iteration of samples of ops_per_sample iterations, max over ranks).
        assert extra["rounds"] == rounds and extra["ops_per_sample"] >= 1
        assert min(bench["stats"]["data"]) * extra["ops_per_sample"] == pytest.approx(extra["sample_s_min"])
        comparisons.setdefault(extra["comparison"], set()).add(extra["source"])
        if extra["mode"] == "ag_rs":
            assert "overlap_efficiency_ci" in extra and "speedup_vs_single_comm_ci" in extra
    assert set(comparisons) == {"dense-4KiB-eager", "expert-4KiB-eager"}
    assert all(len(sources) == 3 for sources in comparisons.values())  # every source sampled together
    compare = launch.run([sys.executable, "-m", "pytest_benchmark", "compare", str(out)], deadline_s=120)
    assert compare.returncode == 0, compare.stderr


def test_plain_pytest_skips_without_hanging(tmp_path):
    proc = launch.run([sys.executable, "-m", "pytest", "benchmarks/", "-q", "-p", "no:cacheprovider",
                       f"--benchmark-json={tmp_path / 'b.json'}", "-rs"],
                      deadline_s=120, cwd=launch.ROOT, env_extra=launch.FAST_BENCH_ENV)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "18 skipped" in proc.stdout and "needs >= 2 ranks" in proc.stdout
