"""Buffer registration bookkeeping, without a GPU: what is registered on which communicator, that
everything is deregistered (last first) before the pool goes, and how a path that fails on this
build falls through to the next or stops with one line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agrs_bench.errors import ConfigError
from agrs_bench.measure import registration
from agrs_bench.measure.registration import Ledger, distinct_groups, registered


class FakePools:
    """Records every call; `broken` paths fail at the step named."""

    log: list[tuple] = []
    broken: dict[str, str] = {}

    def __init__(self, path, device):
        self.path = path

    def _maybe_fail(self, step):
        if self.broken.get(self.path) == step:
            raise RuntimeError(f"{self.path} cannot {step}\nsecond line")

    def make_pool(self, group):
        self._maybe_fail("pool")
        return f"pool:{self.path}"

    def empty_like(self, pool, tensor):
        return f"{pool}:{tensor}"

    def register(self, pool, group, symmetric, tensors=()):
        self._maybe_fail("register")
        self.log.append(("register", pool, group, symmetric))

    def deregister(self, pool, group):
        self.log.append(("deregister", pool, group))


@pytest.fixture
def fake():
    FakePools.log, FakePools.broken = [], {}
    return FakePools


def buffer():
    return SimpleNamespace(param_shard="ps", param_full="pf", grad_full="gf", grad_shard="gs")


def test_distinct_groups_by_identity():
    dp, ag = object(), object()
    assert distinct_groups([ag, dp, dp, None]) == [ag, dp]
    assert distinct_groups([dp, dp]) == [dp]


def test_each_role_pool_on_every_communicator_then_released_in_reverse(fake):
    buf = buffer()
    with registered(buf, {"ag": "ub", "rs": "symmetric"}, ["AG", "DP"], "cuda:0", "torch X", fake) as paths:
        assert paths == {"ag": "nccl_allocator", "rs": "nccl_allocator"}
        assert buf.param_full == "pool:nccl_allocator:pf" and buf.grad_shard == "pool:nccl_allocator:gs"
        registers = [e for e in fake.log if e[0] == "register"]
        assert [(g, s) for _, _, g, s in registers] == [("AG", False), ("DP", False), ("AG", True), ("DP", True)]
    deregisters = [e for e in fake.log if e[0] == "deregister"]
    assert [g for _, _, g in deregisters] == ["DP", "AG", "DP", "AG"]  # rs pool first, each last-first
    assert vars(buf) == vars(buffer())  # the original tensors are back; the pools' are dropped


def test_shared_communicator_is_registered_once(fake):
    dp = "DP"
    with registered(buffer(), {"ag": "ub", "rs": "none"}, [dp, dp], "cuda:0", "torch X", fake):
        pass
    assert fake.log == [("register", "pool:nccl_allocator", "DP", False),
                        ("deregister", "pool:nccl_allocator", "DP")]


def test_failing_path_falls_through_and_undoes_what_it_did(fake):
    fake.broken = {"nccl_allocator": "pool"}
    with registered(buffer(), {"ag": "ub"}, ["AG", "DP"], "cuda:0", "torch X", fake) as paths:
        assert paths == {"ag": "caching_allocator",
                         "ag_refused": "nccl_allocator: RuntimeError: nccl_allocator cannot pool"}
    assert all(e[1] == "pool:caching_allocator" for e in fake.log)


def test_no_path_works_is_one_line_naming_each_error_and_the_build(fake):
    fake.broken = {"nccl_allocator": "register", "symm_mem": "register"}
    buf = buffer()
    with pytest.raises(ConfigError) as err:
        with registered(buf, {"rs": "symmetric"}, ["AG", "DP"], "cuda:0", "torch 2.11 NCCL 2.28.9", fake):
            pass
    message = str(err.value)
    assert "\n" not in message and "torch 2.11 NCCL 2.28.9" in message
    assert "nccl_allocator: RuntimeError: nccl_allocator cannot register" in message and "symm_mem:" in message
    assert vars(buf) == vars(buffer())


def test_ledger_releases_everything_even_when_one_deregistration_fails():
    calls = []

    def deregister(pool, group):
        calls.append(group)
        if group == "B":
            raise RuntimeError("gone")

    ledger = Ledger(lambda p, g, s: None, deregister)
    for group in ("A", "B", "C"):
        ledger.add("pool", group, False)
    with pytest.raises(ValueError):
        ledger.add("pool", "A", False)
    errors = ledger.release()
    assert calls == ["C", "B", "A"] and [str(e) for e in errors] == ["gone"] and not ledger.done


def test_paths_cover_every_registration_kind():
    from agrs_bench.config.nccl_options import REGISTRATIONS
    assert set(registration.PATHS) == set(REGISTRATIONS) - {"none"}


def test_paths_follow_what_one_h200_showed(fake):
    """torch 2.11.0+cu130, NCCL 2.28.9 (results/levers-one-gpu/): MemPool(backend.mem_allocator)
    is refused at pool creation; torch's own pool registers as user buffers; torch's own pool
    registered with symm=True failed inside NCCL ("unhandled cuda error"), which can leave the
    communicator unusable, so symmetric windows never take that path."""
    assert "caching_allocator" not in registration.PATHS["symmetric"]
    fake.broken = {"nccl_allocator": "pool"}
    with registered(buffer(), {"ag": "ub", "rs": "symmetric"}, ["AG"], "cuda:0", "torch X", fake) as paths:
        assert (paths["ag"], paths["rs"]) == ("caching_allocator", "symm_mem")
    assert ("register", "pool:caching_allocator", "AG", True) not in fake.log
