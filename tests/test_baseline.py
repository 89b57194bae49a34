"""Baseline naming and keeping: <card>-x<N>.json, never replaced without --force."""

import json

import pytest

from agrs_bench.results import baseline
from agrs_bench.errors import ConfigError
from tests import launch, synthetic


@pytest.mark.parametrize("gpu, card", [("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H200", "h200"),
                                       ("NVIDIA A100-SXM4-80GB", "a100"), (None, "cpu")])
def test_card_name(gpu, card):
    assert baseline.card_name(gpu) == card


@pytest.mark.gloo
def test_keep_names_by_card_and_refuses_to_overwrite(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    doc = synthetic.launch()
    (run / "results.json").write_text(json.dumps(doc))
    expected = tmp_path / "b" / f"{baseline.default_name(doc['machine_info'])}.json"
    assert baseline.keep(str(run), folder=str(tmp_path / "b")) == str(expected)
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        baseline.keep(str(run), folder=str(tmp_path / "b"))
    assert baseline.keep(str(run), folder=str(tmp_path / "b"), force=True) == str(expected)
    proc = launch.run(launch.cli_cmd("baseline", str(run), "--dir", str(tmp_path / "b"), "--path-only"),
                      deadline_s=60)
    assert proc.returncode == 0 and proc.stdout.strip() == str(expected)
