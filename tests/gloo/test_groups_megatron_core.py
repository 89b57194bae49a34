"""`--sources megatron_core` on real gloo groups, built by the installed megatron-core (CI installs
0.16.1 through the `megatron` extra; these tests must run there, so nothing here skips).

On 0.16.1 (the `global_state` API) megatron-core builds the AG group in the same loop as dp_cp, so
it cannot mismatch; 0.19.2's create_all_gather_groups can (NVIDIA/Megatron-LM#4261). The mismatch
tests therefore rebuild megatron-core's AG groups the way 0.19.2 does, with megatron-core's own
create_group (tests/support/fault_entry.py), and say so in their names.
"""

import importlib.util
import json

import pytest

from tests.support import fault_entry, launch
from tests.support.gloo_harness import run_gloo
from tests.support.megatron_workers import megatron_and_ours, megatron_and_ours_then_0192

# The [test] extra does not bring megatron-core ([megatron] does). Found, not imported: importing
# it costs seconds, and only the ranks need it.
if importlib.util.find_spec("megatron") is None:
    pytest.skip("needs megatron-core: pip install -e '.[megatron]'", allow_module_level=True)

LAYOUTS_4 = [{}, {"ep": 2}, {"pp": 2}, {"pp": 2, "order": "tp-cp-ep-pp-dp"}, {"tp": 2}]
LAYOUTS_8 = [{}, {"tp": 2, "ep": 2}, {"pp": 2, "order": "tp-cp-ep-pp-dp"}, {"cp": 2, "ep": 2, "etp": 1},
             {"ep": 2, "cp": 2, "pp": 2, "order": "tp-cp-ep-pp-dp"}, {"tp": 2, "pp": 2, "order": "tp-pp-dp"}]


def _check_rows(reports, ours):
    for rank, rows in enumerate(reports):
        for row in rows:
            where = (rank, row["layout"])
            mc, ep = row, row["layout"].get("ep", 1)
            default_order = row["layout"].get("order", "tp-cp-ep-dp-pp") == "tp-cp-ep-dp-pp"
            assert row["megatron_groups_left"] == 0, where  # torn down, groups destroyed
            for kind in ("dense", "expert"):
                megatron = mc[("megatron_core", kind)]
                assert megatron["rs_ranks"] == megatron["layout_ranks"], where
                for name in ours:  # identical rank lists per rank and buffer
                    assert row[(name, kind)]["rs_ranks"] == megatron["rs_ranks"], (where, name, kind)
                    assert row[(name, kind)]["ag_ranks"] == row[(name, kind)]["rs_ranks"], (where, name, kind)
                for name in ("megatron_core", *ours):  # both issue styles, correct outputs
                    assert all(row[(name, kind)]["outputs_ok"].values()), (where, name, kind)
            dense, expert = mc[("megatron_core", "dense")], mc[("megatron_core", "expert")]
            assert not dense["shares"], where
            if row["api"] == "global_state":  # 0.16.1: no expert AG group, the same dense ranks
                assert expert["shares"] and row[("global_state", "expert")]["shares"], where
                assert dense["ag_ranks"] == dense["rs_ranks"] == row[("global_state", "dense")]["ag_ranks"], where
                assert dense["outputs_ok"] and expert["outputs_ok"], where
                assert row["mismatches"] == [], where
            else:  # 0.17+: expert AG group only for ep > 1; #4261 for other orders
                assert expert["shares"] == (ep == 1), where
                if default_order:
                    assert row["mismatches"] == [], where


def test_megatron_core_matches_our_sources_at_4_ranks():
    reports = run_gloo(4, megatron_and_ours, LAYOUTS_4, ("global_state", "pg_collection", "single_comm"),
                       timeout_s=300)
    assert reports[0][0]["version"]
    _check_rows(reports, ("global_state", "pg_collection", "single_comm"))
    # pg_collection shares the expert communicator exactly when ep = 1, as Megatron does.
    for row in reports[0]:
        assert row[("pg_collection", "expert")]["shares"] == (row["layout"].get("ep", 1) == 1)


