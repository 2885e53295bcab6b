"""env's one table of rounding tolerances (issue 21): what each precision accepts, and how agree compares."""

from __future__ import annotations

import pytest
import torch

from gptforall_utils import env


def test_the_tolerances_widen_with_the_rounding_of_each_precision():
    tol = {p: env.rounding_tolerance(p) for p in env.PRECISIONS}
    assert tol["fp32"] < tol["fp16"] < tol["bf16"]                    # both rtol and atol, in that order
    assert all(tol[p] == env.ROUNDING_TOLERANCE[p] for p in env.PRECISIONS)
    with pytest.raises(ValueError, match="Unknown precision"):
        env.rounding_tolerance("int8")


def test_notebook_08s_bf16_difference_passes_in_bf16_only():
    # Notebook 08's check: a choice's summed log-probability one by one vs batched (padded). In bf16 on a CPU the
    # two differ by about 0.25 on sums of about -10 (issue 21); fp32's tolerance must still refuse that.
    one_by_one, batched = [-10.25, -4.0], [-10.0, -4.0]
    assert env.agree(one_by_one, batched, "bf16")
    assert not env.agree(one_by_one, batched, "fp32")
    assert env.agree([-10.0005], [-10.0], "fp32")                     # fp32's own rounding passes


def test_agree_takes_tensors_of_any_precision_and_device():
    a = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    assert env.agree(a, [1.0, 2.0], "bf16") and env.agree(a, torch.tensor([1.0, 2.0]), "fp32")
    assert not env.agree(torch.tensor([1.0, 3.0]), [1.0, 2.0], "bf16")


def test_a_mean_loss_has_its_own_tighter_row():
    # notebook 10's DPO loss check: fp32 keeps its 1e-4 bound, half precision 2e-2, both tighter than the logits' row
    assert env.rounding_tolerance("fp32", "loss") == (0.0, 1e-4)
    assert env.agree(0.6931, 0.69315, "fp32", "loss") and not env.agree(0.6931, 0.6935, "fp32", "loss")
    assert env.agree(0.6931, 0.70, "bf16", "loss") and not env.agree(0.6931, 0.75, "bf16", "loss")
    assert env.agree(0.6931, 0.75, "bf16")  # what the logits' row would have let through
    with pytest.raises(ValueError, match="Unknown quantity 'losses'"):
        env.rounding_tolerance("fp32", "losses")
