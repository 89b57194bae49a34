"""`--config FILE.toml`: flag values from a TOML file, keys spelled as the flags without `--`.

    sizes = "1MiB:1GiB:x4"
    modes = ["ag", "rs", "ag_rs"]   # a list is the same as "ag,rs,ag_rs"
    iters = 20
    no-check = false

Flags given on the command line override the file. An unknown key, a value of the wrong type or
a file that is not TOML is an error naming the file and the key.
"""

from __future__ import annotations

import argparse
import tomllib
from typing import Any

from agrs_bench import safe_files
from agrs_bench.errors import ConfigError

NOT_IN_FILE = ("config", "resume", "help")


def _key_types(parser: argparse.ArgumentParser) -> dict[str, tuple[str, type]]:
    """flag name without `--` -> (argparse dest, the Python type its value must have)."""
    types = {}
    for action in parser._actions:
        long_flags = [s[2:] for s in action.option_strings if s.startswith("--")]
        if not long_flags or long_flags[0] in NOT_IN_FILE:
            continue
        kind = bool if action.nargs == 0 else getattr(action.type, "python_type", action.type or str)
        types[long_flags[0]] = (action.dest, kind)
    return types


def _coerce(path: str, key: str, value: Any, kind: type) -> Any:
    if kind is str and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"config {path}: key {key!r} = {value!r} is not a{'n' if kind is int else ''} "
                      f"{kind.__name__}")


def load(path: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The file's values as argparse defaults (dest -> value)."""
    try:
        table = tomllib.loads(safe_files.read_bytes(path, safe_files.CONFIG_LIMIT_BYTES).decode("utf-8"))
    except OSError as err:
        raise ConfigError(f"config {path}: cannot read ({err.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config {path}: not valid TOML ({err})") from None
    except RecursionError:
        raise ConfigError(f"config {path}: not valid TOML (nested too deeply)") from None
    except ValueError as err:  # an integer of more than 4300 digits
        raise ConfigError(f"config {path}: not valid TOML ({str(err).split(';')[0]})") from None
    types = _key_types(parser)
    defaults = {}
    for key, value in table.items():
        if key not in types:
            raise ConfigError(f"config {path}: unknown key {key!r} (keys are the flags of "
                              f"agrs_bench.run without '--', e.g. sizes, iters)")
        dest, kind = types[key]
        defaults[dest] = _coerce(path, key, value, kind)
    return defaults