def test_megatron_core_matches_global_state_at_8_ranks_and_check_finds_0192_style_ag_groups():
    # One set of 8 processes for both parts: importing megatron-core costs seconds per rank.
    reports, found = zip(*run_gloo(8, megatron_and_ours_then_0192, LAYOUTS_8, ("global_state",),
                                   {"pp": 2, "order": "tp-cp-ep-pp-dp"}, timeout_s=400))
    _check_rows(reports, ("global_state",))
    by_layout = {json.dumps(row["layout"], sort_keys=True): row for row in reports[0]}
    # Megatron's own numbers from the issue: world 8, pp 2, order tp-cp-ep-pp-dp: dp_cp [0, 2, 4, 6].
    row = by_layout[json.dumps({"pp": 2, "order": "tp-cp-ep-pp-dp"}, sort_keys=True)]
    assert row[("megatron_core", "dense")]["rs_ranks"] == [0, 2, 4, 6]

    # Then megatron-core 0.16.1's AG groups rebuilt as 0.19.2's create_all_gather_groups builds
    # them: the example, rank 0 dp_cp [0, 2, 4, 6] but dp_cp_ag [0, 1, 2, 3].
    assert all(f == found[0] for f in found)  # every rank learns the same finding
    assert len(found[0]) == 1
    finding = found[0][0]
    assert (finding["rank"], finding["buffer"], finding["rs_ranks"], finding["ag_ranks"]) == \
        (0, "dense", [0, 2, 4, 6], [0, 1, 2, 3])
    assert "order='tp-cp-ep-pp-dp'" in finding["layout"]
    assert "pipeline_model_parallel_size=2" in finding["layout"]
    assert finding["upstream"].startswith("NVIDIA/Megatron-LM#4261")


def test_run_with_0192_style_ag_groups_rebuilt_on_0161_skips_megatron_core_and_exits_5(tmp_path):
    out = tmp_path / "run"
    args = [*launch.FAST, "--modes", "ag_rs", "--sizes", "4KiB", "--sources", "megatron_core,global_state",
            "--pp", "2", "--order", "tp-cp-ep-pp-dp", "--ep", "1", "--no-reference"]
    done = launch.run(launch.torchrun_cmd(4, "--out", str(out), *args, module=fault_entry.MODULE),
                      env_extra={"AGRS_BENCH_TEST_CORRUPT_AG": "megatron_core"})
    # Every rank exits 5; torchrun turns that into its own 1 and names the ranks' status.
    assert done.returncode == 1 and "exitcode  : 5" in done.stderr, done.stderr[-3000:]
    assert not done.leftover_pids
    assert "MEGATRON MISMATCH" in done.stderr and "[0, 2]" in done.stderr and "[0, 1]" in done.stderr
    assert "NVIDIA/Megatron-LM#4261" in done.stderr
    doc = json.loads((out / "results.json").read_text())
    meta = doc["agrs_bench"]
    assert meta["megatron_core"]["api"] in ("global_state", "create_all_gather_groups")
    [finding] = meta["megatron_mismatch"]
    assert (finding["rank"], finding["rs_ranks"], finding["ag_ranks"]) == (0, [0, 2], [0, 1])
    assert meta["complete"] is True  # megatron_core is not missing: it was refused on purpose
    assert {b["params"]["source"] for b in doc["benchmarks"]} == {"global_state"}  # the others timed
    assert all(isinstance(b["extra_info"]["ag_shares_rs_comm"], bool) for b in doc["benchmarks"])
    report = (out / "report.md").read_text()
    top = report[:report.index("## Collectives")]
    assert "megatron_core not timed" in top and "`[0, 2]`" in top and "`[0, 1]`" in top
    assert "NVIDIA/Megatron-LM#4261" in top and meta["megatron_core"]["version"] in top
