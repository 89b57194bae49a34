"""`python -m agrs_bench.topology`: one JSON object, a table, bad input in one line with exit 2."""

import json
import sys

import pytest

from tests.support import launch


def _topology(*args):
    return launch.run([sys.executable, "-m", "agrs_bench.topology", *args], deadline_s=60)


def test_topology_json_is_one_object():
    proc = _topology("--world-size", "8", "--tp", "2", "--pp", "2", "--ep", "2",
                     "--order", "tp-cp-ep-dp-pp", "--rank-offset", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"dense", "expert"}
    assert set(doc["dense"]) == {"tp", "cp", "dp", "dp_cp", "pp"}
    assert set(doc["expert"]) == {"expt_tp", "ep", "expt_dp"}
    assert doc["dense"]["dp"] == [[0, 2], [1, 3], [4, 6], [5, 7]]


def test_topology_table():
    proc = _topology("--world-size", "4", "--ep", "2")
    assert proc.returncode == 0 and "expt_dp" in proc.stdout and "[0,2]" in proc.stdout


@pytest.mark.parametrize("args, needle", [
    (["--world-size", "8", "--tp", "3"], "3"),
    (["--world-size", "8", "--tp", "2", "--order", "dp-pp"], "'tp'"),
    (["--world-size", "8", "--order", "tp-foo"], "'foo'"),
    (["--world-size", "8", "--order", "dp-dp"], "'dp'"),
    (["--world-size", "8", "--pp", "0"], "got 0"),
    (["--world-size", "8", "--rank-offset", "-2"], "got -2"),
    (["--world-size", "eight"], "'eight'"),
    ([], "--world-size"),
])
def test_topology_bad_input_one_line_exit_2(args, needle):
    proc = _topology(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert needle in lines[0]
