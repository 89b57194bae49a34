"""A launch counts once: the gate and `baseline` refuse one launch given twice, however its path
is spelled (a trailing slash, results.json, `./`, a symbolic link, a copy), and a results.json
that holds one cell twice. Faking replicates must fail to fake them; an honest comparison keeps
its verdict."""

import json
import os
import shutil

import pytest

from agrs_bench import compare
from agrs_bench.config.cli import parse_run_args
from agrs_bench.results import baseline, launches, rundir, schema
from agrs_bench.results import files as results
from tests.support import synthetic

R_DOC = synthetic.launch(seed=0)
H_DOC = synthetic.launch(seed=0, scale=1.10)  # R with every sample x 1.10


def _run(tmp_path, name, doc):
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(doc))
    return str(folder)


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root)
                  for f in files + dirs)


def _gate(argv, capsys):
    try:
        status = compare.main([*argv, "--no-plots"])
    except SystemExit as stop:
        status = stop.code
    return status, capsys.readouterr().err.strip().splitlines()


def test_honest_comparison_passes(tmp_path, capsys):
    r, h = _run(tmp_path, "R", R_DOC), _run(tmp_path, "H", H_DOC)
    status, err = _gate([r, h, "--out", str(tmp_path / "cmp")], capsys)
    assert status == 0, err


@pytest.mark.parametrize("spell", [
    lambda r: [r, r, r],
    lambda r: [r, r + "/", r + "/results.json", r + "/./"],
    lambda r: [r, os.path.join(r, "..", os.path.basename(r))],
    lambda r: [r, "LINK"],
    lambda r: [r, "COPY"],
    lambda r: [r, "COPY_NEW_ID"],
    lambda r: [r, "SHUFFLED"],
    lambda r: [r, "ONE_CELL"],
], ids=["thrice", "spellings", "dotdot", "link", "copy", "copy with a new id", "samples shuffled",
        "one cell kept"])
def test_repeating_a_launch_cannot_fake_replicates(spell, tmp_path, capsys):
    r = _run(tmp_path, "R", R_DOC)
    h = _run(tmp_path, "H", H_DOC)
    os.symlink(r, tmp_path / "LINK")
    shutil.copytree(r, tmp_path / "COPY")
    _run(tmp_path, "COPY_NEW_ID", dict(R_DOC, agrs_bench={**R_DOC["agrs_bench"], "launch_id": "a" * 32}))
    shuffled = json.loads(json.dumps(R_DOC))
    for bench in shuffled["benchmarks"]:
        bench["stats"]["data"].reverse()
    _run(tmp_path, "SHUFFLED", shuffled)
    _run(tmp_path, "ONE_CELL", dict(R_DOC, benchmarks=R_DOC["benchmarks"][5:6]))
    fakes = ("LINK", "COPY", "COPY_NEW_ID", "SHUFFLED", "ONE_CELL")
    names = [str(tmp_path / p) if p in fakes else p for p in spell(r)]
    before = _tree(tmp_path)
    status, err = _gate([",".join(names), h, "--out", str(tmp_path / "cmp")], capsys)
    assert status == 2 and len(err) == 1 and "the same launch is given twice in base" in err[0], err
    assert _tree(tmp_path) == before
    status, err = _gate([h, ",".join(names), "--out", str(tmp_path / "cmp")], capsys)
    assert status == 2 and "in head" in err[0]


def test_one_launch_on_both_sides_is_refused(tmp_path, capsys):
    r = _run(tmp_path, "R", R_DOC)
    status, err = _gate([r, r + "/", "--out", str(tmp_path / "cmp")], capsys)
    assert status == 2 and "in base and in head" in err[0], err


