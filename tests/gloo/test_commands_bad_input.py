"""Bad input through a real process: the module entry, a process's stderr, no traceback (the
table of cases runs in-process: tests/pure/test_commands_bad_input.py)."""

import os

from tests.pure.test_commands_bad_input import REPO, _argv
from tests.support import launch


def test_bad_input_through_a_real_process(tmp_path):
    """One case end to end: the module entry, a process's stderr, no traceback."""
    argv, needle = _argv("unknown mode", tmp_path)
    proc = launch.run(launch.cli_cmd(*argv), deadline_s=120, cwd=str(tmp_path),
                      env_extra={"PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and needle in proc.stderr
