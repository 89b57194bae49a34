"""scripts/ab.sh and scripts/nightly.sh: usage errors; ab.sh runs an interleaved A/A on CPU."""

import os
import sys

import pytest

from tests.support import launch
from tests.support.launch import ROOT

TINY = ["--", *launch.FAST, "--modes", "ag", "--buffers", "dense", "--sources", "single_comm", "--sizes", "4KiB"]


def _script(name, *args, timeout=240, **env_extra):
    # An empty GITHUB_STEP_SUMMARY: a test never writes into the CI job's summary.
    return launch.run(["bash", os.path.join(ROOT, "scripts", name), *args], deadline_s=timeout, cwd=ROOT,
                      env_extra={"GITHUB_STEP_SUMMARY": "", **env_extra})


@pytest.mark.parametrize("name, args", [
    ("ab.sh", []), ("ab.sh", ["a"]), ("ab.sh", [".", ".", "--launches", "2"]), ("ab.sh", [".", ".", "--what"]),
    ("nightly.sh", ["--bogus"]), ("nightly.sh", ["--launches", "zero"]),
])
def test_bad_arguments_print_usage_and_exit_2(name, args):
    proc = _script(name, *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"usage: scripts/{name}")


def test_ab_interleaves_three_launches_each_and_compares(tmp_path):
    # A stand-in launcher keeps this fast; tests/gloo/test_scripts_nightly.py launches for real.
    launcher = f"{sys.executable} {os.path.join(ROOT, 'tests', 'support', 'fake_launcher.py')}"
    proc = _script("ab.sh", ".", "HEAD", "--out", str(tmp_path / "ab"), *TINY, AGRS_LAUNCHER=launcher)
    assert proc.returncode == 0, proc.stderr[-3000:]
    order = [line.split(" launch ")[0].split()[-1] for line in proc.stderr.splitlines() if " launch " in line]
    assert order == ["base", "head"] * 3
    text = (tmp_path / "ab" / "comparison" / "comparison.md").read_text()
    assert "base: 3 launch(es)" in text and "head: 3 launch(es)" in text
