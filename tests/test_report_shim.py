"""`python -m agrs_bench.report`, the spelling before the report moved to render/: it still
writes the report, and says on stderr which form replaces it."""

import os
import shutil

import pytest

from agrs_bench import report

RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results/studies/precision/h200-x2")


def test_old_spelling_writes_the_report_and_names_the_new_form(tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(RUN, run_dir)
    (run_dir / "report.md").unlink(missing_ok=True)
    assert report.main([str(run_dir)]) == 0
    assert (run_dir / "report.md").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "agrs-bench report RUN_DIR" in err[0], err


def test_old_spelling_keeps_the_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        report.main([str(tmp_path / "missing")])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "does not exist" in err[1], err
