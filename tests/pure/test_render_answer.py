"""The report's answer decides only where a difference is possible, and holds its stated
family-wise error; median intervals hold their stated coverage. Pure (numbers only)."""

import math

import numpy as np
import pytest

from agrs_bench.analysis import stats
from agrs_bench.render import answer

LAYOUT = {"tp": 1, "cp": 1, "ep": 1, "etp": 1, "pp": 1, "dp": 4, "order": "tp-cp-ep-dp-pp"}


def _doc(rounds_by_cell, *, ep=1, shares=None, schema_version=2):
    """rounds_by_cell: {(buffer, source, size): samples}; shares: {(buffer, source): bool} recorded."""
    benches = []
    for (buffer, source, size), data in rounds_by_cell.items():
        extra = {"comparison": f"{buffer}-{size}-eager"}
        if shares is not None and (buffer, source) in shares:
            extra["ag_shares_rs_comm"] = shares[(buffer, source)]
        benches.append({"params": {"mode": "ag_rs", "buffer": buffer, "source": source, "size_bytes": size,
                                   "dtype": "bf16"},
                        "extra_info": extra, "stats": {"data": list(map(float, data))}})
    return {"benchmarks": benches, "machine_info": {"backend": "nccl", "layout": dict(LAYOUT, ep=ep)},
            "agrs_bench": {"schema_version": schema_version}}


def _cells(rng, sources, buffers=("dense", "expert"), sizes=(1 << 20, 8 << 20, 64 << 20), rounds=20,
           speedup=None):
    found = {}
    for buffer in buffers:
        for size in sizes:
            for source in ("single_comm",) + tuple(sources):
                factor = 1.0 if source == "single_comm" or speedup is None else 1 / speedup
                found[(buffer, source, size)] = factor * np.exp(rng.normal(0, 0.1, rounds))
    return found


def test_cells_on_the_rs_communicator_are_identical_by_construction_whatever_the_samples():
    rng = np.random.default_rng(0)
    cells = _cells(rng, ("global_state", "pg_collection"), speedup=3.0)  # a huge, spurious "speedup"
    rows = answer.rows_of(_doc(cells, ep=1))
    kinds = {(r.buffer, r.source): r.kind for r in rows}
    assert kinds[("expert", "global_state")] == kinds[("expert", "pg_collection")] == "identical"
    assert kinds[("dense", "pg_collection")] == "pays"
    text = "\n".join(answer.answer(_doc(cells, ep=1)))
    expert = [line for line in text.splitlines() if line.startswith("| expert")]
    assert expert and all(line.split(" | ")[2] == "-" and line.split(" | ")[4] == "-" for line in expert)
    assert answer.IDENTICAL in text


def test_ep_above_one_gives_pg_collection_its_own_expert_group_but_not_global_state():
    rows = answer.rows_of(_doc(_cells(np.random.default_rng(1), ("global_state", "pg_collection"), speedup=3.0),
                               ep=2))
    kinds = {(r.buffer, r.source): r.kind for r in rows}
    assert kinds[("expert", "global_state")] == "identical"
    assert kinds[("expert", "pg_collection")] == "pays"


def test_the_recorded_flag_wins_over_the_rule():
    cells = _cells(np.random.default_rng(2), ("pg_collection",), buffers=("dense",), speedup=3.0)
    rows = answer.rows_of(_doc(cells, shares={("dense", "pg_collection"): True}))
    assert {r.kind for r in rows} == {"identical"}


def test_unpaired_files_are_not_judged():
    cells = _cells(np.random.default_rng(3), ("pg_collection",), buffers=("dense",), speedup=3.0)
    assert {r.kind for r in answer.rows_of(_doc(cells, schema_version=1))} == {"open"}


@pytest.mark.parametrize("rounds", [6, 20])
def test_a_over_a_calls_anything_at_most_as_often_as_the_family_wise_rate(rounds):
    """Same distribution for every source: P(any row called pays off or slower) <= 5%."""
    rng = np.random.default_rng(4)
    reps = 200
    called = sum(any(r.kind in ("pays", "slower") for r in answer.rows_of(
        _doc(_cells(rng, ("global_state", "pg_collection"), rounds=rounds), ep=2))) for _ in range(reps))
    assert called / reps <= answer.FAMILY_ALPHA + 3 * math.sqrt(0.05 * 0.95 / reps)


def test_rank_coverage_matches_the_binomial_table():
    # Conover, Practical Nonparametric Statistics: n = 20, [x(6), x(15)] covers the median with 0.9586.
    assert stats.median_rank_coverage(20, 6) == pytest.approx(0.95861, abs=1e-5)
    assert stats.median_rank_coverage(5, 1) == pytest.approx(1 - 2 / 32)
    assert stats.min_samples_for(0.95) == 6


def test_too_few_samples_give_no_interval_rather_than_a_false_95():
    assert stats.median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None
    found = stats.median_interval([5.0, 1.0, 4.0, 2.0, 3.0, 6.0])
    assert (found.low, found.high) == (1.0, 6.0) and found.coverage == pytest.approx(1 - 2 / 64)


@pytest.mark.parametrize("n", [6, 9, 20, 37])
def test_stated_coverage_holds_on_samples_with_a_known_median(n):
    """Log-normal samples, true median 1: the interval covers 1 as often as it says."""
    rng = np.random.default_rng(n)
    reps = 2000
    stated = stats.median_interval(range(n)).coverage
    assert stated >= 0.95
    hits = 0
    for _ in range(reps):
        found = stats.median_interval(np.exp(rng.normal(0, 0.5, n)))
        hits += found.low <= 1.0 <= found.high
    assert abs(hits / reps - stated) <= 4 * math.sqrt(stated * (1 - stated) / reps)


def test_sign_test_is_scipys_exact_binomial():
    assert stats.sign_test([2] * 6, [1] * 6) == pytest.approx(2 / 64)
    assert stats.sign_test([1, 2, 3], [1, 2, 3]) == 1.0
    with pytest.raises(ValueError, match="same length"):
        stats.sign_test([1], [1, 2])


def test_a_file_without_paired_rounds_shows_points_and_judges_nothing():
    cells = _cells(np.random.default_rng(5), ("pg_collection",), buffers=("dense",), speedup=3.0)
    doc = _doc(cells, schema_version=1)
    for bench in doc["benchmarks"]:
        bench["extra_info"]["speedup_vs_single_comm"] = 1.5
    text = "\n".join(answer.answer(doc))
    assert "Nothing is judged" in text and "1MiB 1.50× (point only)" in text


def test_the_answer_shows_the_cells_own_speedup_and_interval_and_keeps_the_family_wise_verdict():
    """One figure per cell: the answer prints speedup_vs_single_comm and its per-cell interval
    (what the cells table shows), even where that interval excludes 1 and Holm says no difference."""
    rng = np.random.default_rng(7)
    doc = _doc(_cells(rng, ("pg_collection",), buffers=("dense",), sizes=(1 << 20,), rounds=6, speedup=1.02))
    cell = next(b for b in doc["benchmarks"] if b["params"]["source"] == "pg_collection")
    cell["extra_info"].update(speedup_vs_single_comm=1.77, speedup_vs_single_comm_ci=[1.05, 3.46])
    (row,) = answer.rows_of(doc)
    assert row.kind == "none" and row.p_holm > answer.FAMILY_ALPHA
    text = "\n".join(answer.answer(doc))
    line = next(line for line in text.splitlines() if line.startswith("| dense | pg_collection"))
    assert "1MiB 1.77× [1.05, 3.46], p " in line.split(" | ")[3]
    assert "per-cell 95%" in text and "not corrected for the number of cells" in text
