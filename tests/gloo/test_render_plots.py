"""Report and comparison plots of real CPU runs: written by the run, rewritten by the report
command from the files alone, compared (synthetic documents: tests/pure/test_render_plots.py)."""

import json
import sys

import pytest

from tests.pure.test_render_plots import _assert_images
from tests.support import launch
from tests.support.launch import FAST


@pytest.fixture(scope="module")
def two_cpu_runs(cpu_run, tmp_path_factory):
    """The gloo tier's shared run (tests/gloo/conftest.py), read only, and one of this module's own
    with the same flags (one size: every plot and table still gets drawn), which a test rewrites."""
    out = tmp_path_factory.mktemp("runs") / "b"
    proc = launch.run(launch.torchrun_cmd(2, "--out", str(out), *FAST, "--sizes", "4KiB"), deadline_s=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [cpu_run[0], out]


def test_run_writes_report_with_plots_and_warnings(two_cpu_runs):
    run = two_cpu_runs[0]
    text = (run / "report.md").read_text()
    names = ["busbw.png", "overlap_efficiency.png", "speedup.png", "ag_rs_time.png", "fsdp_step.png"]
    for name in names:
        assert f"(plots/{name})" in text
    assert "## Warnings" in text and "CPU/gloo: timings are not meaningful" in text
    _assert_images([str(run / "plots" / name) for name in names])


def test_report_cli_rewrites_from_files_alone(two_cpu_runs):
    run = two_cpu_runs[1]
    (run / "report.md").unlink()
    for png in (run / "plots").iterdir():
        png.unlink()
    proc = launch.run(launch.cli_cmd("report", str(run)), deadline_s=120)
    assert proc.returncode == 0, proc.stderr
    assert (run / "report.md").exists() and len(list((run / "plots").iterdir())) == 5


def test_comparison_of_two_real_cpu_runs(two_cpu_runs, tmp_path):
    out = tmp_path / "cmp"
    bench = tmp_path / "bench.json"
    proc = launch.run([sys.executable, "-m", "agrs_bench.compare", str(two_cpu_runs[0]), str(two_cpu_runs[1]),
                       "--out", str(out), "--export-github-benchmark", str(bench)], deadline_s=120)
    assert proc.returncode in (0, 1), proc.stderr  # gloo timings: any verdict, but never bad input
    text = (out / "comparison.md").read_text()
    assert text.startswith("## agrs_bench gate: ")
    assert "of 21 cells" in text and "has 1 launch(es)" in text
    _assert_images([str(out / "compare_time.png"), str(out / "compare_ratio.png")])
    assert len(json.loads(bench.read_text())) == 21
