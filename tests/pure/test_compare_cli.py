"""`python -m agrs_bench.compare` on synthetic launches written to disk: exit statuses and files."""

import json
import re

import pytest

from agrs_bench import compare
from tests.support import synthetic


def _write_side(tmp_path, name, docs):
    """A folder of run directories, as scripts/ab.sh writes it."""
    for i, doc in enumerate(docs):
        run = tmp_path / name / f"launch-{i}"
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps(doc))
    return str(tmp_path / name)


def _compare(tmp_path, base_docs, head_docs, *extra):
    base = _write_side(tmp_path, "base", base_docs)
    head = _write_side(tmp_path, "head", head_docs)
    return compare.main([base, head, "--out", str(tmp_path / "cmp"), "--no-plots", *extra])


def _one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    return err


def test_a_a_exits_0(tmp_path):
    assert _compare(tmp_path, synthetic.side(3, 0), synthetic.side(3, 100)) == 0
    text = (tmp_path / "cmp" / "comparison.md").read_text()
    assert text.startswith("## agrs_bench gate: PASS\n")


def test_regression_exits_1_and_lists_cells_first(tmp_path):
    assert _compare(tmp_path, synthetic.side(3, 0), synthetic.side(3, 100, scale=1.10)) == 1
    text = (tmp_path / "cmp" / "comparison.md").read_text()
    assert text.startswith("## agrs_bench gate: REGRESSED")
    assert text.index("### Changed cells") < text.index("| ag-dense-single_comm-1MiB |") < text.index("<details>")


def test_small_slowdown_exits_0(tmp_path):
    assert _compare(tmp_path, synthetic.side(3, 0), synthetic.side(3, 100, scale=1.02)) == 0


def test_noisy_slowdown_exits_0_and_is_reported(tmp_path):
    kwargs = {"noise": 0.4, "modes": ("ag_rs",)}
    assert _compare(tmp_path, synthetic.side(3, 0, **kwargs), synthetic.side(3, 100, scale=1.08, **kwargs)) == 0
    text = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "6 cell(s) too noisy to judge" in text and "### Changed cells" not in text


def test_speedup_exits_0_improved(tmp_path, capsys):
    assert _compare(tmp_path, synthetic.side(3, 0), synthetic.side(3, 100, scale=0.9)) == 0
    assert "PASS (improved)" in capsys.readouterr().out


def test_threshold_flag_widens_the_band(tmp_path):
    assert _compare(tmp_path, synthetic.side(3, 0), synthetic.side(3, 100, scale=1.10), "--threshold", "20") == 0


def test_mismatched_gpu_count_exits_3(tmp_path, capsys):
    assert _compare(tmp_path, synthetic.side(2), synthetic.side(2, 10, world_size=2)) == 3
    _one_line_error(capsys, "GPU count differs")


def test_allow_mismatch_compares_and_warns(tmp_path):
    assert _compare(tmp_path, synthetic.side(2), synthetic.side(2, 10, gpu_name="NVIDIA H200"),
                    "--allow-mismatch") == 0
    assert "allowed by --allow-mismatch: GPU model differs" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_incomplete_launch_is_said(tmp_path):
    head = synthetic.side(2, 10)
    head[1] = synthetic.launch(seed=11, missing=("fsdp_step-dense-single_comm-64MiB",))
    assert _compare(tmp_path, synthetic.side(2), head) == 0
    assert "INCOMPLETE" in (tmp_path / "cmp" / "comparison.md").read_text()


