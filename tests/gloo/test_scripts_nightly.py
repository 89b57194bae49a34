"""scripts/nightly.sh on CPU: without a baseline it says how to adopt one; with one (a folder of
launches) it gates."""

import os
import shutil

from tests.gloo.test_scripts_ab import TINY, _script


def test_nightly_adopts_then_gates_against_baseline(tmp_path):
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    first = _script("nightly.sh", "--out", str(tmp_path / "n1"), "--launches", "1",
                    "--baselines", str(baselines), *TINY)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "no baseline" in first.stderr and os.path.join("cpu-x2", "baseline") in first.stderr
    assert "--allow-few" in first.stderr
    assert (tmp_path / "n1" / "github-benchmark.json").exists()  # history from the first night
    kept = baselines / "cpu-x2" / "baseline" / "launch-1"
    kept.mkdir(parents=True)
    shutil.copy(tmp_path / "n1" / "head" / "launch-1" / "results.json", kept / "results.json")
    second = _script("nightly.sh", "--out", str(tmp_path / "n2"), "--launches", "1",
                     "--baselines", str(baselines), *TINY)
    assert second.returncode in (0, 1), second.stderr[-3000:]  # gloo timings: any verdict
    assert (tmp_path / "n2" / "comparison" / "comparison.md").exists()
    assert (tmp_path / "n2" / "github-benchmark.json").exists()
    assert (tmp_path / "n2" / "head" / "launch-1" / "report.md").exists()
