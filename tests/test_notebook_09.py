"""Notebook 09 and its solutions in the smoke profile: the merged model answers exactly like the
adapter model, adapters switched per request answer like their merged copies while holding far less
memory, one mixed-adapter batch answers like each adapter alone, the cost rows follow from the measured
throughput, and the two-process launch trains on disjoint shards.

`-m course_bars`: the cpu profile's adapters learn (held-out response loss of each adapter on its own
categories clearly below the base model's) and answer without degenerate repetition."""

from __future__ import annotations

import pytest

from gptforall_utils import bars, memory

pytestmark = pytest.mark.notebooks


def test_notebook_09_merge_serving_and_costs(notebook_run):
    r = notebook_run("09_scaling_out_and_serving")
    assert r.status == "ok", r.error
    m = r.metrics
    assert m["merged_same_greedy"] == 1
    # Merging changes the logits by float rounding only, far less than training changed them.
    assert m["merged_vs_adapter_logit_diff"] < 1e-3
    assert m["merged_vs_adapter_logit_diff"] < m["adapter_vs_base_logit_diff"]
    assert m["adapters_served"] == 2 and m["served_matches_merged"] == 1
    # Two merged copies of a 135M model vs one base + two small adapters (r=16 on every linear layer, about 4%
    # of the base each): close to half saved.
    assert 0.4 < m["memory_saved_ratio"] < 0.5
    assert m["merged_copies_weight_mb"] > 1.8 * m["serving_weight_mb"]
    # FSDP shards the training state over 8 GPUs; each GPU keeps its own activations. The figures are
    # notebook 01's estimator (memory.estimate), so they must agree with it.
    state = m["per_device_gb_7b_full_ddp_8"] - m["activations_gb_7b"]
    assert m["per_device_gb_7b_full_fsdp_8"] == pytest.approx(state / 8 + m["activations_gb_7b"], abs=2e-3)
    full = memory.estimate("LLaMA-7B", "full", "bf16", batch_size=1, seq_len=512)
    assert m["per_device_gb_7b_full_ddp_8"] == pytest.approx(full.total / memory.GB, abs=2e-3)
    assert m["per_device_gb_7b_qlora_1"] < m["per_device_gb_7b_lora_1"] < m["per_device_gb_7b_full_fsdp_8"] + 1
    # One generate call over requests for both adapters and the plain base equals each answered alone.
    assert m["mixed_batch_rows"] >= 5 and m["mixed_batch_adapters"] == 3 and m["mixed_batch_matches"] == 1
    # Held-out response loss before (the base model) and after, for each adapter.
    for task in ("qa", "creative"):
        assert m[f"heldout_pairs_{task}"] >= 1
        assert 0 < m[f"heldout_loss_after_{task}"] and 0 < m[f"heldout_loss_base_{task}"]
    # The cost rows come from the measured rate: epoch hours = Dolly's tokens / measured tokens per second.
    assert m["tokens_per_second_measured"] == pytest.approx(m["tokens_seen"] / m["train_seconds"], rel=1e-3)
    assert m["dolly_epoch_hours_here"] == pytest.approx(
        m["dolly_epoch_tokens"] / m["tokens_per_second_measured"] / 3600, rel=1e-3)
    assert m["dolly_tokens_counted"] == 0  # offline: no Dolly, so an extrapolation, labelled as one
    assert m["utilization_assumed"] == memory.UTILIZATION
    flops = memory.training_flops(6.7e9, m["dolly_epoch_tokens"], "lora")
    assert m["est_hours_7b_lora_a100"] == pytest.approx(memory.gpu_hours(flops, "A100 80 GB"), rel=0.05)


def test_notebook_09_solutions(notebook_run):
    r = notebook_run("09_scaling_out_and_serving_solutions")
    assert r.status == "ok", r.error
    m = r.metrics
    # 108 GB of training state + 3 GB of activations per GPU: five L4s would hold the state alone, not both.
    full = memory.estimate("LLaMA-7B", "full", "bf16", batch_size=1, seq_len=512)
    n = m["l4_gpus_full_fsdp_7b"]
    assert full.per_device(n, "fsdp") / memory.GB <= 24 < full.per_device(n - 1, "fsdp") / memory.GB
    assert n == 6
    assert m["qlora_7b_one_gpu_gb"] < m["lora_7b_one_gpu_gb"] <= 24
    assert m["qlora_7b_max_seq_one_l4"] >= 1024
    assert m["served_matches_merged"] == 1 and m["ddp_ranks_disjoint"] == 1
    # r=16 on every linear layer: an adapter holds about 3.5% of the base's weights.
    assert m["third_adapter_mb"] * 20 < m["third_merged_copy_mb"]


@pytest.mark.course_bars
def test_09_cpu_profile_adapters_learn_and_answer_sensibly(notebook_run):
    r = notebook_run("09_scaling_out_and_serving", profile="cpu")
    assert r.status == "ok", r.error
    # bars.py: each adapter judged on >= 10 held-out pairs lowers their loss by 5%, answers that do not loop, and
    # serving that answers as merged and as each request alone.
    assert not bars.failures("09", "cpu", r.metrics), bars.failures("09", "cpu", r.metrics)
