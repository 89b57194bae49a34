"""Baselines: several launches kept together under <card>-x<N>/baseline/, at least 3 unless
--allow-few, never replaced without --force."""

import json
import os

import pytest

from agrs_bench.errors import ConfigError
from agrs_bench.results import baseline
from tests.support import synthetic


@pytest.mark.parametrize("gpu, card", [("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H200", "h200"),
                                       ("NVIDIA A100-SXM4-80GB", "a100"), (None, "cpu")])
def test_card_name(gpu, card):
    assert baseline.card_name(gpu) == card


def _runs(tmp_path, n, **kwargs):
    """A folder of n run directories, as scripts/nightly.sh writes them."""
    for i, doc in enumerate(synthetic.side(n, **kwargs), start=1):
        run = tmp_path / "night" / f"launch-{i}"
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps(doc))
    return tmp_path / "night"


def test_keep_three_launches_as_one_baseline(tmp_path):
    runs = _runs(tmp_path, 3)
    folder = baseline.keep(str(runs), root=str(tmp_path / "results"))
    assert folder == str(tmp_path / "results" / "h100-x4" / "baseline")
    assert sorted(os.listdir(folder)) == ["README.md", "launch-1", "launch-2", "launch-3"]
    for k in (1, 2, 3):
        kept = json.loads((tmp_path / "results" / "h100-x4" / "baseline" / f"launch-{k}" / "results.json").read_text())
        assert kept["commit_info"]["id"] == f"synthetic{k - 1}"
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        baseline.keep(str(runs), root=str(tmp_path / "results"))
    assert baseline.keep(str(runs), root=str(tmp_path / "results"), force=True) == folder
    assert sorted(os.listdir(tmp_path / "results" / "h100-x4")) == ["README.md", "baseline"]


def test_a_baseline_kept_in_the_repository_passes_its_results_folder_rule(tmp_path, monkeypatch):
    """README step: `agrs-bench baseline RUNS` into results/ must not make the repository's tests fail."""
    from tests.pure import test_repository_readme as test_repository

    (tmp_path / "repo" / "results").mkdir(parents=True)
    (tmp_path / "repo" / "results" / "README.md").write_text("# results\n")
    folder = baseline.keep(str(_runs(tmp_path, 3)), root=str(tmp_path / "repo" / "results"))
    text = (tmp_path / "repo" / "results" / "h100-x4" / "baseline" / "README.md").read_text()
    assert "| launch-1 | synthetic0 |" in text and folder.endswith("baseline")
    monkeypatch.setattr(test_repository, "ROOT", str(tmp_path / "repo"))
    test_repository.test_every_results_folder_has_a_readme_or_is_named_in_its_parents()


def test_comma_separated_run_dirs(tmp_path):
    runs = _runs(tmp_path, 3)
    spec = ",".join(str(runs / f"launch-{k}") for k in (1, 2, 3))
    folder = baseline.keep(spec, "mine", root=str(tmp_path / "r"))
    assert folder.endswith(os.path.join("mine", "baseline")) and len(os.listdir(folder)) == 4  # + README.md


def test_fewer_than_three_launches_exit_2_one_line_unless_allowed(tmp_path, capsys):
    runs = _runs(tmp_path, 2)
    with pytest.raises(SystemExit) as exc:
        baseline.main([str(runs), "--dir", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "at least 3 launches" in err and "--allow-few" in err
    assert baseline.main([str(runs), "--dir", str(tmp_path / "r"), "--allow-few"]) == 0


def test_incomplete_or_mixed_launches_are_refused(tmp_path):
    runs = _runs(tmp_path, 3)
    doc = synthetic.launch(seed=9, missing=("ag-dense-single_comm-1MiB",))
    (runs / "launch-2" / "results.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="incomplete"):
        baseline.keep(str(runs), root=str(tmp_path / "r"))
    (runs / "launch-2" / "results.json").write_text(json.dumps(synthetic.launch(seed=9, world_size=2)))
    with pytest.raises(ConfigError, match="launches differ in world_size"):
        baseline.keep(str(runs), root=str(tmp_path / "r"))