def test_same_id_different_samples_is_one_launch(tmp_path, capsys):
    ident = {"launch_id": "b" * 32}
    r = _run(tmp_path, "R", dict(R_DOC, agrs_bench={**R_DOC["agrs_bench"], **ident}))
    s = _run(tmp_path, "S", dict(synthetic.launch(seed=5), agrs_bench={**R_DOC["agrs_bench"], **ident}))
    status, err = _gate([f"{r},{s}", _run(tmp_path, "H", H_DOC), "--out", str(tmp_path / "cmp")], capsys)
    assert status == 2 and f"launch id {'b' * 32}" in err[0], err


def test_baseline_refuses_one_launch_three_times(tmp_path):
    r = _run(tmp_path, "R", R_DOC)
    with pytest.raises(SystemExit) as info:
        baseline.main([f"{r},{r}/,{r}/results.json", "x", "--dir", str(tmp_path / "b")])
    assert info.value.code == 2 and not (tmp_path / "b").exists()


def test_distinct_launches_still_make_a_baseline(tmp_path):
    runs = ",".join(_run(tmp_path, f"L{k}", synthetic.launch(seed=k)) for k in range(3))
    assert os.path.isdir(baseline.keep(runs, "x", root=str(tmp_path / "b")))


def test_a_cell_twice_in_one_file_is_refused(tmp_path, capsys):
    doc = json.loads(json.dumps(R_DOC))
    doc["benchmarks"].append(doc["benchmarks"][2])
    with pytest.raises(schema.SchemaError, match=r"benchmarks\[2\] and benchmarks\[18\] are the same cell"):
        schema.validate(doc, "x")
    status, err = _gate([_run(tmp_path, "D", doc), _run(tmp_path, "H", H_DOC), "--out", str(tmp_path / "c")], capsys)
    assert status == 2 and "benchmarks[2] and benchmarks[18]" in err[0]


def test_files_without_cells_have_no_identity():
    assert launches.identities(dict(R_DOC, benchmarks=[])) == []


@pytest.mark.parametrize("bad", ["", "A" * 32, "a" * 31, "../../etc", 7, None])
def test_a_launch_id_is_32_hex_digits(bad):
    with pytest.raises(schema.SchemaError, match="launch_id"):
        schema.validate(dict(R_DOC, agrs_bench={**R_DOC["agrs_bench"], "launch_id": bad}), "x")


def test_every_run_records_a_new_launch_id(tmp_path):
    ids = []
    for k in range(2):
        cfg = parse_run_args(["--sizes", "4KiB", "--out", str(tmp_path / f"run{k}")], world_size=2, backend="gloo")
        lock = rundir.prepare_run_dir(cfg)
        results.write_run(cfg.out_dir, results.build_document(
            [], machine_info={}, commit_info={}, config=cfg.record(), missing_cells=[], started_utc="x"))
        lock.release()
        config_id = json.loads((tmp_path / f"run{k}" / "config.json").read_text())["launch_id"]
        assert schema.load(str(tmp_path / f"run{k}" / "results.json"))["agrs_bench"]["launch_id"] == config_id
        ids.append(config_id)
    assert ids[0] != ids[1] and all(launches.LAUNCH_ID_RE.fullmatch(i) for i in ids)


def test_empty_run_csv_is_a_header(tmp_path):
    results.write_run(str(tmp_path), results.build_document(
        [], machine_info={}, commit_info={}, config={}, missing_cells=["x"], started_utc="x"))
    assert (tmp_path / "results.csv").read_text().startswith("mode,buffer,source,size_bytes")


def test_steady_cells_of_two_real_launches_may_coincide():
    """Few distinct ticks (a steady kernel, coarse events) are no proof of a copy; the whole file is."""
    one, two = json.loads(json.dumps(R_DOC)), json.loads(json.dumps(synthetic.launch(seed=9)))
    for doc in (one, two):
        doc["benchmarks"][0]["stats"]["data"] = [2.0e-3, 2.0005e-3, 2.0e-3]
    launches.refuse_repeats([("one", one, "base"), ("two", two, "base")])
    with pytest.raises(schema.SchemaError, match="samples in every cell"):
        launches.refuse_repeats([("one", one, "base"), ("copy", json.loads(json.dumps(one)), "base")])
