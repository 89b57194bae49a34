"""`python -m agrs_bench.report`, the spelling before the report moved to render/: it still
writes the report, and says on stderr which form replaces it."""

import os
import shutil

import pytest

from agrs_bench import report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "results/studies/precision/h200-x2")


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


def test_a_path_that_is_not_a_directory_is_named_as_such(tmp_path, capsys):
    """`agrs-bench report FILE`: the file exists; the message must not say it does not."""
    from agrs_bench.render import report as render_report
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(SystemExit) as exited:
        render_report.main([str(tmp_path / "results.json")])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "is not a directory" in err and "does not exist" not in err, err
