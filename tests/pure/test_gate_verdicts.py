"""The gate on synthetic launches with known answers (pure: no processes, no files)."""

import math

import pytest

from agrs_bench.analysis import stats
from agrs_bench.gate import verdicts as gate
from tests.support import synthetic

SEEDS = range(50)
FORTY = {"modes": ("ag", "rs"), "sizes": synthetic.FORTY_CELL_SIZES}


def _verdicts(base, head, **kwargs):
    cells = gate.compare(base, head, **kwargs)
    assert cells, "no cells matched"
    return gate.overall(cells), {c.verdict for c in cells}, cells


def _decide(seed, *, head_scale=None, **noise):
    """One 3-vs-3 comparison of 40 cells straight from raw samples: [Decision]."""
    base = synthetic.cell_launches(seed=2 * seed, **noise)
    head = synthetic.cell_launches(seed=2 * seed + 1, scale=head_scale, **noise)
    return gate.decide(stats.compare_launches(list(zip(base, head))), gate.DEFAULT_THRESHOLD)


@pytest.mark.parametrize("noise", [
    {"noise": 0.005}, {"noise": 0.01}, {"noise": 0.02}, {"noise": 0.05}, {"noise": 0.1},
    {"noise": 0.2}, {"noise": 0.4},
    {"noise": 0.4, "launch_offset": 0.2},      # launches 20% apart, cell by cell
    {"noise": 0.05, "launch_offset": 0.1},
    {"noise": 0.02, "shared_offset": 0.1},     # whole launches 10% apart (clocks, a hot GPU)
    {"noise": 0.01, "launch_offset": 0.04},
])
def test_a_a_never_fails_over_50_seeds_of_40_cells(noise):
    failed = [seed for seed in SEEDS
              if any(d.verdict in ("regressed", "improved") for d in _decide(seed, **noise))]
    assert failed == [], f"A/A flagged a change in seeds {failed} at {noise}"


@pytest.mark.parametrize("noise", [0.01, 0.02])
def test_one_regressed_cell_of_40_in_quiet_noise_is_caught_every_seed(noise):
    missed = []
    for seed in SEEDS:
        decisions = _decide(seed, noise=noise, head_scale={17: 1.10})
        if decisions[17].verdict != "regressed":
            missed.append((seed, decisions[17].reason))
        assert [i for i, d in enumerate(decisions) if d.verdict == "regressed"] in ([], [17])
    assert missed == []


def test_a_a_documents_at_forty_percent_noise_pass():
    for seed in range(5):
        cells = gate.compare(synthetic.side(3, 100 * seed, noise=0.4, **FORTY),
                             synthetic.side(3, 100 * seed + 50, noise=0.4, **FORTY))
        assert len(cells) == 40 and gate.overall(cells) != "regressed"


def test_a_a_passes():
    overall, found, cells = _verdicts(synthetic.side(3, 0), synthetic.side(3, 100))
    assert overall == "unchanged" and found == {"unchanged"}
    assert gate.quiet_threshold(cells) < gate.DEFAULT_THRESHOLD


def test_identical_launches_are_exactly_unchanged():
    side = synthetic.side(3, 0)
    cells = gate.compare(side, side)
    assert all(c.ratio == 1.0 and c.ci_low <= 1 <= c.ci_high for c in cells)
    assert gate.overall(cells) == "unchanged"


def test_ten_percent_slowdown_in_two_percent_noise_regresses():
    overall, found, cells = _verdicts(synthetic.side(3, 0), synthetic.side(3, 100, scale=1.10))
    assert overall == "regressed" and found == {"regressed"}
    assert all(c.ci_low > 1 and c.ratio == pytest.approx(1.10, abs=0.03) for c in cells)
    assert all(c.p_slower <= gate.FAMILY_ALPHA for c in cells)


def test_one_regressed_cell_among_forty_regresses():
    name = "rs-dense-pg_collection-4MiB"
    overall, _, cells = _verdicts(synthetic.side(3, 0, **FORTY),
                                  synthetic.side(3, 100, scale={name: 1.10}, **FORTY))
    assert overall == "regressed" and [c.name for c in cells if c.verdict == "regressed"] == [name]


def test_small_slowdown_never_regresses():
    overall, found, _ = _verdicts(synthetic.side(3, 0), synthetic.side(3, 100, scale=1.02))
    assert overall != "regressed" and found <= {"unchanged", "noisy"}


def test_eight_percent_slowdown_in_forty_percent_noise_is_noisy():
    overall, found, cells = _verdicts(synthetic.side(3, 0, noise=0.4, modes=("ag_rs",)),
                                      synthetic.side(3, 100, noise=0.4, scale=1.08, modes=("ag_rs",)))
    assert overall == "noisy" and found == {"noisy"}
    assert all("cannot resolve" in c.reason for c in cells)


def test_large_slowdown_in_a_noisy_cell_is_noisy_never_regressed():
    # Noise is judged first: a cell that cannot resolve the threshold is not trustworthy.
    overall, found, _ = _verdicts(synthetic.side(3, 0, noise=0.4, modes=("ag",)),
                                  synthetic.side(3, 100, noise=0.4, scale=1.5, modes=("ag",)))
    assert overall == "noisy" and found == {"noisy"}


