"""Property-based: the command lines of every tool and the bytes of every file a flag names
(--config TOML, config.json), in-process. Each is refused as one line (ConfigError, exit 2) or
accepted; never a traceback, never a hang, never a file left behind by a refusal. Derandomized
with a fixed number of examples, so CI sees the same cases every time."""

import json
import os
import tempfile

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from agrs_bench import __main__ as entry  # noqa: E402
from agrs_bench.config.cli import parse_run_args  # noqa: E402
from agrs_bench.errors import ConfigError  # noqa: E402
from agrs_bench.results import resume  # noqa: E402
from tests.support import synthetic  # noqa: E402

SETTINGS = settings(max_examples=100, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
ODD_TEXT = st.one_of(
    st.sampled_from(["", " ", "0", "-1", "1e308", "nan", "inf", "-inf", "1" * 40, "9" * 5000, "٤", "４",
                     "1.5", "0x10", "1_000", "a\nb", "\x00", "../..", "/dev/zero", "/proc/x", "4KiB", "1MiB:1GiB:x4",
                     "1x1x1", "ag,rs", "default", "high_priority", "max_ctas=٤", "tp-cp-ep-dp-pp", "dp-dp"]),
    st.text(max_size=12))
RUN_FLAGS = ["--sizes", "--dtype", "--modes", "--buffers", "--sources", "--issue", "--warmup", "--iters",
             "--ops-per-sample", "--sample-ms", "--layers", "--step-sizes", "--gemm", "--timeout", "--tp", "--cp",
             "--ep", "--etp", "--pp", "--order", "--rank-offset", "--world-size", "--ag-nccl-options",
             "--rs-nccl-options", "--backend", "--out"]
SWITCHES = ["--no-check", "--no-reference", "--launch-bound", "--no-telemetry", "--graph", "--trace",
            "--sweep-nccl-options"]


def _one_line(err):
    text = str(err)
    assert text and "\n" not in text and "Traceback" not in text, text


def _status(argv, capsys):
    try:
        status = entry.main(argv)
    except SystemExit as stop:
        status = stop.code
    err = capsys.readouterr().err.strip().splitlines()
    if status == 2:
        assert len(err) == 1, err
    return status


@SETTINGS
@given(flags=st.lists(st.tuples(st.sampled_from(RUN_FLAGS), ODD_TEXT), max_size=4),
       switches=st.lists(st.sampled_from(SWITCHES), max_size=2))
def test_run_flags(flags, switches):
    argv = [*(x for pair in flags for x in pair), *switches]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            cfg = parse_run_args([*argv, "--out", os.path.join(tmp, "r")] if "--out" not in argv else argv,
                                 world_size=2, backend="gloo")
        except ConfigError as err:
            _one_line(err)
            return
        assert cfg.cells() and os.listdir(tmp) == []


@SETTINGS
@given(flags=st.lists(st.tuples(st.sampled_from(["--world-size", "--tp", "--cp", "--ep", "--etp", "--pp",
                                                   "--order", "--rank-offset"]),
                                st.one_of(ODD_TEXT, st.sampled_from(["2", "4", "8", str(10**18), "65537"]))),
                      max_size=4))
def test_topology_flags(flags, capsys):
    argv = ["topology", *(x for pair in flags for x in pair)]
    if "--world-size" not in argv:
        argv += ["--world-size", "8"]
    assert _status(argv, capsys) in (0, 2)


BASE = synthetic.launch(seed=1, num_samples=3, modes=("ag",))
HEAD = synthetic.launch(seed=2, num_samples=3, modes=("ag",))


@SETTINGS
@given(threshold=ODD_TEXT, spell=st.sampled_from(["{b}", "{b}/", "{b}/results.json", "{b},{b}", "{b},,", ",",
                                                  "{h}", "{b}/./", "{b}/../b"]),
       export=st.one_of(st.none(), ODD_TEXT))
def test_compare_flags(threshold, spell, export, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        for name, doc in (("b", BASE), ("h", HEAD)):
            os.makedirs(os.path.join(tmp, name))
            with open(os.path.join(tmp, name, "results.json"), "w") as fh:
                json.dump(doc, fh)
        base = spell.format(b=os.path.join(tmp, "b"), h=os.path.join(tmp, "h"))
        argv = ["compare", base, os.path.join(tmp, "h"), "--out", os.path.join(tmp, "cmp"), "--no-plots",
                "--threshold", threshold]
        if export is not None:
            argv += ["--export-github-benchmark", os.path.join(tmp, export) if export else export]
        status = _status(argv, capsys)
        assert status in (0, 1, 2)
        if status == 2:
            assert not os.path.exists(os.path.join(tmp, "cmp"))


@SETTINGS
@given(text=st.one_of(st.text(max_size=200), st.sampled_from([
    "iters = 3\n", "iters = 3.5\n", "iters = true\n", "sizes = [1, 2]\n", "sizes = [\"4KiB\", 3]\n",
    "tp = -1\n", "[table]\niters = 3\n", "iters = 1e400\n", "sample-ms = inf\n", "sample-ms = nan\n",
    "out = \"a\\nb\"\n", "config = \"x.toml\"\n", "resume = \"x\"\n", "iters = 3\niters = 4\n",
    "timeout = 1e-300\n", "world-size = 99999999999999999999\n"])))
def test_toml_files(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.toml")
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as fh:
            fh.write(text)
        try:
            parse_run_args(["--config", path, "--out", os.path.join(tmp, "r")], world_size=2, backend="gloo")
        except ConfigError as err:
            _one_line(err)
        except UnicodeEncodeError:
            pass
        assert sorted(os.listdir(tmp)) == ["c.toml"]


@SETTINGS
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace")),
                     st.sampled_from([b"{}", b"[]", b"null", b"1e999", b'{"layout": 1}', b"[" * 50000,
                                      b'{"sizes_bytes": ' + b"9" * 5000 + b"}"])))
def test_config_json_bytes(raw):
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "config.json"), "wb") as fh:
            fh.write(raw)
        try:
            parse_run_args(["--resume", tmp], world_size=2, backend="gloo", stored=resume.stored_for_flags)
        except ConfigError as err:
            _one_line(err)


@SETTINGS
@given(name=st.one_of(st.none(), ODD_TEXT), extra=st.lists(st.sampled_from(["--force", "--allow-few", "--path-only"]),
                                                             max_size=2, unique=True))
def test_baseline_flags(name, extra, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for k in range(3):
            os.makedirs(os.path.join(tmp, f"l{k}"))
            with open(os.path.join(tmp, f"l{k}", "results.json"), "w") as fh:
                json.dump(synthetic.launch(seed=k, num_samples=3, modes=("ag",)), fh)
            runs.append(os.path.join(tmp, f"l{k}"))
        argv = ["baseline", ",".join(runs), *([name] if name is not None else []), "--dir", os.path.join(tmp, "b"),
                *extra]
        assert _status(argv, capsys) in (0, 2)
