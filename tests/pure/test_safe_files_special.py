"""Special files where the tool reads or writes a file: a named pipe with no writer, /dev/zero,
a directory, a file over its size limit, a symbolic link. Every reader refuses them before
reading (exit 2, one line, no hang); every writer writes a link's target and never replaces a
link, pipe or device. Each case runs under a 10 s alarm: a hang fails, it does not block."""

import json
import os
import signal
import stat

import pytest

from agrs_bench import __main__ as entry
from agrs_bench import safe_files
from agrs_bench.config.cli import parse_run_args
from agrs_bench.results import files as results
from agrs_bench.results import resume, schema
from tests.support import synthetic
from tests.support.launch import FAST


@pytest.fixture(autouse=True)
def no_hang():
    def expired(signum, frame):
        raise TimeoutError("hung on a special file")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _special(tmp_path, kind):
    """A path of the given kind: fifo, zero or devnull (the device through a link), dir, dangling
    (a link to nowhere), big (over 256 MiB, sparse)."""
    path = tmp_path / f"special-{kind}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind in ("zero", "devnull"):
        os.symlink({"zero": "/dev/zero", "devnull": "/dev/null"}[kind], path)
    elif kind == "dangling":
        os.symlink(tmp_path / "nowhere" / "x.json", path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "big":
        with open(path, "wb") as fh:
            fh.truncate(safe_files.RESULTS_LIMIT_BYTES + 1)
    return str(path)


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root)
                  for f in files + dirs)


