"""The NCCL fault environment (flight recorder, async error handling) keeps the user's settings."""

from agrs_bench.groups import distributed


def test_nccl_fault_env_keeps_the_users_settings(tmp_path):
    env = distributed.nccl_fault_env(str(tmp_path), {"TORCH_NCCL_TRACE_BUFFER_SIZE": "5"})
    assert "TORCH_NCCL_TRACE_BUFFER_SIZE" not in env
    assert env["TORCH_NCCL_DUMP_ON_TIMEOUT"] == "1" and env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "2"
    assert env["NCCL_NVLS_ENABLE"] == "0"
    assert "NCCL_NVLS_ENABLE" not in distributed.nccl_fault_env(str(tmp_path), {"NCCL_NVLS_ENABLE": "1"})
    assert env["TORCH_FR_DUMP_TEMP_FILE"] == env["TORCH_NCCL_DEBUG_INFO_TEMP_FILE"] \
        == str(tmp_path / "flight_recorder" / "rank_")
