"""benchmarks/ under torchrun on 2 gloo ranks writes a pytest-benchmark JSON; without torchrun it
skips instead of waiting for peers."""

import json
import sys

import pytest

from tests import launch

pytestmark = pytest.mark.gloo


def test_torchrun_suite_writes_pytest_benchmark_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = launch.run(launch.torchrun_cmd(2, "benchmarks/", f"--benchmark-json={out}", "-q", "-p", "no:cacheprovider",
                                          module="pytest"),
                      deadline_s=240, cwd=launch.ROOT, env_extra=launch.FAST_BENCH_ENV)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(doc)
    assert len(doc["benchmarks"]) == 3 * 2 * 3
    for bench in doc["benchmarks"]:
        rounds = launch.FAST_ITERS
        assert bench["stats"]["rounds"] == rounds and len(bench["stats"]["data"]) == rounds
        assert bench["extra_info"]["world_size"] == 2 and bench["extra_info"]["backend"] == "gloo"
    compare = launch.run([sys.executable, "-m", "pytest_benchmark", "compare", str(out)], deadline_s=120)
    assert compare.returncode == 0, compare.stderr


def test_plain_pytest_skips_without_hanging(tmp_path):
    proc = launch.run([sys.executable, "-m", "pytest", "benchmarks/", "-q", "-p", "no:cacheprovider",
                       f"--benchmark-json={tmp_path / 'b.json'}", "-rs"],
                      deadline_s=120, cwd=launch.ROOT, env_extra=launch.FAST_BENCH_ENV)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "18 skipped" in proc.stdout and "needs >= 2 ranks" in proc.stdout