def test_ten_percent_speedup_improves():
    overall, found, _ = _verdicts(synthetic.side(3, 0), synthetic.side(3, 100, scale=0.90))
    assert overall == "improved" and found == {"improved"}


def test_one_launch_per_side_decides_nothing():
    overall, found, cells = _verdicts(synthetic.side(1, 0), synthetic.side(1, 100, scale=2.0))
    assert overall == "noisy" and found == {"noisy"}
    assert all(math.isnan(c.ci_low) and "one launch per side" in c.reason for c in cells)


def test_one_base_launch_borrows_the_heads_launch_spread():
    overall, _, cells = _verdicts(synthetic.side(1, 0), synthetic.side(3, 100, scale=1.3))
    assert overall == "regressed" and all(c.evidence.df == 2 for c in cells)


@pytest.mark.parametrize("ratio, low, high, p_slower, p_faster, expected", [
    (1.00, 0.99, 1.01, 1.0, 1.0, "unchanged"),
    (1.04, 1.01, 1.049, 1.0, 1.0, "unchanged"),   # a real but small slowdown: under the threshold
    (1.10, 1.08, 1.12, 0.001, 1.0, "regressed"),
    (1.10, 1.08, 1.12, 0.2, 1.0, "noisy"),        # the family-wise test does not decide
    (1.10, 0.99, 1.04, 0.001, 1.0, "unchanged"),  # own interval disagrees with the moderated test
    (1.10, 1.01, 1.30, 0.001, 1.0, "noisy"),      # wider than the band: cannot resolve 5%
    (1.08, 0.99, 1.12, 0.5, 1.0, "noisy"),        # past the threshold, interval holds 1
    (1.00, 0.90, 1.10, 1.0, 1.0, "noisy"),        # A/A too noisy to vouch for anything
    (0.90, 0.88, 0.92, 1.0, 0.001, "improved"),
    (1.0, math.nan, math.nan, 1.0, 1.0, "noisy"),
])
def test_judge_rule(ratio, low, high, p_slower, p_faster, expected):
    assert gate.judge(ratio, low, high, 0.05, p_slower=p_slower, p_faster=p_faster)[0] == expected


def test_noise_is_judged_before_regression():
    assert [name for name, _ in gate.CHECKS][0] == "noisy"


def test_judge_rejects_bad_threshold():
    with pytest.raises(ValueError, match="1.5"):
        gate.judge(1.0, 0.9, 1.1, 1.5)


def test_quiet_threshold_of_a_regression_is_about_its_size():
    cells = gate.compare(synthetic.side(3, 0), synthetic.side(3, 100, scale=1.10))
    assert 0.05 < gate.quiet_threshold(cells) < 0.10


@pytest.mark.parametrize("change, what", [
    ({"world_size": 2}, "GPU count differs"),
    ({"gpu_name": "NVIDIA H200"}, "GPU model differs"),
    ({"dtype": "fp32"}, "dtype differs"),
])
def test_mismatches_are_reported(change, what):
    messages = gate.mismatches(synthetic.side(1), synthetic.side(1, **change))
    assert any(m.startswith(what) for m in messages), messages


def test_layout_mismatch_is_reported():
    head = synthetic.side(1)
    head[0]["machine_info"]["layout"]["order"] = "tp-pp-dp"
    assert any(m.startswith("layout differs") for m in gate.mismatches(synthetic.side(1), head))


def test_mismatch_inside_one_side_is_reported():
    base = [synthetic.launch(), synthetic.launch(gpu_name="NVIDIA H200")]
    assert any(m.startswith("BASE launches differ in GPU model") for m in gate.mismatches(base, base[:1]))


def test_same_setup_has_no_mismatch():
    assert gate.mismatches(synthetic.side(2), synthetic.side(2, 10)) == []


def test_unmatched_cells_are_listed_not_judged():
    base = synthetic.side(1, modes=("ag", "rs"))
    head = synthetic.side(1, modes=("rs", "ag_rs"))
    only_base, only_head = gate.unmatched(base, head)
    assert only_base and all(n.startswith("ag-") for n in only_base)
    assert only_head and all(n.startswith("ag_rs-") for n in only_head)
    assert {c.params["mode"] for c in gate.compare(base, head)} == {"rs"}


def test_a_noisy_cell_wholly_past_the_band_names_the_test_that_held_it_back():
    """[1.289, 2.231] lies above +5%: it resolves the threshold; the reason is the adjusted p."""
    verdict, reason = gate.judge(1.7, 1.289, 2.231, 0.05, p_slower=0.11)
    assert verdict == "noisy"
    assert "0.11" in reason and "wholly above +5%" in reason and "cannot resolve" not in reason
    verdict, reason = gate.judge(1.0, 0.9, 1.2, 0.05)
    assert verdict == "noisy" and "cannot resolve a change of 5%" in reason
