"""Notebooks 07 (medical classifier) and 08 (evaluation): their recorded figures make sense.

Smoke runs check that every required figure is recorded and in range; the cpu-profile bar of issue 6
(LoRA beats zero-shot by more than the full width of its 95% interval) runs with `-m cpu_profile`.
"""

from __future__ import annotations

import pytest

from gptforall_utils import metrics

MEDICAL = "07_medical_text_classification"
EVALUATION = "08_evaluation"


@pytest.mark.notebooks
def test_07_records_the_required_figures(notebook_run):
    result = notebook_run(MEDICAL)
    assert result.status == "ok", result.error
    m = result.metrics
    for key in ("accuracy_zero_shot", "accuracy_lora", "accuracy_lora_8bit", "macro_f1_lora"):
        assert 0.0 <= m[key] <= 1.0, (key, m[key])
    assert m["n_eval"] >= 5
    # ci95_lora is the half-width of a Wilson interval for n_eval samples: wide for a handful of abstracts.
    assert 0.0 < m["ci95_lora"] < 0.5
    lo, hi = metrics.wilson_interval(round(m["accuracy_lora"] * m["n_eval"]), m["n_eval"])
    assert m["ci95_lora"] == pytest.approx((hi - lo) / 2)


@pytest.mark.notebooks
def test_08_records_perplexities_and_signals(notebook_run):
    result = notebook_run(EVALUATION)
    assert result.status == "ok", result.error
    m = result.metrics
    assert 1.0 < m["perplexity_base"] < 1000 and 1.0 < m["perplexity_tuned"] < 1000
    assert m["perplexity_change"] == pytest.approx(m["perplexity_tuned"] / m["perplexity_base"] - 1)
    assert m["n_questions"] >= 8  # at least one question per MT-Bench category
    for key in ("repetition_base_greedy", "repetition_tuned_sampled", "stops_at_eos_tuned_greedy", "empty_base_greedy"):
        assert 0.0 <= m[key] <= 1.0
    assert m["words_base_greedy"] > 0


@pytest.mark.notebooks
@pytest.mark.course_bars
def test_07_cpu_profile_lora_beats_zero_shot_beyond_noise(notebook_run):
    m = notebook_run(MEDICAL, profile="cpu").metrics
    assert m["n_eval"] >= 50
    assert m["accuracy_lora"] - m["accuracy_zero_shot"] > 2 * m["ci95_lora"], m


@pytest.mark.notebooks
@pytest.mark.course_bars
def test_08_cpu_profile_tuning_changes_the_model(notebook_run):
    m = notebook_run(EVALUATION, profile="cpu").metrics
    assert m["perplexity_tuned"] != pytest.approx(m["perplexity_base"], rel=1e-3)
