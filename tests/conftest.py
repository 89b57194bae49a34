"""Test tiers that mean what they say. A test's folder is its tier: tests/pure/, tests/gloo/ and
tests/gpu/ (helpers in tests/support/). Collection marks every test under gloo/ `gloo` and under
gpu/ `gpu`, so `pytest -m gloo` and `pytest tests/gloo` pick the same tests, and a test file
never marks its own tier. A pure test starts no process: the guard below makes every way of
starting one fail loudly inside it, so a process-starting test cannot slip into the pure tier
(`pytest -m "not gloo and not gpu"`, or `pytest tests/pure`)."""

from __future__ import annotations

import multiprocessing.process
import os
import pathlib
import subprocess

import pytest

TIERS_THAT_START_PROCESSES = ("gloo", "gpu")
TESTS = pathlib.Path(__file__).resolve().parent


def tier_of(path) -> str | None:
    """The tier folder a test file sits in (pure, gloo or gpu), or None outside them."""
    parts = pathlib.Path(path).resolve().relative_to(TESTS).parts
    return parts[0] if len(parts) > 1 and parts[0] in ("pure", *TIERS_THAT_START_PROCESSES) else None


def pytest_collection_modifyitems(items):
    for item in items:
        tier = tier_of(item.path) if item.path.is_relative_to(TESTS) else None
        if tier in TIERS_THAT_START_PROCESSES:
            item.add_marker(tier)


class PureTierStartedAProcess(AssertionError):
    pass


@pytest.fixture(scope="session", autouse=True)
def _font_cache_outside_the_tests():
    """matplotlib asks `fc-list` once, the first time it needs its font cache (a fresh venv):
    build it here, before any test, so that a pure plotting test starts no process itself."""
    from matplotlib import font_manager

    font_manager.findfont("DejaVu Sans")


# Programs that start no torch and take milliseconds: git (commit_info reads the checkout through
# it), mount and umount (a tiny tmpfs stands in for a full disk).
PROGRAMS_PURE_TESTS_MAY_RUN = frozenset({"git", "mount", "umount"})


@pytest.fixture(autouse=True)
def _pure_tests_start_no_process(request, monkeypatch):
    if any(request.node.get_closest_marker(tier) for tier in TIERS_THAT_START_PROCESSES):
        yield
        return

    def refuse(*args, **kwargs):
        raise PureTierStartedAProcess(
            f"{request.node.nodeid} starts a process but is a pure test: move it to tests/gloo/ or "
            "tests/gpu/ (and start it through tests/support/launch.py), or keep it in-process")

    class RefusedPopen(subprocess.Popen):
        def __init__(self, args, *rest, **kwargs):
            program = args[0] if isinstance(args, (list, tuple)) else str(args).split()[0]
            if os.path.basename(str(program)) not in PROGRAMS_PURE_TESTS_MAY_RUN:
                refuse()
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", RefusedPopen)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp", "execv", "execve"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)
    yield


@pytest.fixture
def tmpfs(tmp_path):
    """`tmpfs(size)` mounts a tmpfs of `size` (e.g. "64k") under tmp_path and returns it: a disk
    that fills up. Skips where mounting is not permitted; unmounted after the test."""
    mounted = []

    def mount(size: str):
        path = tmp_path / f"tmpfs-{size}"
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)
