"""Layouts megatron-core refuses, as processes: the topology command says Megatron's words,
megatron-core itself (on a fake 8-rank world) refuses the same layouts, and the megatron_core source
without megatron-core is one line, exit 2."""

import json
import os
import sys
import textwrap

import pytest

from tests.pure.test_topology_megatron_refusals import REFUSED, _one_line, needs_megatron
from tests.support import launch


@pytest.mark.parametrize("case", ["pp_not_last_dp_differs", "pipeline_groups_differ"])
def test_topology_command_refuses_with_megatrons_message(case):
    kwargs, message = REFUSED[case]
    args = [f"--{k}={v}" for k, v in kwargs.items()]
    proc = launch.run([sys.executable, "-m", "agrs_bench.topology", "--world-size", "8", *args], deadline_s=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and message in proc.stderr


_MEGATRON_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    warnings.simplefilter("ignore")
    import torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=8)
    from megatron.core import parallel_state as ps
    names = {"tp": "tensor_model_parallel_size", "cp": "context_parallel_size", "ep": "expert_model_parallel_size",
             "etp": "expert_tensor_parallel_size", "pp": "pipeline_model_parallel_size", "order": "order"}
    said = {}
    for case, kwargs in json.loads(sys.argv[1]).items():
        try:
            ps.initialize_model_parallel(create_gloo_process_groups=False,
                                         **{names[k]: v for k, v in kwargs.items()})
            said[case] = None
        except (AssertionError, RuntimeError) as err:
            said[case] = str(err)
        ps.destroy_model_parallel()
    print(json.dumps(said))
""")


@needs_megatron
def test_megatron_core_itself_refuses_the_same_layouts_with_the_same_words():
    # One process, a fake world of 8 ranks: megatron-core's initialize_model_parallel for real.
    cases = {case: kwargs for case, (kwargs, _) in REFUSED.items()}
    proc = launch.run([sys.executable, "-c", _MEGATRON_SCRIPT, json.dumps(cases)], deadline_s=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = json.loads(proc.stdout.strip().splitlines()[-1])
    for case, (kwargs, message) in REFUSED.items():
        assert said[case] is not None, f"megatron-core accepted {case} {kwargs}"
        assert _one_line(said[case]) == message, case


def test_megatron_core_source_without_megatron_core_is_one_line_exit_2(tmp_path):
    # A `megatron` package without `core` first on the path hides the installed megatron-core.
    (tmp_path / "megatron").mkdir()
    (tmp_path / "megatron" / "__init__.py").write_text("")
    path = os.pathsep.join([str(tmp_path), launch.ROOT, os.environ.get("PYTHONPATH", "")])
    proc = launch.run([sys.executable, "-m", "agrs_bench.run", "--sources", "megatron_core,single_comm",
                       "--out", str(tmp_path / "run")], deadline_s=120, env_extra={"PYTHONPATH": path})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "pip install -e '.[megatron]'" in proc.stderr
    assert not (tmp_path / "run").exists()
