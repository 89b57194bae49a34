"""The memory estimate before a run: it grows with size and the output check, and refuses in one line."""

import pytest

from agrs_bench.config.cli import parse_run_args
from agrs_bench.errors import ConfigError
from agrs_bench.measure import preflight


def _cfg(*argv, world=2):
    return parse_run_args(list(argv), world_size=world, backend="gloo")



def test_memory_estimate_grows_with_size_and_check():
    small, large = _cfg("--sizes", "1MiB"), _cfg("--sizes", "1GiB")
    assert preflight.needed_bytes(large)[0][0] > 1000 * preflight.needed_bytes(small)[0][0]
    unchecked = _cfg("--sizes", "1GiB", "--no-check")
    need = preflight.needed_bytes(unchecked)[0][0]
    assert 2 * 1024**3 < need < 4 * 1024**3  # 2S + 2S/n with n = 2: 3 GiB
    with pytest.raises(ConfigError, match="--sizes 1GiB needs about 3.0 GiB per rank"):
        preflight.check_memory(unchecked, 1024**3, "free on cuda:0")
    preflight.check_memory(unchecked, 4 * 1024**3, "free on cuda:0")
