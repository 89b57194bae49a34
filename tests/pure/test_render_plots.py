"""Report and comparison plots: written, non-empty, each opens as an image (real CPU runs:
tests/gloo/test_render_plots.py)."""

import os

import pytest
from PIL import Image

from agrs_bench.render import plots, report
from tests.support import synthetic


def _assert_images(paths):
    assert paths
    for path in paths:
        assert os.path.getsize(path) > 0, path
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 100


def test_report_plots_of_synthetic_doc(tmp_path):
    written = plots.report_plots(synthetic.launch(), str(tmp_path))
    titles = [title for title, _ in written]
    assert titles == ["Bus bandwidth", "Overlap efficiency", "Speedup vs single_comm", "ag_rs time"]  # no fsdp_step
    _assert_images([path for _, path in written])


def test_subtitle_names_card_count_layout_date():
    text = plots.subtitle(synthetic.launch())
    for needle in ("NVIDIA H100 80GB HBM3", "x4", "dp4", "tp-cp-ep-dp-pp", "2026-01-01"):
        assert needle in text


def test_report_cli_bad_dir_exits_2(tmp_path):
    with pytest.raises(SystemExit) as exc:
        report.main([str(tmp_path)])
    assert exc.value.code == 2


def test_every_source_has_its_own_colour():
    from agrs_bench.render.plots import SOURCE_COLORS
    from agrs_bench.vocab import SOURCES

    assert set(SOURCES) <= set(SOURCE_COLORS)
    assert len(set(SOURCE_COLORS.values())) == len(SOURCE_COLORS)


def test_every_plot_names_its_commit_and_comparison_plots_both_sides():
    doc = synthetic.launch()
    assert "commit synthetic0" in plots.subtitle(doc)
    assert "base a1, b2 vs head c3" in plots.subtitle(doc, "base a1, b2 vs head c3")


def test_overlap_axis_has_lines_at_0_and_1_and_clips_useless_intervals(tmp_path):
    plt = plots._pyplot()
    fig, ax = plt.subplots()
    clipped = plots._overlap_axis(ax, {("pg_collection", "dense"): [(1 << 20, 0.4, -12.0, 10.0, False)]})
    assert clipped and ax.get_ylim() == plots.OVERLAP_LIMITS
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()) == [0.0, 1.0]
    plt.close(fig)


def test_value_axis_stays_linear_unless_the_range_needs_log():
    plt = plots._pyplot()
    fig, (narrow, wide) = plt.subplots(1, 2)
    plots._value_axis(narrow, {("a", "dense"): [(1, 1.0, 0, 0, False), (2, 3.0, 0, 0, False)]},
                      log_allowed=True, scale=1.0)
    plots._value_axis(wide, {("a", "dense"): [(1, 0.01, 0, 0, False), (2, 3.0, 0, 0, False)]},
                      log_allowed=True, scale=1.0)
    assert narrow.get_yscale() == "linear" and wide.get_yscale() == "log"
    plt.close(fig)


def _spy_on_save(monkeypatch):
    """{file name: (title, the figure's axes)} of every plot written, read before it is closed."""
    seen = {}
    real = plots._save

    def spy(fig, title, doc, path, **kwargs):
        seen[os.path.basename(path)] = (title, [(ax.get_xscale(), ax.get_xlim(), [line.get_label()
                                                 for line in ax.get_lines()]) for ax in fig.axes])
        return real(fig, title, doc, path, **kwargs)
    monkeypatch.setattr(plots, "_save", spy)
    return seen


def test_speedup_plot_leaves_out_cells_identical_by_construction(tmp_path, monkeypatch):
    seen = _spy_on_save(monkeypatch)
    plots.report_plots(synthetic.launch(buffers=("dense", "expert")), str(tmp_path))  # ep = 1
    title, axes = seen["speedup.png"]
    labels = {label for _, _, lines in axes for label in lines}
    assert "pg_collection dense" in labels
    assert not labels & {"pg_collection expert", "single_comm dense", "single_comm expert"}, labels
    assert "identical by construction" in title and "pg_collection expert" in title


def test_ratio_plot_goes_log_and_cuts_an_interval_reaching_a_million(tmp_path, monkeypatch):
    from types import SimpleNamespace
    seen = _spy_on_save(monkeypatch)
    cells = [SimpleNamespace(name="a", verdict="noisy", ratio=1.03, ci_low=6e-7, ci_high=1.67e6),
             SimpleNamespace(name="b", verdict="unchanged", ratio=1.0, ci_low=0.98, ci_high=1.02)]
    plots._ratio_figure(cells, synthetic.launch(), 0.05, str(tmp_path / "ratio.png"), "base x vs head y")
    title, ((scale, (low, high), _),) = seen["ratio.png"]
    assert scale == "log" and 1 / plots.RATIO_CUT <= low and high <= plots.RATIO_CUT
    assert "axis cut" in title


def test_one_size_gets_a_real_x_range():
    plt = plots._pyplot()
    fig, ax = plt.subplots()
    plots._size_axis(ax, [16 << 10])
    low, high = ax.get_xlim()
    assert low < 16 << 10 < high and high / low > 2
    plt.close(fig)
