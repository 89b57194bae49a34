"""The lever grammar of the per-role NCCL options: cta_policy and registration, accepted and
refused in one line; on gloo every lever is refused (exit 2 through the CLI: test_bad_input)."""

import pytest

from agrs_bench.config.cli import parse_run_args
from agrs_bench.config.nccl_options import (
    CTA_POLICIES,
    SWEEP_GRID,
    NcclOptions,
    pair_label,
    parse_nccl_options,
    support_problem,
)
from agrs_bench.errors import ConfigError


@pytest.mark.parametrize("policy", CTA_POLICIES)
def test_cta_policy_parses_and_labels(policy):
    options = parse_nccl_options(f"high_priority,cta_policy={policy},registration=symmetric")
    assert options == NcclOptions(high_priority=True, cta_policy=policy, registration="symmetric")
    assert options.label() == f"hp+cta_policy={policy}+registration=symmetric"
    assert parse_nccl_options(options.label().replace("+", ",")) == options  # as --resume reads it back


@pytest.mark.parametrize("text, named", [("cta_policy=fast", "'fast'"), ("cta_policy=", "''"),
                                         ("registration=pinned", "'pinned'"), ("cta=zero", "'cta=zero'"),
                                         ("registration", "'registration'")])
def test_bad_lever_is_one_line_naming_the_value(text, named):
    with pytest.raises(ConfigError) as err:
        parse_nccl_options(text)
    assert named in str(err.value) and "\n" not in str(err.value)


def test_registration_alone_leaves_the_communicator_default():
    options = NcclOptions(registration="ub")
    assert not options.is_default and options.communicator_is_default
    assert options.to_process_group_options() is None  # no NCCL needed to make such a group
    assert not NcclOptions(cta_policy="zero").communicator_is_default


def test_sweep_has_the_lever_rows_with_distinct_labels():
    labels = [pair_label(ag, rs) for ag, rs in SWEEP_GRID]
    assert len(set(labels)) == len(labels) and labels[0] == "default"
    assert "ag:cta_policy=zero+registration=symmetric/rs:registration=symmetric" in labels
    assert "ag:registration=ub/rs:registration=ub" in labels
    assert "ag:cta_policy=efficiency/rs:cta_policy=efficiency" in labels


def test_build_without_nccl_refuses_cta_policy_naming_versions_found_and_needed():
    problem = support_problem([NcclOptions(cta_policy="zero")])
    assert problem is not None and "NCCL >= 2.28" in problem and "found torch" in problem
    assert support_problem([NcclOptions(cta_policy="efficiency")]).count("2.27") == 1
    assert support_problem([NcclOptions(max_ctas=8), NcclOptions(registration="ub")]) is None


@pytest.mark.parametrize("argv, needle", [
    (["--ag-nccl-options", "cta_policy=zero"], "NCCL options need the nccl backend"),
    (["--rs-nccl-options", "registration=ub"], "NCCL options need the nccl backend"),
    (["--issue", "low_contention"], "low_contention needs CUDA and NCCL"),
])
def test_every_lever_is_refused_on_gloo(argv, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_run_args(argv, world_size=2, backend="gloo")


def test_cell_levers_map_a_cell_label_back_to_its_roles():
    from types import SimpleNamespace

    from agrs_bench.config.cell import Cell
    from agrs_bench.config.nccl_options import SWEEP_GRID
    from agrs_bench.measure import cell_levers

    def cell(label: str, mode: str) -> Cell:
        return Cell(mode=mode, buffer="dense", source="pg_collection", size_bytes=4096, dtype="bf16",
                    nccl_options=label)

    cfg = SimpleNamespace(sources=("single_comm", "pg_collection"),
                          option_pairs=lambda s: list(SWEEP_GRID) if s == "pg_collection" else [SWEEP_GRID[0]])
    label = "ag:cta_policy=zero+registration=symmetric/rs:registration=symmetric"
    assert cell_levers.wanted(cfg, cell(label, "ag")) == {"ag": "symmetric"}
    assert cell_levers.wanted(cfg, cell(label, "fsdp_step")) == {"ag": "symmetric", "rs": "symmetric"}
    assert cell_levers.wanted(cfg, cell("default", "ag_rs")) == {}
    assert cell_levers.requested(cfg, cell(label, "ag_rs")) == {
        "ag": {"cta_policy": "zero", "registration": "symmetric"},
        "rs": {"cta_policy": "default", "registration": "symmetric"}}


def test_low_contention_and_symmetric_windows_need_separate_launches():
    from types import SimpleNamespace

    from agrs_bench.config.levers import check_levers_supported

    pair = (NcclOptions(registration="symmetric"), NcclOptions())
    cfg = SimpleNamespace(backend="nccl", issues=("role_streams", "low_contention"), sources=("pg_collection",),
                          option_pairs=lambda s: [pair])
    with pytest.raises(ConfigError, match="separate launches"):
        check_levers_supported(cfg)
