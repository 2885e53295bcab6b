"""Notebook 11 (pruning, GGUF export, on-device inference) and its solutions.

Smoke runs check the round trip the notebook promises (F16 logits bit-identical to the fp16-rounded model, the same
tokenizer and greedy answers, Q8_0 within 2% perplexity) and that pruned zeros save no memory; the cpu-profile bars of
issue 16 (Q8_0 within 2%, the 4-bit file within 10%, Wanda beating magnitude at 50%) run with `-m course_bars`.
"""

from __future__ import annotations

import pytest

NOTEBOOK = "11_pruning_export_on_device"


@pytest.mark.notebooks
def test_11_round_trip_and_pruning_figures(notebook_run):
    r = notebook_run(NOTEBOOK)
    assert r.status == "ok", r.error
    m = r.metrics
    assert m["f16_logit_diff_vs_fp16_rounded"] == 0.0  # the F16 file holds exactly the fp16-rounded weights
    assert 0.0 < m["f16_logit_diff_vs_fp32"] < 1.0
    assert m["f16_same_tokenizer"] == 1 and m["f16_same_greedy"] == 1
    assert m["merge_logit_diff"] < 1e-3
    assert m["accuracy_merged"] == pytest.approx(m["accuracy_lora"])
    assert abs(m["q8_0_perplexity_change"]) < 0.02
    assert m["four_bit_type"] in ("Q4_0", "Q4_1")
    assert m["gguf_mb_F16"] > m["gguf_mb_Q8_0"] > m["gguf_mb_Q4_1"] > m["gguf_mb_Q4_0"]
    assert m["gguf_mb_Q8_0"] < 0.6 * m["gguf_mb_F16"]
    # Zeros are stored like any other number: pruning half of the weights saves no memory.
    assert m["weights_mb_pruned_50"] == pytest.approx(m["weights_mb_dense"])
    assert m["perplexity_wanda_50"] > m["perplexity_merged"] and m["perplexity_magnitude_50"] > m["perplexity_merged"]
    assert m["weights_mb_int8"] < 0.6 * m["weights_mb_fp32"]
    for key in ("tokens_per_s_fp32", "tokens_per_s_int8", "tokens_per_s_Q4_1", "ttft_s_fp32"):
        assert m[key] > 0, key


@pytest.mark.notebooks
def test_11_solutions(notebook_run):
    r = notebook_run(f"{NOTEBOOK}_solutions")
    assert r.status == "ok", r.error
    m = r.metrics
    assert m["gguf_mb_Q4_0"] < m["gguf_mb_Q5_0"] < m["gguf_mb_Q5_1"] < m["gguf_mb_Q8_0"]
    assert m["gguf_mb_wanda50_q4_0"] == pytest.approx(m["gguf_mb_Q4_0"], rel=1e-3)  # zeros cost 4 bits too
    assert m["gguf_mb_Q4_0"] < m["gguf_mb_q4_0_mixed"] < m["gguf_mb_Q8_0"]


@pytest.mark.notebooks
@pytest.mark.course_bars
def test_11_cpu_profile_bars(notebook_run):
    m = notebook_run(NOTEBOOK, profile="cpu").metrics
    assert abs(m["q8_0_perplexity_change"]) < 0.02, m
    assert abs(m["four_bit_perplexity_change"]) < 0.10, m
    assert m["perplexity_wanda_50"] < m["perplexity_magnitude_50"], m
    assert m["accuracy_lora"] > m["accuracy_zero_shot"], m  # the adapter has a real task effect to export
    assert m["f16_logit_diff_vs_fp16_rounded"] == 0.0 and m["f16_same_greedy"] == 1
    # Q8_0 keeps the fine-tune; on the embedded base (already on a Q4_1 grid) Q4_1 rounds most of it away.
    assert m["q8_0_update_kept"] > 0.9, m
    if m["base_on_q4_1_grid"]:
        assert m["q4_1_update_kept"] < 0.5 < m["q4_0_update_kept"], m
