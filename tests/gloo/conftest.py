"""What the gloo tier shares. A run costs most of its time starting ranks (each imports torch), so
tests that only read a finished run read the same one."""

import pytest

from tests.support import launch


@pytest.fixture(scope="session")
def cpu_run(tmp_path_factory):
    """(run directory, Finished) of one 2-rank gloo run with the fast flags at one size (21 cells).
    Shared by every test that reads a finished run: read it, never change it."""
    out = tmp_path_factory.mktemp("cpu_run") / "r"
    proc = launch.run(launch.torchrun_cmd(2, "--out", str(out), *launch.FAST, "--sizes", "4KiB"), deadline_s=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc
