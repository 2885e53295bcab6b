"""Memory math: the arithmetic, its guards, and monotonicity properties (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptforall_utils import memory

# Published parameter counts (model cards / papers), to check the shape-based count.
PUBLISHED = {"SmolLM2-135M": 134.5e6, "SmolLM2-360M": 361.8e6, "SmolLM2-1.7B": 1.71e9, "LLaMA-7B": 6.74e9,
             "LLaMA-13B": 13.0e9, "LLaMA-65B": 65.2e9, "Llama2-70B": 69.0e9, "Falcon-40B": 41.8e9}


def test_parameter_count_of_the_real_model_is_exact(tiny_model):
    model, _ = tiny_model
    cfg = memory.model_config(model)
    assert cfg.num_params == sum(p.numel() for p in model.parameters())
    assert cfg == memory.MODELS["SmolLM2-135M"].__class__(**{**memory.MODELS["SmolLM2-135M"].__dict__, "name": cfg.name})


@pytest.mark.parametrize("name,published", PUBLISHED.items())
def test_counts_from_shapes_match_published_sizes(name, published):
    assert memory.MODELS[name].num_params == pytest.approx(published, rel=0.01)


def test_full_fp32_adamw_is_16_bytes_per_parameter_before_activations():
    b = memory.estimate("LLaMA-7B", seq_len=1)
    n = b.total_params
    assert (b.weights / n, b.gradients / n, b.optimizer / n) == (4, 4, 8)
    assert b.bytes_per_parameter() == pytest.approx(16, abs=0.01)
    # one billion fp32 parameters take 4 GB to hold
    assert memory.PRECISION_BYTES["fp32"] * 1e9 / memory.GB == 4


def test_precision_and_optimizer_change_the_bill_as_documented():
    full32 = memory.estimate("LLaMA-7B", seq_len=1)
    mixed = memory.estimate("LLaMA-7B", precision="bf16", seq_len=1)
    assert mixed.weights == full32.weights / 2 and mixed.gradients == full32.gradients / 2
    assert mixed.optimizer == full32.optimizer + 4 * full32.total_params  # fp32 master copy
    assert memory.estimate("LLaMA-7B", optimizer="sgd", seq_len=1).optimizer == 0
    assert memory.estimate("LLaMA-7B", optimizer="adamw_8bit", seq_len=1).optimizer == 2 * full32.total_params
    qlora = memory.estimate("LLaMA-7B", method="qlora", precision="bf16", seq_len=512, checkpointing=True)
    assert qlora.total / memory.GB < 16 < memory.estimate("LLaMA-7B", method="lora", precision="bf16").total / memory.GB


def test_quantized_weight_bytes_match_bitsandbytes_footprints():
    # get_memory_footprint() of the embedded model, measured: 8-bit 209.4 MiB, NF4 158.8 MiB.
    assert memory.weight_bytes("SmolLM2-135M", "int8") / 2**20 == pytest.approx(209.4, rel=0.02)
    assert memory.weight_bytes("SmolLM2-135M", "nf4") / 2**20 == pytest.approx(158.8, rel=0.03)


def test_will_it_fit_verdicts():
    fits, gb, verdict = memory.will_it_fit("LLaMA-7B", "Colab T4 16 GB", "qlora")
    assert fits and verdict.startswith("fits")
    fits, gb, verdict = memory.will_it_fit("GPT-3-175B", "A100 80 GB", "full mixed")
    assert not fits and verdict.startswith("no") and gb > 80 * 10
    rows = memory.fit_table()
    assert len(rows) == len(memory.MODELS) * len(memory.HARDWARE) * len(memory.FIT_SETUPS)


def test_scaling_arithmetic():
    assert memory.training_flops(70e9, 1.4e12) == pytest.approx(5.88e23)
    assert memory.compute_optimal_tokens(70e9) == pytest.approx(1.4e12)  # Chinchilla
    assert 1.4e12 * memory.BYTES_PER_TOKEN == pytest.approx(4.6e12)
    hours = memory.gpu_hours(1e21, "A100 80 GB", utilization=0.5)
    assert hours == pytest.approx(1e21 / (312e12 * 0.5) / 3600)
    assert memory.cost_usd(1e21, "A100 80 GB", 0.5) == pytest.approx(hours * memory.HARDWARE["A100 80 GB"]["usd_per_hour"])
    assert memory.training_flops(1e9, 1e6, "lora") < memory.training_flops(1e9, 1e6, "full")


@pytest.mark.parametrize("kwargs,match", [
    (dict(precision="fp8"), "fp32, fp16, bf16, int8, nf4"),
    (dict(method="dpo"), "full, lora, prompt_tuning, qlora"),
    (dict(optimizer="lion"), "adamw, adamw_8bit, sgd"),
    (dict(batch_size=-1), "batch_size"),
    (dict(seq_len=0), "seq_len"),
    (dict(lora_r=0), "lora_r"),
    (dict(method="full", precision="nf4"), "frozen"),
    (dict(lora_targets=("attn",), method="lora"), "LoRA target"),
])
def test_nonsense_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        memory.estimate("SmolLM2-135M", **kwargs)


def test_other_guards():
    with pytest.raises(ValueError, match="SmolLM2-135M"):
        memory.estimate("GPT-5")
    with pytest.raises(ValueError, match="hidden"):
        memory.ModelConfig("x", -1, 2, 2, 2, 8, 10)
    with pytest.raises(ValueError, match="Colab T4"):
        memory.will_it_fit("LLaMA-7B", "TPU", "qlora")
    with pytest.raises(ValueError, match="params"):
        memory.training_flops(-1, 10)


shapes = st.builds(memory.ModelConfig, name=st.just("m"), hidden=st.sampled_from([64, 128, 256, 512]),
                   layers=st.integers(1, 48), heads=st.just(8), kv_heads=st.sampled_from([1, 2, 4, 8]),
                   intermediate=st.integers(64, 4096), vocab=st.integers(100, 100_000),
                   tied_embeddings=st.booleans(), gated_mlp=st.booleans())
methods = st.sampled_from(memory.METHODS)
precisions = st.sampled_from(["fp32", "fp16", "bf16"])
optimizers = st.sampled_from(list(memory.OPTIMIZER_STATE_BYTES))


@settings(max_examples=200, deadline=None)
@given(shapes, methods, precisions, optimizers, st.integers(1, 64), st.integers(1, 4096), st.integers(1, 64),
       st.integers(1, 4096), st.booleans())
def test_bigger_batch_and_longer_sequence_never_need_less(cfg, method, precision, optimizer, b, s, db, ds, ckpt):
    base = memory.estimate(cfg, method, precision, optimizer, batch_size=b, seq_len=s, checkpointing=ckpt).total
    assert memory.estimate(cfg, method, precision, optimizer, batch_size=b + db, seq_len=s, checkpointing=ckpt).total >= base
    assert memory.estimate(cfg, method, precision, optimizer, batch_size=b, seq_len=s + ds, checkpointing=ckpt).total >= base


@settings(max_examples=200, deadline=None)
@given(shapes, st.integers(1, 48), methods, precisions, optimizers, st.integers(1, 8), st.integers(1, 2048))
def test_more_parameters_never_need_less(cfg, extra_layers, method, precision, optimizer, b, s):
    bigger = memory.ModelConfig(**{**cfg.__dict__, "layers": cfg.layers + extra_layers})
    assert bigger.num_params > cfg.num_params
    small = memory.estimate(cfg, method, precision, optimizer, batch_size=b, seq_len=s).total
    assert memory.estimate(bigger, method, precision, optimizer, batch_size=b, seq_len=s).total >= small
    assert memory.inference(bigger, precision, b, s).total >= memory.inference(cfg, precision, b, s).total


@settings(max_examples=200, deadline=None)
@given(shapes, precisions, optimizers, st.integers(1, 16), st.integers(1, 2048), st.sampled_from([1, 4, 8, 16, 64]))
def test_lora_never_needs_more_than_full(cfg, precision, optimizer, b, s, r):
    # LoRA adds r*(in+out) per layer, at most half of in*out when r <= min(in, out) / 4 (adapter weights
    # plus their gradients then stay below the full gradients): a rank far below
    # the layer width, as in practice (hypothesis found that r=64 on a 32-wide layer costs more).
    r = max(1, min(r, min(min(shape) for shape in cfg.linear_shapes().values()) // 4))
    full = memory.estimate(cfg, "full", precision, optimizer, batch_size=b, seq_len=s).total
    assert memory.estimate(cfg, "lora", precision, optimizer, batch_size=b, seq_len=s, lora_r=r).total <= full
    assert memory.estimate(cfg, "qlora", precision, optimizer, batch_size=b, seq_len=s, lora_r=r).total <= full


def test_lora_estimate_defaults_to_the_layers_training_adapts():
    from gptforall_utils import training

    cfg = memory.model_config("SmolLM2-135M")
    # one target list: memory's default (every linear layer of the block) is the set training adapts by default
    assert set(training.DEFAULT_LORA_TARGETS) == set(cfg.linear_shapes())
    assert memory.lora_params(cfg, 8) == memory.lora_params(cfg, 8, training.DEFAULT_LORA_TARGETS)
    assert not hasattr(memory, "LORA_TARGETS")


def _saved_bytes_per_token(model, seq_len):
    """What autograd keeps for backward in one forward pass, per token (distinct storages, weights excluded)."""
    import torch

    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in weights:
            kept[s.data_ptr()] = s.nbytes()
        return t

    ids = torch.randint(0, model.config.vocab_size, (1, seq_len), generator=torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids).loss.detach()
    return sum(kept.values()) / seq_len


@pytest.mark.parametrize("method,dropout", [("full", 0.0), ("lora", 0.0), ("lora", 0.1)])
def test_activation_count_matches_what_autograd_saves(method, dropout):
    from peft import LoraConfig, get_peft_model

    from gptforall_utils import models, training

    model = models.load_model("smollm2-135m-instruct", verbose=False)  # a fresh copy: peft edits it in place
    if method == "lora":
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout,
                                                 target_modules=list(training.DEFAULT_LORA_TARGETS)))
    model.train()
    per_token = memory.activation_values_per_token(model, method=method, lora_dropout=dropout)
    # the formula's 3V includes two gradients that exist only in the backward pass; autograd saves one V
    counted = 4 * (per_token["blocks"] + per_token["logits"] / 3)
    saved = _saved_bytes_per_token(model, 16)
    if dropout == 0:
        assert counted == pytest.approx(saved, rel=0.05)
    else:  # a dropped copy and a mask per adapter is an upper bound: autograd keeps fewer masks
        assert saved <= counted <= 1.2 * saved


def test_frozen_base_keeps_fewer_activations_and_dropout_adds_copies():
    cfg = memory.MODELS["SmolLM2-135M"]
    full = memory.activation_values_per_token(cfg, method="full")["blocks"]
    lora = memory.activation_values_per_token(cfg, method="lora", lora_r=8)["blocks"]
    dropped = memory.activation_values_per_token(cfg, method="lora", lora_r=8, lora_dropout=0.05)["blocks"]
    assert lora < full < dropped
    inputs = sum(a for a, _ in cfg.linear_shapes().values())
    assert dropped - lora == 2 * inputs * cfg.layers
    with pytest.raises(ValueError, match="lora_dropout"):
        memory.estimate(cfg, "lora", lora_dropout=1.5)


def test_return_freed_memory_rejects_a_nonsense_threshold():
    with pytest.raises(ValueError, match="threshold"):
        memory.return_freed_memory(0)


def test_peak_holds_the_larger_of_gradients_and_activations():
    short = memory.estimate("SmolLM2-135M", "full", seq_len=16)  # gradients dominate
    long = memory.estimate("SmolLM2-135M", "full", batch_size=8, seq_len=2048)  # activations dominate
    assert short.peak_above_weights == pytest.approx(short.optimizer + short.gradients)
    assert long.peak_above_weights == pytest.approx(long.optimizer + long.activations)
    for b in (short, long):
        assert b.peak_above_weights < b.above_weights


def test_fsdp_shards_the_training_state_but_not_the_activations():
    b = memory.estimate("LLaMA-7B", "full", "bf16", batch_size=1, seq_len=512)
    state = b.weights + b.gradients + b.optimizer
    assert state / b.total_params == pytest.approx(16, rel=0.01)  # bf16 weight + grad, fp32 master, Adam m and v
    assert b.per_device(8, "ddp") == b.per_device(1, "fsdp") == pytest.approx(b.total)
    assert b.per_device(8, "fsdp") == pytest.approx(state / 8 + b.activations)
    assert b.per_device(64, "fsdp") > b.activations  # the floor FSDP never goes below
    with pytest.raises(ValueError, match="strategy"):
        b.per_device(8, "zero")
    with pytest.raises(ValueError, match="n_gpus"):
        b.per_device(0, "fsdp")


# ---------------------------------------------------------------- planning a training step on a card
def test_plan_keeps_activations_on_a_roomy_card_and_the_asked_for_batch():
    plan = memory.plan_step("SmolLM2-1.7B", "lora", "bf16", batch_size=16, grad_accum=4, seq_len=512, usable_gb=80)
    assert not plan.checkpointing and plan.fits
    assert plan.batch_size * plan.grad_accum == 64 and plan.batch_size >= 16
    assert plan.need_bytes <= 0.9 * 80 * memory.GIB


def test_plan_shrinks_the_micro_batch_then_checkpoints_on_a_t4():
    t4 = memory.plan_step("SmolLM2-1.7B", "lora", "fp16", batch_size=16, grad_accum=4, seq_len=512, usable_gb=15)
    assert t4.fits and t4.batch_size * t4.grad_accum == 64
    assert t4.batch_size < 16 or t4.checkpointing
    assert t4.need_bytes <= 0.9 * 15 * memory.GIB
    # Longer sequences: even micro-batch 4 does not fit without recomputing activations.
    long = memory.plan_step("SmolLM2-1.7B", "lora", "fp16", batch_size=16, grad_accum=4, seq_len=2048, usable_gb=15)
    assert long.checkpointing and long.fits and long.batch_size * long.grad_accum == 64


def test_plan_says_when_nothing_fits_and_leaves_a_cpu_alone():
    full = memory.plan_step("SmolLM2-1.7B", "full", "bf16", batch_size=8, grad_accum=1, seq_len=512, usable_gb=15)
    assert not full.fits and "does not fit" in full.describe()       # 16 bytes/parameter alone exceed a T4
    cpu = memory.plan_step("SmolLM2-1.7B", "full", "fp32", batch_size=8, grad_accum=2, seq_len=512, usable_gb=None)
    assert (cpu.batch_size, cpu.grad_accum, cpu.checkpointing, cpu.usable_bytes) == (8, 2, False, None)
    capped = memory.plan_step("SmolLM2-135M", "lora", "bf16", batch_size=16, grad_accum=4, seq_len=64,
                              usable_gb=80, max_batch=20)
    assert capped.batch_size <= 20 and capped.batch_size * capped.grad_accum == 64
    with pytest.raises(ValueError, match="usable_gb"):
        memory.plan_step("SmolLM2-135M", "lora", "bf16", 8, 1, 64, usable_gb=0)


# Names and memory (GiB) as torch reports them on these cards.
CARDS = [("NVIDIA H100 80GB HBM3", 79.1, "H100 80 GB"), ("NVIDIA H100 PCIe", 79.2, "H100 80 GB"),
         ("NVIDIA H200", 139.8, "H200 141 GB"), ("NVIDIA A100-SXM4-40GB", 39.4, "A100 40 GB"),
         ("NVIDIA A100-SXM4-80GB", 79.2, "A100 80 GB"), ("NVIDIA A100-PCIE-40GB", 39.4, "A100 40 GB"),
         ("Tesla T4", 14.6, "Colab T4 16 GB"), ("NVIDIA L4", 22.0, "L4 24 GB"),
         # not in the table: priced as the GPU row with the nearest memory ("L40S" is not "L4", "A10G" not "A100")
         ("NVIDIA A10G", 22.3, "L4 24 GB"), ("NVIDIA L40S", 44.4, "A100 40 GB"),
         ("Some Future Accelerator", 150.0, "H200 141 GB")]


@pytest.mark.parametrize("name,gib,row", CARDS)
def test_hardware_row_identifies_real_device_names(name, gib, row):
    assert memory.hardware_row(name, gib) == row
    assert row in memory.HARDWARE


def test_hardware_row_reads_the_model_from_the_name_before_the_memory():
    # the model number decides over the memory: an H100 capped to 40 GiB is still an H100
    assert memory.hardware_row("NVIDIA H100 80GB HBM3", 40.0) == "H100 80 GB"
    # among one model's rows: the memory in the name, else the card's, else the first row
    assert memory.hardware_row("NVIDIA A100-SXM4-80GB", 39.0) == "A100 80 GB"
    assert memory.hardware_row("NVIDIA A100 Graphics Device", 79.0) == "A100 80 GB"
    assert memory.hardware_row("NVIDIA A100 Graphics Device") == "A100 40 GB"
    assert memory.hardware_row("NVIDIA H200") == "H200 141 GB"
    with pytest.raises(ValueError, match="A10G"):
        memory.hardware_row("NVIDIA A10G")
    assert "CPU machine 24 GB" not in {memory.hardware_row(f"unknown {g}", g) for g in (1, 24, 500)}
