"""The gate on synthetic launches with known answers (pure: no processes, no files)."""

import pytest

from agrs_bench.gate import verdicts as gate
from tests import synthetic


def _verdicts(base, head, **kwargs):
    cells = gate.compare(base, head, **kwargs)
    assert cells, "no cells matched"
    return gate.overall(cells), {c.verdict for c in cells}, cells


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


def test_two_percent_slowdown_is_unchanged():
    overall, found, _ = _verdicts(synthetic.side(3, 0), synthetic.side(3, 100, scale=1.02))
    assert overall == "unchanged" and found == {"unchanged"}


def test_eight_percent_slowdown_in_forty_percent_noise_is_noisy():
    overall, found, cells = _verdicts(synthetic.side(3, 0, noise=0.4, modes=("ag_rs",)),
                                      synthetic.side(3, 100, noise=0.4, scale=1.08, modes=("ag_rs",)))
    assert overall == "noisy" and found == {"noisy"}
    assert all(c.ci_low < 1 < c.ci_high for c in cells)


def test_ten_percent_speedup_improves():
    overall, found, _ = _verdicts(synthetic.side(3, 0), synthetic.side(3, 100, scale=0.90))
    assert overall == "improved" and found == {"improved"}


@pytest.mark.parametrize("ratio, low, high, expected", [
    (1.00, 0.99, 1.01, "unchanged"),
    (1.04, 1.01, 1.049, "unchanged"),   # a real but small slowdown: under the threshold
    (1.10, 1.08, 1.12, "regressed"),
    (1.10, 1.01, 1.30, "regressed"),    # wide, but decided: lower end above 1
    (1.08, 0.99, 1.12, "noisy"),        # past the threshold, interval holds 1
    (1.04, 1.01, 1.30, "noisy"),        # a change, but maybe far more than the threshold
    (1.00, 0.90, 1.10, "noisy"),        # A/A too noisy to vouch for anything
    (0.90, 0.85, 0.95, "improved"),
    (0.92, 0.80, 1.02, "noisy"),
])
def test_judge_rule(ratio, low, high, expected):
    assert gate.judge(ratio, low, high, 0.05)[0] == expected


def test_noise_is_judged_before_regression():
    assert [name for name, _ in gate.CHECKS][0] == "noisy"


def test_judge_rejects_bad_threshold():
    with pytest.raises(ValueError, match="1.5"):
        gate.judge(1.0, 0.9, 1.1, 1.5)


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
