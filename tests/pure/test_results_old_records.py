"""`--resume` accepts every record this project has written: the fields a version did not record
are filled with what that version ran (schema.ADDED_FIELDS), so a run of any version can be
finished. The generations below are the record() of the commits named."""

import json

import pytest

from agrs_bench.config.cli import parse_run_args
from agrs_bench.results import resume, rundir, schema
from tests.support.launch import FAST

NOW = parse_run_args([*FAST, "--sizes", "4KiB"], world_size=2, backend="gloo").record()
LATER_FIELDS = ("reference", "hide_launch", "telemetry", "graph", "ag_options", "rs_options",
                "sweep_nccl_options", "trace", "issues")
GENERATIONS = {
    # e8c90f9: the first config.json (issue5-faults, before held timing, reference, telemetry).
    "first resume (e8c90f9)": LATER_FIELDS,
    # 08281d5 .. 84927f7: options, graph, telemetry, reference recorded; no trace, no issues.
    "options (08281d5)": ("trace", "issues"),
    # ec69576: the paired engine added trace; issues not yet.
    "engine (ec69576)": ("issues",),
    # fe7e898: --issue added; trace not recorded on that branch.
    "issue styles (fe7e898)": ("trace",),
    "current": (),
}


def _old_run(tmp_path, dropped, where="config.json", cells=""):
    record = {k: v for k, v in NOW.items() if k not in dropped}
    run = tmp_path / "old"
    run.mkdir()
    if where == "config.json":
        (run / "config.json").write_text(json.dumps(record))
    else:  # only results.json, its agrs_bench.config
        doc = {"machine_info": {}, "commit_info": {}, "benchmarks": [], "datetime": "x", "version": "5",
               "agrs_bench": {"schema_version": 1, "complete": False, "missing_cells": ["x"], "config": record}}
        (run / "results.json").write_text(json.dumps(doc))
    return str(run)


@pytest.mark.parametrize("where", ["config.json", "results.json"])
@pytest.mark.parametrize("generation", sorted(GENERATIONS))
def test_every_generation_resumes(generation, where, tmp_path):
    run = _old_run(tmp_path, GENERATIONS[generation], where)
    cfg = parse_run_args(["--resume", run], world_size=2, backend="gloo", stored=resume.stored_for_flags)
    assert rundir.check_run_dir(cfg) == []  # no configuration difference, nothing finished yet
    for field in GENERATIONS[generation]:
        assert cfg.record()[field] == schema.ADDED_FIELDS[field], field


def test_the_first_generation_ran_launch_bound_without_reference(tmp_path):
    cfg = parse_run_args(["--resume", _old_run(tmp_path, LATER_FIELDS)], world_size=2, backend="gloo",
                         stored=resume.stored_for_flags)
    assert (cfg.hide_launch, cfg.reference, cfg.telemetry, cfg.trace, cfg.issues) == (
        False, False, False, False, ("role_streams",))


def test_a_flag_against_the_filled_default_is_still_a_difference(tmp_path):
    run = _old_run(tmp_path, ("issues",))
    cfg = parse_run_args(["--resume", run, "--issue", "megatron_fsdp"], world_size=2, backend="gloo",
                         stored=resume.stored_for_flags)
    with pytest.raises(Exception, match="issues was \\['role_streams'\\], now \\['megatron_fsdp'\\]"):
        rundir.check_run_dir(cfg)


def test_fields_no_version_lacked_are_still_required(tmp_path):
    run = _old_run(tmp_path, ("sizes_bytes",))
    with pytest.raises(Exception, match="no 'sizes_bytes' key"):
        resume.stored_for_flags(run)
