"""The tests as a newcomer meets them: every test file sits in its tier's folder (pure, gloo, gpu)
and is named by the package or module it tests, `test_<package>_<topic>.py`, so the folder says how
a test runs and the name says where the code it checks lives. The folder is the tier marker
(tests/conftest.py), so no test file marks a tier itself, its own or another."""

import os
import re

import agrs_bench
from tests.conftest import TESTS, TIERS_THAT_START_PROCESSES, tier_of

TIERS = ("pure", "gloo", "gpu")
# What spans packages: every command's input handling, the shell scripts, the benchmarks/ suite,
# README and docs, the repository's own rules.
CROSS_CUTTING = ("commands", "scripts", "benchmarks", "docs", "repository")
TIER_MARK = re.compile(r"pytest\.mark\.(gloo|gpu)\b")


def _packages_and_modules() -> set[str]:
    root = os.path.dirname(agrs_bench.__file__)
    names = set()
    for entry in os.listdir(root):
        if os.path.isfile(os.path.join(root, entry, "__init__.py")):
            names.add(entry)
        elif entry.endswith(".py") and not entry.startswith("_"):
            names.add(entry[:-3])
    return names


def _test_files():
    for folder, _, files in os.walk(TESTS):
        for name in files:
            if name.startswith("test_") and name.endswith(".py"):
                yield os.path.relpath(os.path.join(folder, name), TESTS)


def test_every_test_file_is_in_a_tier_folder():
    outside = [path for path in _test_files() if path.split(os.sep)[0] not in TIERS or path.count(os.sep) != 1]
    assert not outside, f"test files outside tests/pure, tests/gloo, tests/gpu: {outside}"


def test_every_test_file_is_named_by_what_it_tests():
    allowed = _packages_and_modules() | set(CROSS_CUTTING)
    misnamed = []
    for path in _test_files():
        stem = os.path.basename(path)[len("test_"):-len(".py")]
        if not any(stem == name or stem.startswith(name + "_") for name in allowed):
            misnamed.append(path)
    assert not misnamed, (f"test files not named test_<package>_<topic>.py: {misnamed}; "
                          f"prefixes: {sorted(allowed)}")


def test_no_test_file_marks_a_tier():
    marking = []
    for path in _test_files():
        with open(os.path.join(TESTS, path), encoding="utf-8") as f:
            marks = set(TIER_MARK.findall(f.read()))
        if marks:
            marking.append(f"{path} marks {sorted(marks)}")
    assert not marking, f"the folder is the tier; remove the marks: {marking}"


def test_the_folder_marks_every_collected_test(request):
    """What collection did to this session's tests: a gloo/ or gpu/ test carries its tier's marker
    (so `-m gloo` selects it and the pure guard lets it start processes); a pure/ test carries none."""
    wrong = []
    for item in request.session.items:
        tier = tier_of(item.path) if item.path.is_relative_to(TESTS) else None
        marks = {t for t in TIERS_THAT_START_PROCESSES if item.get_closest_marker(t)}
        if marks != ({tier} if tier in TIERS_THAT_START_PROCESSES else set()):
            wrong.append(f"{item.nodeid} ({tier}) marked {sorted(marks)}")
    assert request.session.items and not wrong, wrong
