"""`baseline --path-only` as a process: it prints the folder and writes nothing."""

from tests.pure.test_results_baseline import _runs
from tests.support import launch


def test_path_only_prints_the_folder(tmp_path):
    runs = _runs(tmp_path, 1)
    proc = launch.run(launch.cli_cmd("baseline", str(runs / "launch-1"), "--dir", str(tmp_path / "r"),
                                     "--path-only"), deadline_s=60)
    assert proc.returncode == 0 and proc.stdout.strip() == str(tmp_path / "r" / "h100-x4" / "baseline")
    assert not (tmp_path / "r").exists()
