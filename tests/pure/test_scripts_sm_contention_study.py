"""scripts/sm_contention_study.py's arithmetic on CPU: the figures of paired rounds and the README
table (the GPU part runs on a GPU host: scripts/device_levers_one_gpu.sh)."""

import importlib.util
import os

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "scripts", "sm_contention_study.py")


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("sm_contention_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rounds(gemm_s, copy_s, makespan_s, n=10):
    drift = [1 + 0.01 * (r % 4) for r in range(n)]  # shared by the round's parts: cancels in ratios
    return [{"gemm_s": None if gemm_s is None else gemm_s * d, "copy_s": None if copy_s is None else copy_s * d,
             "makespan_s": makespan_s * d} for d in drift]


def test_figures_pair_the_rounds(study):
    samples = {"gemm_alone": rounds(1e-3, None, 1e-3),
               "copy_alone:ce": rounds(None, 2e-4, 2e-4), "gemm+copy:ce": rounds(1.1e-3, 3e-4, 1.2e-3),
               "copy_alone:sm8": rounds(None, 4e-4, 4e-4), "gemm+copy:sm8": rounds(1.3e-3, 5e-4, 1.3e-3)}
    found = study.figures(samples, ["ce", "sm8"])
    assert found["ce"]["gemm_slowdown"]["point"] == pytest.approx(1.1)
    assert found["ce"]["gemm_slowdown"]["ci"] == pytest.approx([1.1, 1.1])
    assert found["ce"]["copy_slowdown"]["point"] == pytest.approx(1.5)
    assert found["sm8"]["gemm_slowdown"]["point"] == pytest.approx(1.3)
    assert found["sm8"]["exposed_copy_s"]["point"] == pytest.approx(0.3e-3 * 1.015, rel=0.02)
    text = study.table({"sizes": [{"size_bytes": 64 << 20, "figures": found}], "gemm_mnk": [8192, 8192, 3072]})
    assert "| 64MiB | copy engine (cudaMemcpyAsync DtoD) | 1.100 [1.100, 1.100] |" in text
    assert "| 64MiB | SM kernel, 8 CTAs | 1.300" in text and "GEMM 8192x8192x3072 bf16 alone" in text


@pytest.mark.parametrize("text, size", [("64MiB", 64 << 20), ("1GiB", 1 << 30), ("4096", 4096)])
def test_sizes(study, text, size):
    assert study.parse_size(text) == size
