"""agrs_bench.launch without processes: the command it starts and the rank's stderr that outlives
the parent reading it. (Signals and the process tree run for real in tests/gloo/test_run_signals.py.)"""

import io
import sys

from agrs_bench.launch.torchrun import StderrOutlivingItsReader, torchrun_cmd


def test_torchrun_runs_the_module_it_is_given():
    cmd = torchrun_cmd(4, "tests.support.fault_entry", ["--sizes", "4KiB"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert cmd[cmd.index("-m", 3):] == ["-m", "tests.support.fault_entry", "--sizes", "4KiB"]
    assert "--nproc-per-node=4" in cmd and "--standalone" in cmd


class _GonePipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_write_after_the_parent_died_does_not_raise():
    stream = StderrOutlivingItsReader(_GonePipe())
    assert stream.write("saving the finished cells\n") == len("saving the finished cells\n")
    stream.flush()
    assert stream.getvalue() == ""  # everything else goes to the wrapped stream
