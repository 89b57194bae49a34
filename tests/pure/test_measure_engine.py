"""The timing engine on CPU: interleaved, rotated rounds; full samples or a flag; paired intervals
in results.json; in this process (gloo, world 1) for the engine alone (2 and 4 ranks end to end:
tests/gloo/test_measure_engine.py)."""

import time

import pytest

torch = pytest.importorskip("torch")
dist = torch.distributed


@pytest.fixture
def world_of_one(tmp_path):
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _parts(log, sleeps_s):
    from agrs_bench.measure.device import CpuHandle
    from agrs_bench.measure.timing import Part

    dev = CpuHandle()

    def iteration(name, sleep_s):
        def run(pending):
            log.append(name)
            time.sleep(sleep_s)
        return run

    return [Part(name, dev, iteration(name, s), ()) for name, s in sleeps_s.items()]


def test_rounds_are_interleaved_rotated_and_full(world_of_one):
    from agrs_bench.measure.timing import Sampler, TimingPlan

    log = []
    parts = _parts(log, {"a": 200e-6, "b": 400e-6, "c": 100e-6})
    plan = TimingPlan(num_warmup=1, num_rounds=4, target_sample_s=2e-3)
    samples = Sampler(parts, plan).run()
    ops = samples.ops_per_sample
    fastest_s = min(device_s for device_s, _ in samples.estimate_s.values())
    assert ops * fastest_s >= plan.target_sample_s  # from the fastest part: every part's sample is full
    assert samples.order == ((0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 1, 2))
    # The log's tail is the timed rounds: runs of `ops` iterations per part, in the rotated order.
    timed = log[-4 * 3 * ops:]
    runs = [timed[i] for i in range(0, len(timed), ops)]
    assert runs == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert all(timed[i:i + ops] == [timed[i]] * ops for i in range(0, len(timed), ops))
    for name in "abc":
        assert len(samples.per_iter_s[name]) == 4
        info = samples.sample_figures(name)
        assert info.sample_s_min == pytest.approx(min(samples.per_iter_s[name]) * ops)
        assert info.sample_s_min >= plan.target_sample_s or (info.sample_short and samples.short_warnings(name))
    assert samples.position("a") == [0, 2, 1, 0] and samples.position("c") == [2, 1, 0, 2]


def test_fixed_ops_short_samples_are_flagged(world_of_one):
    from agrs_bench.measure.timing import Sampler, TimingPlan

    samples = Sampler(_parts([], {"a": 50e-6, "b": 50e-6}),
                      TimingPlan(num_warmup=0, num_rounds=2, target_sample_s=1.0, ops_per_sample=1)).run()
    assert samples.ops_per_sample == 1 and samples.sample_figures("a").sample_short is True
    assert "fell short of the 1000 ms budget" in samples.short_warnings("a")[0]


def test_checks_run_once_per_part_before_timing(world_of_one):
    from agrs_bench.measure.timing import Part, Sampler, TimingPlan

    log = []
    parts = _parts(log, {"a": 0.0, "b": 0.0})
    checked = []

    def check(name):
        def run(run_sample):
            before = len(log)
            run_sample()
            checked.append((name, len(log) - before))
        return run

    parts = [Part(p.name, p.dev, p.iteration, p.roles, check(p.name)) for p in parts]
    samples = Sampler(parts, TimingPlan(num_warmup=0, num_rounds=2, target_sample_s=1e-4,
                                        ops_per_sample=3)).run()
    assert checked == [("a", 3), ("b", 3)] and samples.ops_per_sample == 3


def test_names_must_differ():
    from agrs_bench.measure.timing import Sampler, TimingPlan

    with pytest.raises(ValueError, match="distinct"):
        Sampler(_parts([], {"a": 0.0}) * 2, TimingPlan(num_warmup=0, num_rounds=1, target_sample_s=1e-3))
