"""report.md and plots read the interval fields and judge nothing themselves (synthetic documents)."""

import os
import re

from PIL import Image

from agrs_bench.render import figures, plots, report
from tests.support import synthetic

THROTTLED = {"telemetry": {"throttled": True, "throttle_reasons": ["sw_power_cap"]}}
SHORT = {"sample_short": True, "sample_s_min": 3.3e-5, "sample_s_target": 2e-3}


def _doc(**kwargs):
    kwargs.setdefault("buffers", ("dense", "expert"))
    kwargs.setdefault("sizes", (16 << 10, 1 << 20, 64 << 20))
    return synthetic.launch(speedup=1.3, step=True, **kwargs)


def _with_speedup_ci(doc, name, ci):
    for bench in doc["benchmarks"]:
        if bench["param"] == name:
            bench["extra_info"]["speedup_vs_single_comm_ci"] = ci
    return doc


def test_report_opens_with_the_answer_per_buffer_and_source():
    doc = _doc()
    text = report.render(doc)
    first = text.split("\n## ")[1]
    assert first.startswith("Does a separate AG communicator pay off?")
    rows = {line.split(" | ")[0].strip("| "): line for line in first.splitlines() if line.startswith("| dense")
            or line.startswith("| expert")}
    assert re.search(r"64MiB 1\.\d\d× \[1\.\d\d, 1\.\d\d\], p \S+", rows["dense"].split(" | ")[2])
    # ep = 1: the expert AG of pg_collection shares the RS communicator, whatever its samples say.
    assert "16KiB" in rows["expert"].split(" | ")[5] and rows["expert"].split(" | ")[2] == "-"
    assert "family-wise error at 5% over all 3 judged rows and sizes" in first


