"""Notebook 10 (preference alignment with DPO): recorded figures and the learning bar.

The smoke run checks the contract (every figure recorded, in range, the hand-written loss equal to TRL's); the
cpu-profile run checks the issue's bar on the 35 held-out offline pairs: preference accuracy from chance (every
pair a tie while policy == reference) to at least 0.75, and a reward margin that grows.
"""

from __future__ import annotations

import pytest

from gptforall_utils import bars

KEYS = ("preference_accuracy_before", "preference_accuracy_after", "reward_margin_before", "reward_margin_after",
        "kl_per_token_after", "loss_check_abs_diff", "answer_words_before", "answer_words_after", "n_train", "n_test")


def _ok(result):
    assert result.status == "ok", f"failed: {result.error} (executed copy: {result.executed})"
    return result.metrics


@pytest.mark.notebooks
def test_10_records_preference_figures_and_the_loss_check(notebook_run):
    m = _ok(notebook_run("10_preference_alignment_dpo"))
    for key in KEYS:
        assert key in m, key
    assert m["preference_accuracy_before"] == 0.5 and m["reward_margin_before"] == 0.0  # all ties at the start
    assert 0.0 <= m["preference_accuracy_after_ci_low"] <= m["preference_accuracy_after"] <= 1.0
    assert m["loss_check_abs_diff"] < 1e-4
    assert m["kl_per_token_after"] >= 0.0
    assert sum(1 for k in m if k.startswith("sweep_beta_") and k.endswith("_accuracy")) >= 2


@pytest.mark.course_bars
def test_10_cpu_profile_dpo_learns_the_held_out_preference(notebook_run):
    m = _ok(notebook_run("10_preference_alignment_dpo", profile="cpu"))
    # bars.py: the whole offline test split, held-out preference accuracy >= 0.75, a growing reward margin, and
    # the hand-written loss equal to TRL's.
    assert not bars.failures("10", "cpu", m), bars.failures("10", "cpu", m)
    assert m["preference_accuracy_before"] == 0.5
