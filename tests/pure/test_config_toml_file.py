"""--config TOML: it sets flags, flags on the command line win, a bad key is named."""

import pytest

from agrs_bench.config.cli import parse_run_args
from agrs_bench.errors import ConfigError


def _cfg(*argv, world=2):
    return parse_run_args(list(argv), world_size=world, backend="gloo")



def test_toml_config_sets_flags_and_flags_win(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('sizes = "4KiB,8KiB"\nmodes = ["ag", "rs"]\niters = 7\nno-check = true\n'
                    'timeout = 30\n')
    cfg = _cfg("--config", str(path), "--iters", "3")
    assert cfg.sizes_bytes == (4096, 8192) and cfg.modes == ("ag", "rs")
    assert cfg.num_samples == 3 and cfg.check is False and cfg.timeout_s == 30.0


@pytest.mark.parametrize("text, needle", [
    ("iters = 1.5\n", "'iters' = 1.5 is not an int"),
    ("no-check = 1\n", "'no-check' = 1 is not a bool"),
    ("config = 'x.toml'\n", "unknown key 'config'"),
    ("[sizes]\n", "'sizes' = {} is not a str"),
])
def test_toml_config_names_the_key(tmp_path, text, needle):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        _cfg("--config", str(path))
    assert needle in str(info.value) and str(path) in str(info.value)