def test_every_figure_has_its_interval_and_no_effect_reads_no_difference():
    doc = _with_speedup_ci(_doc(), "ag_rs-dense-pg_collection-1MiB", [0.9, 1.5])
    text = report.render(doc)
    row = next(line for line in text.splitlines() if line.startswith("| ag_rs | dense | pg_collection | - | 1MiB"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert re.fullmatch(r"\S+ \[\S+, \S+\]", cells[6])       # median ms [95%]
    assert re.fullmatch(r"\S+ \[\S+, \S+\]", cells[7])       # busbw [95%]
    assert re.fullmatch(r"\S+ \[\S+, \S+\]", cells[9])       # overlap efficiency [95%]
    assert cells[10].endswith("[0.900, 1.50] no difference measured")
    step = next(line for line in text.splitlines() if line.startswith("| dense+expert | pg_collection"))
    assert step.count("[") == 3  # step time, exposed communication, compute slowdown


def test_old_file_without_intervals_prints_point_and_dash():
    text = report.render(_doc(ci_rel=None))
    row = next(line for line in text.splitlines() if line.startswith("| ag_rs | dense | pg_collection | - | 1MiB"))
    assert "[–]" in row and "no difference measured" not in row
    assert "holds no intervals" in text
    assert "no interval in the file" in text


def test_throttled_and_short_cells_are_marked_in_their_rows():
    doc = _doc(extra={"ag_rs-dense-pg_collection-1MiB": {**THROTTLED, **SHORT},
                      "fsdp_step-dense+expert-pg_collection-16MiB": THROTTLED})
    text = report.render(doc)
    row = next(line for line in text.splitlines() if line.startswith("| ag_rs | dense | pg_collection | - | 1MiB"))
    assert "⚠ throttled (sw_power_cap)" in row and "⚠ short samples (0.033 of 2.0 ms)" in row
    step = next(line for line in text.splitlines() if line.startswith("| dense+expert | pg_collection"))
    assert "⚠ throttled" in step
    answer = text.split("\n## ")[1]
    assert "1MiB 1.3" in answer and "× [" in answer and " ⚠" in answer


def test_header_says_dtype_iterations_ops_sample_layout_backend_gpu_commit():
    doc = _doc(extra={"ag-dense-single_comm-1MiB": SHORT})
    run = report.render(doc).split("## Run")[1].split("\n## ")[0]
    for needle in ("NVIDIA H100 80GB HBM3 x4", "backend nccl", "`tp1 cp1 ep1 etp1 pp1 dp4, order tp-cp-ep-dp-pp`",
                   "dtype: bf16", "iterations (rounds, samples per cell): 20", "ops per sample: 1-10",
                   "sample length: target 2.0 ms, shortest achieved 0.033 ms", "commit: synthetic0 (from git)"):
        assert needle in run, needle


def test_every_printed_column_is_defined():
    text = report.render(_doc())
    defined = text.split("## Columns")[1].split("\n## ")[0]
    for header in [line for line in text.splitlines() if line.startswith("| mode |") or line.startswith("| buffers |")]:
        for column in [c.strip() for c in header.strip("|").split("|")]:
            name = column.replace(" [95%]", "")
            assert f"**{name}**" in defined or f"**{name.split(' ')[0]}" in defined, name


def test_busbw_of_tiny_sizes_is_never_zero():
    text = report.render(synthetic.launch(sizes=(1024,), modes=("ag",)))
    row = next(line for line in text.splitlines() if line.startswith("| ag | dense | single_comm"))
    busbw = row.strip("|").split("|")[7].strip()
    assert not busbw.startswith("0.0 ") and float(busbw.split()[0]) > 0


def test_cpu_runs_are_marked_in_the_report_and_on_every_plot(tmp_path):
    doc = _doc(backend="gloo")
    assert plots.footer(doc) == figures.CPU_NOTE and plots.footer(_doc()) is None
    text = report.render(doc)
    assert f"**{figures.CPU_NOTE}**" in text.split("## Run")[1]
    written = plots.report_plots(doc, str(tmp_path))
    assert [t for t, _ in written] == ["Bus bandwidth", "Overlap efficiency", "Speedup vs single_comm",
                                       "ag_rs time", "fsdp_step"]
    for _, path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 100


def test_significant_digits():
    assert figures.sig(0.0123456) == "0.0123" and figures.sig(316.2) == "316" and figures.sig(1234.5) == "1234"
    assert figures.sig(1.234e-5) == "1.23e-05" and figures.sig(None) == "-"


def test_layout_in_megatron_notation():
    layout = dict(synthetic.LAYOUT, ep=2, dp=2, rank_offset=4)
    assert figures.layout_text(layout) == "tp1 cp1 ep2 etp1 pp1 dp2, order tp-cp-ep-dp-pp, rank offset 4"


def test_step_sources_are_compared_by_interval():
    doc = _doc()
    text = report.render(doc)
    assert "exposed communication of pg_collection" in text and "less than single_comm" in text
    for bench in doc["benchmarks"]:
        if bench["params"]["mode"] == "fsdp_step":
            bench["extra_info"]["exposed_comm_s_ci"] = [0.0, 0.01]
    assert "no difference measured (intervals overlap)" in report.render(doc)


def test_comparison_ratio_plot_has_a_legend_and_handles_one_launch(tmp_path):
    from agrs_bench.gate import verdicts as gate

    cells = gate.compare(synthetic.side(1, 0), synthetic.side(1, 5))
    written = plots.comparison_plots(cells, synthetic.launch(backend="gloo"), 0.05, str(tmp_path))
    assert [os.path.basename(p) for _, p in written] == ["compare_time.png", "compare_ratio.png"]


def test_flagged_cells_are_ringed_on_the_plots(tmp_path):
    doc = _doc(extra={"ag_rs-dense-pg_collection-1MiB": THROTTLED})
    series = plots._series(doc["benchmarks"], "ag_rs", lambda b: figures.figure(b, "speedup_vs_single_comm"))
    flagged = [(key, size) for key, points in series.items() for size, *_, bad in points if bad]
    assert flagged == [(("pg_collection", "dense"), 1 << 20)]
    assert plots.report_plots(doc, str(tmp_path))


def test_trace_overlap_column_appears_when_traced():
    assert "trace overlap" not in report.render(_doc()).split("## Collectives")[1]
    doc = _doc(extra={"ag_rs-dense-pg_collection-1MiB": {"trace_overlap_fraction": 0.8,
                                                        "trace_overlap_fraction_ci": [0.7, 0.9]}})
    text = report.render(doc)
    header = next(line for line in text.splitlines() if line.startswith("| mode |"))
    row = next(line for line in text.splitlines() if line.startswith("| ag_rs | dense | pg_collection | - | 1MiB"))
    assert "trace overlap [95%]" in header and "0.80 [0.70, 0.90]" in row
    assert header.count("|") == row.count("|")


def test_first_screen_says_complete_device_and_megatron_versions():
    doc = _doc(missing=("ag-dense-single_comm-1GiB",))
    doc["agrs_bench"].update(resumed_cells=7, megatron_core={"version": "0.16.1", "api": "global_state"})
    first = report.render(doc).split("\n## ")[0]
    assert "INCOMPLETE: 1 cell(s) missing" in first and "resumed: 7 cell(s)" in first
    assert "GPU: NVIDIA H100 80GB HBM3 x4" in first
    # The API megatron-core was called through, never the bare name of a source ("(global_state)").
    assert ("megatron-core: 0.16.1 (API: initialize_model_parallel(create_all_gather_group=True)); "
            "megatron-fsdp: not used") in first
    cpu = report.render(_doc(backend="gloo")).split("\n## ")[0]
    assert "- run: **complete**" in cpu and "CPU, 4 gloo rank(s)" in cpu


def test_cells_on_one_communicator_are_never_faster_or_slower_in_any_table():
    text = report.render(_doc())  # ep = 1: expert pg_collection shares its RS communicator
    rows = [line for line in text.splitlines() if line.startswith("| ag_rs | expert | pg_collection")]
    assert rows and all("identical by construction" in row for row in rows)


def test_no_interval_at_95_is_said_not_blamed_on_an_old_file():
    doc = synthetic.launch(num_samples=5)
    for bench in doc["benchmarks"]:  # as measures.py writes them for 5 rounds
        bench["extra_info"].update(median_ci_s=None, median_interval_coverage=None, busbw_gbps_ci=None)
    text = report.render(doc)
    assert "[none: too few rounds for 95%]" in text and "holds no intervals" not in text


def test_overlap_interval_wider_than_the_scale_says_nothing():
    f = figures.Figure(0.3, (-0.6, 0.9), 0.0, useful_width=1.0)
    assert figures.with_interval(f, digits=2).endswith(figures.TOO_WIDE)
