"""The repository as a newcomer meets it: README's package table is the import-linter contract,
every package says its job in one line, every link resolves inside the repository, every
results folder says what produced it, and no path is named after a work item.

README's "How it is built" table is generated from pyproject.toml's layers contract and the
packages' docstrings: `python3 tests/pure/test_repository_readme.py --write` rewrites it after a change.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = "agrs_bench"
BEGIN = "<!-- layers: generated from pyproject.toml by `python3 tests/pure/test_repository_readme.py --write` -->"
END = "<!-- end of layers -->"
# Run directories of one's own (git-ignored) are not part of the repository's results.
IGNORED_RESULTS = {"runs", "ab", "nightly", "comparisons"}


def _read(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def contract_layers() -> list[list[str]]:
    """The layers of pyproject's import-linter contract, top floor first, each a list of modules."""
    contracts = tomllib.loads(_read("pyproject.toml"))["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return [[name.strip() for name in re.split(r"[|:]", floor)] for floor in layers]


def _source_of(module: str) -> str:
    """Repository path of a module or package ('agrs_bench.gate' -> 'agrs_bench/gate')."""
    path = module.replace(".", "/")
    return path if os.path.isdir(os.path.join(ROOT, path)) else path + ".py"


def docstring(module: str) -> str | None:
    path = _source_of(module)
    if os.path.isdir(os.path.join(ROOT, path)):
        path = os.path.join(path, "__init__.py")
    return ast.get_docstring(ast.parse(_read(path)))


def summary(module: str) -> str:
    return next(iter((docstring(module) or "").splitlines()), "").strip()


def layers_table() -> str:
    layers = contract_layers()
    rows = [BEGIN, "| floor | package | job |", "| --- | --- | --- |"]
    for floor, modules in zip(range(len(layers), 0, -1), layers):
        for module in modules:
            short = module.removeprefix(PACKAGE + ".")
            rows.append(f"| {floor} | [`{short}`]({_source_of(module)}) | {summary(module)} |")
    rows.append(END)
    return "\n".join(rows)


def readme_table() -> str:
    text = _read("README.md")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def top_level_modules() -> set[str]:
    names = set()
    for entry in os.listdir(os.path.join(ROOT, PACKAGE)):
        path = os.path.join(ROOT, PACKAGE, entry)
        if entry.endswith(".py") and entry != "__init__.py":
            names.add(f"{PACKAGE}.{entry[:-3]}")
        elif os.path.isfile(os.path.join(path, "__init__.py")):
            names.add(f"{PACKAGE}.{entry}")
    return names


def test_readme_lists_the_contract_layers_in_order():
    assert readme_table() == layers_table(), (
        "README's package table differs from pyproject's import-linter layers or the docstrings: "
        "run `python3 tests/pure/test_repository_readme.py --write`")


def test_every_module_of_the_package_sits_on_a_floor():
    on_floors = {m for floor in contract_layers() for m in floor}
    assert top_level_modules() == on_floors


def test_every_package_on_a_floor_says_its_job_in_one_line():
    for module in (m for floor in contract_layers() for m in floor):
        doc = docstring(module)
        assert doc, f"{module} has no docstring"
        lines = doc.splitlines()
        assert lines[0].strip() and (len(lines) == 1 or not lines[1].strip()), (
            f"{module}: the docstring's first line must be the whole summary, then a blank line")


def _markdown_files() -> list[str]:
    """README.md, every page under docs/, and the README of every results folder."""
    docs = [os.path.relpath(os.path.join(folder, n), ROOT)
            for folder, _, names in os.walk(os.path.join(ROOT, "docs")) for n in names if n.endswith(".md")]
    readmes = [os.path.join(folder, "README.md") for folder in _result_folders()
               if os.path.isfile(os.path.join(ROOT, folder, "README.md"))]
    return ["README.md", *docs, *readmes]


def test_every_link_resolves_inside_the_repository():
    broken = []
    for md in _markdown_files():
        for n, line in enumerate(_read(md).splitlines(), 1):
            for m in re.finditer(r"\]\(([^)#\s]+)|`(\.\./[^`\s]+)`", line):
                target = m.group(1) or m.group(2)
                if "://" in target or target.startswith("mailto:"):
                    continue
                path = os.path.realpath(os.path.join(ROOT, os.path.dirname(md), target))
                inside = path == ROOT or path.startswith(ROOT + os.sep)
                if not (inside and os.path.exists(path)):
                    broken.append(f"{md}:{n}: {target}")
    assert not broken, "links that do not resolve inside the repository:\n" + "\n".join(broken)


def _result_folders() -> list[str]:
    found = []
    for folder, dirs, _ in os.walk(os.path.join(ROOT, "results")):
        if os.path.samefile(folder, os.path.join(ROOT, "results")):
            dirs[:] = [d for d in dirs if d not in IGNORED_RESULTS]
        dirs[:] = [d for d in dirs if d != "plots"]  # a run's plots are described with the run
        found.append(os.path.relpath(folder, ROOT))
    return found


def test_every_results_folder_has_a_readme_or_is_named_in_its_parents():
    """A folder holds a README naming command and commit, or is a run directory that the README
    of an enclosing folder names."""
    missing = []
    for folder in _result_folders():
        if os.path.isfile(os.path.join(ROOT, folder, "README.md")):
            text = _read(os.path.join(folder, "README.md"))
            if folder != "results" and not re.search(r"\bcommit\b", text):
                missing.append(f"{folder}/README.md names no commit")
            continue
        name, parent = os.path.basename(folder), os.path.dirname(folder)
        while parent and not os.path.isfile(os.path.join(ROOT, parent, "README.md")):
            name, parent = os.path.join(os.path.basename(parent), name), os.path.dirname(parent)
        if not parent or name.split(os.sep)[0] not in _read(os.path.join(parent, "README.md")):
            missing.append(f"{folder} has no README and no enclosing README names it")
    assert not missing, "\n".join(missing)


def test_no_path_is_named_after_a_work_item():
    named = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "build")
                   and not d.endswith(".egg-info")
                   and not (os.path.basename(folder) == "results" and d in IGNORED_RESULTS)]
        named += [os.path.relpath(os.path.join(folder, n), ROOT) for n in dirs + files
                  if re.search(r"issue[-_ ]?[0-9]", n, re.IGNORECASE)]
    assert not named, named



def test_ruff_excludes_only_top_level_folders():
    # A bare name ("results") excludes every folder of that name, agrs_bench/results/ included.
    excluded = tomllib.loads(_read("pyproject.toml"))["tool"]["ruff"].get("extend-exclude", [])
    assert all(p.startswith(("./", "/")) for p in excluded), excluded


def test_no_test_only_code_in_the_package():
    # Faults are injected by tests/support/fault_entry.py, which wraps the package's functions.
    found = []
    for folder, _, files in os.walk(os.path.join(ROOT, "agrs_bench")):
        for name in files:
            if name.endswith(".py"):
                text = _read(os.path.relpath(os.path.join(folder, name), ROOT))
                found += [f"{name}: {hit}" for hit in re.findall(
                    r".*(?:test hook|for tests only|AGRS_BENCH_TEST_|exists for tests).*", text, re.IGNORECASE)]
    assert not found, found


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python3 tests/pure/test_repository_readme.py --write")
    updated = _read("README.md").replace(readme_table(), layers_table())
    with open(os.path.join(ROOT, "README.md"), "w", encoding="utf-8") as f:
        f.write(updated)
