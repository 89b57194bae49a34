"""commit_info names the code: git checkout, else AGRS_BENCH_COMMIT, else the package, else unknown."""

import subprocess

import pytest

from agrs_bench.results import machine


def test_this_checkout_is_git():
    info = machine.commit_info()
    assert info["source"] == "git" and len(info["id"]) == 40
    assert isinstance(info["dirty"], bool) and info["branch"]


def test_a_fresh_git_checkout(tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "night", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m"],
                   check=True)
    info = machine.commit_info(str(tmp_path), {})
    assert info["source"] == "git" and info["branch"] == "night" and info["dirty"] is False
    same = machine.commit_info(str(tmp_path), {machine.COMMIT_ENV: info["id"][:7]})
    assert same["source"] == "git" and same["id"] == info["id"]
    (tmp_path / "f").write_text("y")
    assert machine.commit_info(str(tmp_path), {})["dirty"] is True
    # A copied tree whose .git is stale: the commit its copier named wins, the checkout's is kept.
    named = machine.commit_info(str(tmp_path), {machine.COMMIT_ENV: "b58193c"})
    assert named["source"] == "env" and named["id"] == "b58193c"
    assert named["git_checkout"] == {"id": info["id"], "dirty": True}


def test_a_tree_inside_another_repository_is_not_that_repository(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "copy").mkdir()
    info = machine.commit_info(str(tmp_path / "copy"), {machine.COMMIT_ENV: "abc123"})
    assert info["source"] == "env" and info["id"] == "abc123"


def test_no_git_uses_the_environment(tmp_path):
    info = machine.commit_info(str(tmp_path), {machine.COMMIT_ENV: " 0123abcd \n"})
    assert info == {"id": "0123abcd", "dirty": None, "project": "agrs_bench", "branch": None, "source": "env"}


def _installed():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agrs_bench")
    except PackageNotFoundError:  # a venv that runs the tree from PYTHONPATH only
        return None


def test_no_git_no_environment_uses_the_package(tmp_path):
    info = machine.commit_info(str(tmp_path), {})
    if _installed() is None:
        assert info["source"] == "unknown"
    else:
        assert info["source"] == "package" and info["version"] == _installed()
        assert info["id"] == f"agrs_bench {_installed()}"


def test_nothing_known(tmp_path, monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert machine.commit_info(str(tmp_path), {}) == {"id": None, "dirty": None, "project": "agrs_bench",
                                                      "source": "unknown"}


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_variable_is_no_commit(tmp_path, value):
    assert machine.commit_info(str(tmp_path), {machine.COMMIT_ENV: value})["source"] == \
        ("package" if _installed() else "unknown")
