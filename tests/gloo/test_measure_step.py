"""The modelled step (fsdp_step) on gloo ranks, the gradient arithmetic of every reduce op and dtype
pair: reduced gradients equal the DP mean on every rank, RS moves 2x AG's bytes with fp32 gradients
and bf16 parameters, the main gradient receives the reduced shard once per step, and Megatron's
issue path gives the same gradients. Every case runs in one set of 2 ranks (tests/support/gloo_cases.py)."""

import itertools

import pytest

from tests.support.gloo_cases import Case, run_gloo_cases
from tests.support.step_workers import step_gradients

REDUCE_OPS = ["scale_sum", "premul_sum", "avg", "sum"]
DTYPE_PAIRS = [("bf16", "bf16"), ("bf16", "fp32"), ("fp32", "fp32")]
MEGATRON_ISSUE = ("auto", ("bf16", "bf16"), "megatron_fsdp")


@pytest.fixture(scope="module")
def step_cases():
    cases = [Case((op, dtypes, "role_streams"), step_gradients, (op, *dtypes, "role_streams", 3))
             for op, dtypes in itertools.product(REDUCE_OPS, DTYPE_PAIRS)]
    cases.append(Case(MEGATRON_ISSUE, step_gradients, ("auto", "bf16", "bf16", "megatron_fsdp", 2)))
    return run_gloo_cases(2, cases)


@pytest.mark.parametrize("reduce_op", REDUCE_OPS)
@pytest.mark.parametrize("dtypes", DTYPE_PAIRS)
def test_reduced_gradients_on_every_rank(step_cases, reduce_op, dtypes):
    param_dtype, grad_dtype = dtypes
    ranks = step_cases[(reduce_op, dtypes, "role_streams")]
    for got in ranks:
        mean = got["expected"]  # ranks hold gradients 1 and 2
        want = 2 * mean if reduce_op == "sum" else mean
        assert set(got["reduced"]) == {want}
        assert set(got["main_grad"]) == {want}  # zeroed each step, added once: not 3x after 3 steps
        assert set(got["gathered"][:len(got["gathered"]) // 2]) == {1.0}
        assert got["op_run"] == ("scale_sum" if reduce_op == "premul_sum" else reduce_op)  # gloo: no PreMulSum
        assert got["rs_bytes"] == (2 if (param_dtype, grad_dtype) == ("bf16", "fp32") else 1) * got["ag_bytes"]


def test_megatron_issue_path_gives_the_same_gradients(step_cases):
    for got in step_cases[MEGATRON_ISSUE]:
        assert set(got["reduced"]) == {1.5} and set(got["main_grad"]) == {1.5}