@pytest.mark.parametrize("content, needle", [
    ('{"machine_info": {}, "benchm', "not valid JSON"),
    ('{"benchmarks": []}', "no 'machine_info' key"),
    ("[1, 2]", "top level is list"),
    ("", "file is empty"),
])
def test_truncated_or_foreign_json_exits_2_one_line(tmp_path, capsys, content, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    good = _write_side(tmp_path, "good", synthetic.side(1))
    with pytest.raises(SystemExit) as exc:
        compare.main([good, str(bad), "--out", str(tmp_path / "cmp")])
    assert exc.value.code == 2
    _one_line_error(capsys, needle)


def test_missing_run_and_bad_threshold_exit_2(tmp_path, capsys):
    good = _write_side(tmp_path, "good", synthetic.side(1))
    with pytest.raises(SystemExit) as exc:
        compare.main([good, str(tmp_path / "nowhere")])
    assert exc.value.code == 2
    _one_line_error(capsys, "nowhere")
    with pytest.raises(SystemExit) as exc:
        compare.main([good, good, "--threshold", "five"])
    assert exc.value.code == 2
    _one_line_error(capsys, "'five'")


def test_export_github_benchmark(tmp_path):
    out = tmp_path / "bench.json"
    assert _compare(tmp_path, synthetic.side(2), synthetic.side(3, 10), "--export-github-benchmark", str(out)) == 0
    entries = json.loads(out.read_text())
    assert len(entries) == len(synthetic.side(1)[0]["benchmarks"])
    for entry in entries:
        assert set(entry) == {"name", "unit", "value", "range", "extra"}
        assert entry["unit"] == "ms" and entry["value"] > 0 and entry["range"].startswith("±")
        assert entry["name"].endswith(" (NVIDIA H100 80GB HBM3 x4)")
    assert entries[0]["extra"].startswith("3 launch(es), 60 samples")


def test_export_needs_no_baseline_and_range_is_the_interval_half_width(tmp_path, capsys):
    from agrs_bench.gate import export, verdicts

    head = synthetic.side(3, 10)
    out = tmp_path / "bench.json"
    assert export.main([_write_side(tmp_path, "head", head), "--out", str(out)]) == 0
    entry = json.loads(out.read_text())[0]
    launches = verdicts.launches_by_cell(head)[next(iter(verdicts.launches_by_cell(head)))]
    value_s, (low, high) = verdicts.center_interval(launches)
    assert entry["value"] == pytest.approx(value_s * 1e3)
    assert float(entry["range"].lstrip("± ")) == pytest.approx((high - low) / 2 * 1e3, rel=1e-5)
    one = export.github_benchmark(synthetic.side(1, 10, num_samples=5))
    assert all("range" not in e and "no 95% interval" in e["extra"] for e in one)


def test_no_common_cell_exits_3(tmp_path, capsys):
    base = synthetic.side(2, 0, modes=("ag",))
    head = synthetic.side(2, 50, modes=("rs",))
    assert _compare(tmp_path, base, head) == 3
    _one_line_error(capsys, "share no cell")


def test_head_missing_cells_exits_3_unless_allowed(tmp_path, capsys):
    base = synthetic.side(2, 0, modes=("ag", "rs"))
    head = synthetic.side(2, 50, modes=("ag",))
    assert _compare(tmp_path, base, head) == 3
    _one_line_error(capsys, "head lacks 6 cell(s) of base")
    assert _compare(tmp_path / "again", base, head, "--allow-mismatch") == 0


FORTY = {"modes": ("ag", "rs"), "sizes": synthetic.FORTY_CELL_SIZES}


def test_one_regressed_cell_of_forty_exits_1(tmp_path):
    name = "ag-dense-single_comm-8MiB"
    assert _compare(tmp_path, synthetic.side(3, 0, noise=0.01, **FORTY),
                    synthetic.side(3, 100, noise=0.01, scale={name: 1.10}, **FORTY)) == 1
    text = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "1 regressed" in text and f"| {name} |" in text.split("### Changed cells")[1].split("<details>")[0]


def test_a_a_at_forty_percent_noise_exits_0(tmp_path):
    kwargs = {"noise": 0.4, "launch_offset": 0.2, **FORTY}
    assert _compare(tmp_path, synthetic.side(3, 0, **kwargs), synthetic.side(3, 100, **kwargs)) == 0


def _rows(text):
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith(("| cell ", "| --- "))]


@pytest.mark.parametrize("scale,noise", [(1.0, 0.4), ({"ag-dense-single_comm-8MiB": 1.3,
                                                       "rs-dense-pg_collection-1MiB": 1.2}, 0.01)])
def test_comparison_md_pastes_into_a_pr(tmp_path, scale, noise):
    """Noisy or regressed, 40 cells: a short summary before the folded table, no absolute path,
    and base ms / head ms point the same way as head/base on every row."""
    _compare(tmp_path, synthetic.side(3, 0, noise=noise, **FORTY),
             synthetic.side(3, 100, noise=noise, scale=scale, **FORTY))
    text = (tmp_path / "cmp" / "comparison.md").read_text()
    summary, folded = text.split("<details>")
    assert len(summary.splitlines()) < 60
    assert str(tmp_path) not in text and not re.search(r"`/|\(/", text)
    rows = _rows(folded)
    assert len(rows) == 40
    for row in rows:
        base_ms, head_ms, ratio = float(row[1]), float(row[2]), float(row[3])
        assert (head_ms > base_ms) == (ratio > 1) or head_ms == base_ms
        assert head_ms / base_ms == pytest.approx(ratio, rel=2e-3)
    assert "0.0%" not in summary.split("flag no cell")[-1].split("\n")[0]


def test_paths_are_relative_to_the_repository_or_cut_to_their_last_parts(tmp_path):
    from agrs_bench.gate import markdown

    assert markdown.display_path(str(tmp_path / "repo" / "results" / "x" / "results.json"),
                                 str(tmp_path / "repo")) == "results/x"
    assert markdown.display_path("/tmp/abc123/head/launch-0/results.json", str(tmp_path)) == "…/head/launch-0"


@pytest.mark.parametrize("quiet, says", [(0.0, "flag no cell even at a threshold of 0.1%"),
                                         (0.999, "flag some cell at every threshold up to 99.9%"),
                                         (0.123, "would flag no cell at a threshold of 12.3% or more")])
def test_threshold_sentence_says_only_what_the_search_supports(quiet, says):
    from agrs_bench.gate import markdown

    c = markdown.Comparison(verdict="unchanged", cells=[object()], threshold=0.05, base=[], head=[],
                            base_origins=[], head_origins=[], quiet_threshold=quiet)
    assert says in markdown.quiet_sentence(c)


def test_a_gloo_side_says_at_the_top_that_cpu_timings_mean_nothing(tmp_path):
    _compare(tmp_path, synthetic.side(3, 0, backend="gloo"), synthetic.side(3, 100, backend="gloo"),
             "--allow-mismatch")
    head = (tmp_path / "cmp" / "comparison.md").read_text().splitlines()[:4]
    assert any("CPU/gloo: timings are not meaningful" in line and "base and head" in line for line in head)
    _compare(tmp_path / "gpu", synthetic.side(3, 0), synthetic.side(3, 100))
    assert "CPU/gloo" not in (tmp_path / "gpu" / "cmp" / "comparison.md").read_text()
