"""Notebooks 05 (dialog summarization) and 06 (instruction tuning): recorded figures and their bars.

Smoke runs check the contract (every required figure, in range); the cpu-profile runs check the
issue's learning bars: LoRA's ROUGE-L beats zero-shot by >= 5 points on the 40 offline test
dialogues, and SFT lowers the held-out response loss by >= 10% with generations that stop at EOS.
"""

from __future__ import annotations

import pytest

from gptforall_utils import bars

METHODS = ("zero_shot", "one_shot", "few_shot", "full", "lora")
ROUGE_KEYS = [f"{k}_{m}" for m in METHODS for k in ("rouge1", "rouge2", "rougeL")]
SFT_KEYS = ("response_loss_before", "response_loss_after", "eos_rate_after")


def _ok(result):
    assert result.status == "ok", f"failed: {result.error} (executed copy: {result.executed})"
    return result.metrics


@pytest.mark.notebooks
def test_05_records_rouge_for_all_five_methods(notebook_run):
    m = _ok(notebook_run("05_dialog_summarization"))
    for key in ROUGE_KEYS:
        assert 0.0 <= m[key] <= 1.0, key
    for method in METHODS:  # a matching word pair implies matching words: ROUGE-2 never exceeds ROUGE-1
        assert m[f"rouge2_{method}"] <= m[f"rouge1_{method}"] + 1e-9
    assert m["n_eval"] >= 1
    assert m["rouge_backend"] in ("evaluate", "rouge_score")


@pytest.mark.notebooks
def test_06_records_response_loss_and_eos_rate(notebook_run):
    m = _ok(notebook_run("06_instruction_tuning_alpaca_dolly"))
    for key in SFT_KEYS:
        assert key in m
    assert m["response_loss_before"] > 0 and m["response_loss_after"] > 0
    assert 0.0 <= m["eos_rate_after"] <= 1.0
    assert m["weights_mb_nf4"] < m["weights_mb_base"]
    # Held-out loss tracked during training (eval_dataset), not only after it.
    assert m["eval_points"] >= 1 and m["eval_loss_last"] > 0
    # Offline only the instruct model is embedded: SFT starts from it, and the record says so.
    assert m["starts_from_base_model"] == 0 and m["base_dtype"] == "float32", m


@pytest.mark.course_bars
def test_05_cpu_profile_lora_beats_zero_shot(notebook_run):
    m = _ok(notebook_run("05_dialog_summarization", profile="cpu"))
    assert not bars.failures("05", "cpu", m), bars.failures("05", "cpu", m)  # n_eval 40, LoRA +0.05 ROUGE-L


@pytest.mark.course_bars
def test_06_cpu_profile_sft_lowers_response_loss_and_stops(notebook_run):
    m = _ok(notebook_run("06_instruction_tuning_alpaca_dolly", profile="cpu"))
    # bars.py: the whole offline splits, held-out response loss -10%, nine answers in ten stop at the end of turn.
    assert not bars.failures("06", "cpu", m), bars.failures("06", "cpu", m)
