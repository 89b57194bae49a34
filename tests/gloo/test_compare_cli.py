"""`python -m agrs_bench.compare` as a process: comma-separated launches and the module entry (the
exit statuses and files on synthetic launches run in-process: tests/pure/test_compare_cli.py)."""

import json
import sys

from tests.support import launch, synthetic


def test_comma_separated_files_and_module_entry(tmp_path):
    files = []
    for i, doc in enumerate(synthetic.side(3)):  # two launches of base, a third as head: each launch once
        path = tmp_path / f"r{i}.json"
        path.write_text(json.dumps(doc))
        files.append(str(path))
    proc = launch.run([sys.executable, "-m", "agrs_bench.compare", ",".join(files[:2]), files[2],
                       "--out", str(tmp_path / "cmp")], deadline_s=120)
    assert proc.returncode == 0, proc.stderr
    assert "base: 2 launch(es)" in (tmp_path / "cmp" / "comparison.md").read_text()
    for name in ("compare_time.png", "compare_ratio.png"):
        assert (tmp_path / "cmp" / name).stat().st_size > 0