def _exit_2(argv, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        entry.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


KINDS = ("fifo", "zero", "dir", "big")


@pytest.mark.parametrize("kind", KINDS)
def test_compare_input(kind, tmp_path, capsys, monkeypatch):
    path = _special(tmp_path, kind)
    good = tmp_path / "good"
    good.mkdir()
    (good / "results.json").write_text(json.dumps(synthetic.launch()))
    before = _tree(tmp_path)
    line = _exit_2(["compare", str(good), path, "--out", str(tmp_path / "cmp")], capsys, monkeypatch, tmp_path)
    assert "special-" in line and _tree(tmp_path) == before


@pytest.mark.parametrize("kind", KINDS)
def test_report_results_json(kind, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    os.rename(_special(tmp_path, kind), run / "results.json")
    before = _tree(tmp_path)
    line = _exit_2(["report", str(run)], capsys, monkeypatch, tmp_path)
    assert "results.json" in line and _tree(tmp_path) == before


@pytest.mark.parametrize("kind", KINDS)
def test_baseline_input(kind, tmp_path, capsys, monkeypatch):
    line = _exit_2(["baseline", _special(tmp_path, kind), "x", "--dir", str(tmp_path / "b")], capsys, monkeypatch,
                   tmp_path)
    assert "special-" in line and not (tmp_path / "b").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_run_config_toml(kind, tmp_path, capsys, monkeypatch):
    line = _exit_2(["run", "--out", str(tmp_path / "r"), "--config", _special(tmp_path, kind)], capsys, monkeypatch,
                   tmp_path)
    assert "cannot read" in line and not (tmp_path / "r").exists()


@pytest.mark.parametrize("name", ["config.json", "cells.jsonl", ".agrs_bench.lock"])
@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_resume_files(name, kind, tmp_path, capsys, monkeypatch):
    run = tmp_path / "old"
    run.mkdir()
    cfg = parse_run_args([*FAST, "--sizes", "4KiB"], world_size=2, backend="gloo")
    (run / "config.json").write_text(json.dumps(cfg.record()))
    os.unlink(run / "config.json") if name == "config.json" else None
    os.rename(_special(tmp_path, kind), run / name)
    line = _exit_2(["run", "--resume", str(run)], capsys, monkeypatch, tmp_path)
    assert name in line


def test_oversized_config_json_is_refused_unread(tmp_path):
    with open(tmp_path / "config.json", "wb") as fh:
        fh.truncate(safe_files.CONFIG_LIMIT_BYTES + 1)
    with pytest.raises(schema.SchemaError, match="more than the 1 MiB"):
        schema.load_config(str(tmp_path / "config.json"))
    with pytest.raises(Exception, match="more than the 1 MiB"):
        resume.stored_for_flags(str(tmp_path))


# --- writers --------------------------------------------------------------------------------

def _pair(tmp_path):
    for seed, side in enumerate(("a", "b")):
        (tmp_path / side).mkdir()
        (tmp_path / side / "results.json").write_text(json.dumps(synthetic.launch(seed=seed)))
    return [str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp"), "--no-plots"]


def test_export_follows_a_link_to_its_target(tmp_path, capsys, monkeypatch):
    (tmp_path / "target.json").write_text("old")
    os.symlink(tmp_path / "target.json", tmp_path / "link.json")
    monkeypatch.chdir(tmp_path)
    assert entry.main(["compare", *_pair(tmp_path), "--export-github-benchmark", str(tmp_path / "link.json")]) == 0
    assert os.path.islink(tmp_path / "link.json")
    assert json.loads((tmp_path / "target.json").read_text())[0]["unit"] == "ms"


@pytest.mark.parametrize("kind", ["fifo", "devnull", "dir", "dangling"])
def test_export_never_replaces_a_special_file(kind, tmp_path, capsys, monkeypatch):
    path = _special(tmp_path, kind)
    argv = _pair(tmp_path)
    before = _tree(tmp_path)
    line = _exit_2(["compare", *argv, "--export-github-benchmark", str(path)], capsys, monkeypatch, tmp_path)
    assert "--export-github-benchmark" in line and _tree(tmp_path) == before
    assert kind != "fifo" or stat.S_ISFIFO(os.lstat(path).st_mode)
    assert kind != "devnull" or os.readlink(path) == "/dev/null"


def test_comparison_md_as_a_pipe_is_refused_before_writing(tmp_path, capsys, monkeypatch):
    argv = _pair(tmp_path)
    (tmp_path / "cmp").mkdir()
    os.mkfifo(tmp_path / "cmp" / "comparison.md")
    line = _exit_2(["compare", *argv], capsys, monkeypatch, tmp_path)
    assert "named pipe" in line and stat.S_ISFIFO(os.lstat(tmp_path / "cmp" / "comparison.md").st_mode)


def test_plot_path_as_a_pipe_is_refused(tmp_path, capsys, monkeypatch):
    argv = [a for a in _pair(tmp_path) if a != "--no-plots"]
    (tmp_path / "cmp").mkdir()
    os.mkfifo(tmp_path / "cmp" / "compare_time.png")
    line = _exit_2(["compare", *argv], capsys, monkeypatch, tmp_path)
    assert "named pipe" in line and stat.S_ISFIFO(os.lstat(tmp_path / "cmp" / "compare_time.png").st_mode)


def test_write_atomic_keeps_links_and_refuses_devices(tmp_path):
    (tmp_path / "t").write_text("old")
    os.symlink(tmp_path / "t", tmp_path / "l")
    results.write_atomic(str(tmp_path / "l"), "new")
    assert os.path.islink(tmp_path / "l") and (tmp_path / "t").read_text() == "new"
    os.symlink("/dev/null", tmp_path / "null")
    os.mkfifo(tmp_path / "p")
    for name in ("null", "p"):
        with pytest.raises(OSError, match="not a regular file"):
            results.write_atomic(str(tmp_path / name), "x")
    assert os.readlink(tmp_path / "null") == "/dev/null" and stat.S_ISFIFO(os.lstat(tmp_path / "p").st_mode)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]


def test_read_bytes_stops_at_the_limit(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 100)
    assert safe_files.read_bytes(str(tmp_path / "f"), 100) == b"x" * 100
    with pytest.raises(safe_files.FileTooLarge):
        safe_files.read_bytes(str(tmp_path / "f"), 99)


def test_appending_a_cell_to_a_pipe_fails_at_once(tmp_path):
    os.mkfifo(tmp_path / "cells.jsonl")
    with pytest.raises(OSError, match="cannot append cell"):
        results.append_cell(str(tmp_path), {"name": "x"})
