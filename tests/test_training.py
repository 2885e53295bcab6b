"""training: hardware-aware arguments, validation before training, the answer-only loss, a real run."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_run, nan_gradient_at, sentiment_pairs

from gptforall_utils import env, training


def _run(tmp_path, profile="cpu", device="cpu", precision="fp32"):
    return make_run(tmp_path, profile, device, precision, name="t_training")


_dataset = sentiment_pairs


def test_cpu_arguments_use_fp32_and_cpu(tmp_path):
    args = training.training_arguments(_run(tmp_path))
    assert args.use_cpu and not args.bf16 and not args.fp16
    assert args.per_device_train_batch_size == training.PROFILE_BATCHES["cpu"][0]
    assert not args.activation_checkpointing  # recomputation only pays on a GPU
    assert args.train_sampling_strategy == "group_by_length"


@pytest.mark.parametrize("capability,fp16,bf16", [((7, 5), True, False), ((8, 0), False, True)])
def test_gpu_precision_follows_the_card(tmp_path, monkeypatch, capability, fp16, bf16):
    # A T4 (sm_75) has no bf16: fp16. An A100 (sm_80): bf16. The card is mocked; arguments are built
    # with the CPU switch so that TrainingArguments' own GPU checks are not triggered.
    prec = env.precision("cuda", capability)
    run = _run(tmp_path, profile="gpu", device="cuda", precision=prec)
    kwargs = training._hardware_kwargs(run)
    assert (kwargs["fp16"], kwargs["bf16"], kwargs["use_cpu"]) == (fp16, bf16, False)
    common = training._common_kwargs(run, None, 2e-4, 1, None, None, -1, 5, 0, None)
    # Checkpointing no longer follows the profile name: fit_arguments turns it on only when the step would
    # not fit the card (tested in test_memory_plan_*).
    assert common["activation_checkpointing"] is False
    assert common["gradient_accumulation_steps"] == training.PROFILE_BATCHES["gpu"][1]
    assert common["logging_nan_inf_filter"] is False


def test_bad_lora_settings_are_refused(tiny_model):
    model, _ = tiny_model
    for r in (0, -4):
        with pytest.raises(ValueError, match="rank"):
            training.lora_config(model, r=r)
    with pytest.raises(ValueError, match="do not exist"):
        training.lora_config(model, target_modules=("q_proj", "query_key_value"))
    assert training.lora_config(model, r=4, target_modules=("q_proj",)).r == 4


def test_empty_data_and_oversized_batch_are_refused(tiny_model, tmp_path):
    model, tok = tiny_model
    with pytest.raises(ValueError, match="empty"):
        training.prompt_completion_dataset(tok, [], [])
    ds = _dataset(tok, 4)
    args = training.training_arguments(_run(tmp_path), batch_size=8, max_steps=1)
    with pytest.raises(ValueError, match="larger than the dataset"):
        training.train(model, ds, args, tok)
    with pytest.raises(ValueError, match="empty"):
        training.train(model, ds.select([]), args, tok)


def test_labels_mask_the_prompt(tiny_model):
    _, tok = tiny_model
    ds = _dataset(tok, 2)
    row = ds[1]
    answer = [t for t in row["labels"] if t != -100]
    assert answer == tok(" positive", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert row["input_ids"][-len(answer):] == answer


def test_answer_only_loss_equals_the_usual_loss_with_either_padding(tiny_model):
    model, tok = tiny_model
    feats = [x for x in _dataset(tok, 6)]
    right = training.collator(tok, "right")(feats)
    left = training.collator(tok, "left")(feats)
    with torch.no_grad():
        usual = model(**right).loss
        fast_right, out = training.answer_only_loss(model, right)
        fast_left, _ = training.answer_only_loss(model, left)
    assert out.logits.shape[0] == int((right["labels"] != -100).sum())  # logits only where answers are
    assert math.isclose(float(usual), float(fast_right), rel_tol=1e-4)
    assert math.isclose(float(fast_right), float(fast_left), rel_tol=1e-4)   # training pads right, scoring left


def test_padding_share_falls_with_length_grouping(tiny_model):
    _, tok = tiny_model
    prompts = ["word " * (3 + (i * 7) % 40) for i in range(64)]
    ds = training.prompt_completion_dataset(tok, prompts, ["x"] * 64)
    assert training.padding_share(ds, 8, group_by_length=True) < training.padding_share(ds, 8) / 2


def test_short_lora_training_lowers_the_loss(tmp_path):
    from peft import get_peft_model

    from gptforall_utils import models

    model = models.load_model("smollm2-135m-instruct", verbose=False)
    tok = models.load_tokenizer("smollm2-135m-instruct")
    ds = _dataset(tok, 8)
    peft_model = get_peft_model(model, training.lora_config(model, r=8, target_modules=("q_proj", "v_proj")))
    args = training.training_arguments(_run(tmp_path), learning_rate=3e-3, batch_size=8, max_steps=6,
                                       logging_steps=1)
    result = training.train(peft_model, ds, args, tok)
    assert result.trainable_params < 0.01 * result.total_params
    assert len(result.loss_history) == 6
    assert result.final_loss < 0.5 * result.first_loss
    assert result.tokens_seen > 0 and result.train_seconds > 0


def test_parameter_counts_count_4bit_weights_as_weights(tiny_model):
    pytest.importorskip("bitsandbytes")
    from gptforall_utils import models

    quantized = models.load_model("smollm2-135m-instruct", quantization="nf4", verbose=False)
    # 4-bit storage packs two weights per byte; the count must still be the model's weights.
    assert training.parameter_counts(quantized)[1] == training.parameter_counts(tiny_model[0])[1]


def test_a_run_shorter_than_logging_steps_still_reports_its_loss(tmp_path, tiny_model):
    import math

    from peft import get_peft_model

    model, tok = tiny_model
    peft_model = get_peft_model(model, training.lora_config(model, r=2, target_modules=("q_proj",)))
    args = training.training_arguments(_run(tmp_path), batch_size=4, max_steps=2, logging_steps=50)
    result = training.train(peft_model, _dataset(tok, 8), args, tok)
    peft_model.unload()  # give the shared fixture model back unchanged
    assert len(result.loss_history) == 1 and result.loss_history[0][0] == 2
    assert math.isfinite(result.final_loss) and result.final_loss > 0
    # Nothing was saved (save_strategy="no"), so no empty checkpoint folder is left behind.
    assert (tmp_path / "t_training").is_dir() and not (tmp_path / "t_training" / "checkpoints").exists()


def test_only_an_empty_output_folder_is_removed(tmp_path):
    empty, kept = tmp_path / "empty", tmp_path / "kept"
    empty.mkdir()
    kept.mkdir()
    (kept / "checkpoint-1").mkdir()
    for folder in (empty, kept, tmp_path / "missing"):
        training._remove_if_empty(folder)
    assert not empty.exists() and (kept / "checkpoint-1").is_dir()


# ---------------------------------------------------------------- a diverged run is never a result
def _lora(model, r=2):
    from peft import get_peft_model

    return get_peft_model(model, training.lora_config(model, r=r, dropout=0.0, target_modules=("q_proj", "v_proj")))


def _fresh():
    from gptforall_utils import models

    return models.load_model("smollm2-135m-instruct", verbose=False)


def test_helpers_never_let_the_trainer_hide_a_nan_loss(tmp_path):
    run = _run(tmp_path)
    assert training.training_arguments(run).logging_nan_inf_filter is False
    assert training.sft_config(run).logging_nan_inf_filter is False


def test_a_nan_loss_stops_training_at_its_step(tmp_path, tiny_model):
    _, tok = tiny_model
    model = _lora(_fresh())
    calls = {"n": 0}

    def poison_at_third_forward(module, inputs, output):   # micro-batch 3 = optimizer step 3
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 3 else output

    model.get_output_embeddings().register_forward_hook(poison_at_third_forward)
    args = training.training_arguments(_run(tmp_path), batch_size=4, max_steps=4, logging_steps=1)
    with pytest.raises(training.DivergedError) as err:
        training.train(model, _dataset(tok, 8), args, tok)
    message = str(err.value)
    assert "step 3 of 4" in message and "the loss was nan" in message
    assert "no autocast; trainable weights fp32, frozen weights fp32" in message    # the precision, named
    assert "lower learning rate" in message and "right padding" in message       # and what to try


def test_a_nan_gradient_stops_training_before_the_weights_are_hit(tmp_path, tiny_model):
    _, tok = tiny_model
    model = _lora(_fresh())
    nan_gradient_at(model, backward=2)
    args = training.training_arguments(_run(tmp_path), batch_size=4, max_steps=4, logging_steps=1)
    with pytest.raises(training.DivergedError, match="step 2 of 4: the gradients were not finite while the loss"):
        training.train(model, _dataset(tok, 8), args, tok)
    # The optimizer step with NaN gradients was never taken: every trainable weight is still finite.
    assert all(torch.isfinite(p).all() for p in model.parameters() if p.requires_grad)


def test_non_finite_weights_are_caught_at_the_end(tmp_path, tiny_model):
    from transformers import TrainerCallback

    _, tok = tiny_model
    model = _lora(_fresh())

    class PoisonAfterLastStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == state.max_steps:
                with torch.no_grad():
                    next(p for n, p in model.named_parameters() if "lora_A" in n)[0, 0] = float("inf")

    args = training.training_arguments(_run(tmp_path), batch_size=4, max_steps=2, logging_steps=1)
    with pytest.raises(training.DivergedError, match="trainable weights are not finite at the end"):
        training.train(model, _dataset(tok, 8), args, tok, callbacks=[PoisonAfterLastStep()])


def test_a_non_finite_loss_history_is_not_a_result():
    with pytest.raises(training.DivergedError, match="non-finite"):
        training.TrainResult("lora", 1, 2, 1.0, 0.0, 10, loss_history=[(1, 0.7), (2, float("nan"))])
    assert training.TrainResult("lora", 1, 2, 1.0, 0.0, 10, loss_history=[(1, 0.7)]).final_loss == 0.7


def test_half_precision_trainable_weights_are_refused(tiny_model):
    from types import SimpleNamespace

    half = _fresh().to(torch.float16)
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients"):
        training.check_trainable_dtypes(half, SimpleNamespace(fp16=True, bf16=False))
    with pytest.raises(ValueError, match="full_finetuning=True"):
        training.check_trainable_dtypes(half.to(torch.bfloat16), SimpleNamespace(fp16=False, bf16=True))
    adapters = _lora(half.to(torch.bfloat16))   # PEFT keeps adapters fp32 over a half-precision base
    training.check_trainable_dtypes(adapters, SimpleNamespace(fp16=False, bf16=True))


def test_full_finetuning_loads_fp32_master_weights_whatever_the_precision(monkeypatch):
    from gptforall_utils import models

    monkeypatch.setenv(env.PRECISION_ENV, "bf16")
    assert models.default_dtype("cpu") is torch.bfloat16                      # inference follows the override
    assert models.default_dtype("cuda", full_finetuning=True) is torch.float32
    assert models.default_dtype("cuda", quantization="int8") is torch.float16  # int8 matmul computes in fp16
    with pytest.raises(ValueError, match="fp32 master weights"):
        models.load_model("smollm2-135m-instruct", full_finetuning=True, dtype=torch.bfloat16, verbose=False)
    with pytest.raises(ValueError, match="quantized weights are frozen"):
        models.load_model("smollm2-135m-instruct", full_finetuning=True, quantization="int8", verbose=False)


# ---------------------------------------------------------------- padding: no fully masked attention row
def _empty_query_rows(attention_mask) -> int:
    """Query rows that attend to no key under the causal mask the model builds from this padding mask."""
    from transformers.masking_utils import sdpa_mask

    b, n = attention_mask.shape
    mask = sdpa_mask(batch_size=b, q_length=n, kv_length=n, attention_mask=attention_mask.bool(),
                     allow_is_causal_skip=False)                              # (b, 1, n, n), True = attend
    return int((~mask.any(dim=-1)).sum())


def test_training_batches_have_no_fully_masked_attention_row(tmp_path, tiny_model, monkeypatch):
    model, tok = tiny_model
    feats = list(_dataset(tok, 6))
    assert _empty_query_rows(training.collator(tok, "left")(feats)["attention_mask"]) > 0   # what left padding does
    seen = []

    def recording_collator(tokenizer, side="right"):
        inner = training.PadCollator(tokenizer.pad_token_id, side)

        def collate(features):
            batch = inner(features)
            seen.append(batch["attention_mask"])
            return batch
        collate.padding_side = side
        return collate

    monkeypatch.setattr(training, "collator", recording_collator)
    peft_model = _lora(model)
    try:
        args = training.training_arguments(_run(tmp_path), batch_size=3, max_steps=2, logging_steps=1)
        training.train(peft_model, _dataset(tok, 6), args, tok)
    finally:
        peft_model.unload()
    assert seen and all(_empty_query_rows(m) == 0 for m in seen)
    assert any((m == 0).any() for m in seen)                                 # the batches were padded


def _register_nan_grad_on_empty_rows() -> str:
    """An attention implementation that behaves like the suspected CUDA kernels: the forward pass is SDPA's
    (a fully masked query row gives 0), the backward pass returns NaN for the query of every fully masked row."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import sdpa_mask

    class NanGradOnEmptyRows(torch.autograd.Function):
        @staticmethod
        def forward(ctx, query, empty):          # query (b, heads, q, d); empty (b, 1, q)
            ctx.save_for_backward(empty)
            return query.view_as(query)

        @staticmethod
        def backward(ctx, grad):
            (empty,) = ctx.saved_tensors
            return grad.masked_fill(empty[..., None], float("nan")), None

    def attention(module, query, key, value, attention_mask, **kwargs):
        if attention_mask is not None and attention_mask.dtype == torch.bool:
            empty = ~attention_mask.any(dim=-1)
            if bool(empty.any()):
                query = NanGradOnEmptyRows.apply(query, empty)
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("nan_grad_on_empty_rows", attention)
    AttentionMaskInterface.register("nan_grad_on_empty_rows", sdpa_mask)
    return "nan_grad_on_empty_rows"


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_kernel_with_nan_gradients_on_empty_rows_breaks_left_padding_only(tmp_path, tiny_model, monkeypatch, side):
    _, tok = tiny_model
    base = _fresh()
    base.set_attn_implementation(_register_nan_grad_on_empty_rows())
    model = _lora(base)
    monkeypatch.setattr(training, "TRAINING_PADDING_SIDE", side)
    args = training.training_arguments(_run(tmp_path), learning_rate=1e-3, batch_size=4, max_steps=3,
                                       logging_steps=1)
    if side == "left":
        # The collapse of the GPU runs, reproduced on a CPU with an emulated kernel: caught at step 1, before
        # the optimizer writes NaN into the adapters.
        with pytest.raises(training.DivergedError, match="step 1 of 3: the gradients were not finite"):
            training.train(model, _dataset(tok, 8), args, tok)
    else:
        result = training.train(model, _dataset(tok, 8), args, tok)
        assert all(math.isfinite(loss) for _, loss in result.loss_history)
    assert all(torch.isfinite(p).all() for p in model.parameters() if p.requires_grad)


def test_activation_checkpointing_gives_the_same_adapter_gradients(tiny_model):
    """Non-reentrant checkpointing over a frozen base (a suspect of the GPU collapse): same gradients on CPU."""
    _, tok = tiny_model
    batch = training.collator(tok, "right")(list(_dataset(tok, 4)))
    grads = {}
    for ckpt in (False, True):
        torch.manual_seed(0)                      # the same LoRA initialisation both times
        model = _lora(_fresh())
        model.train()
        if ckpt:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        loss, _ = training.answer_only_loss(model, batch)
        loss.backward()
        grads[ckpt] = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    assert grads[True].keys() == grads[False].keys() and grads[True]
    assert any(g.abs().sum() > 0 for g in grads[True].values())      # gradients reached the adapters
    for name in grads[False]:
        assert torch.allclose(grads[True][name], grads[False][name], rtol=1e-4, atol=1e-7), name


def test_fit_arguments_keeps_cpu_runs_as_they_are(tmp_path, tiny_model):
    model, tok = tiny_model
    args = training.training_arguments(_run(tmp_path), batch_size=4)
    assert training.fit_arguments(args, model, _dataset(tok, 8)) is args


def test_memory_plan_follows_the_card_not_the_profile(tmp_path, tiny_model):
    model, tok = tiny_model
    peft_model = _lora(model)
    try:
        ds = _dataset(tok, 64)
        args = training.training_arguments(_run(tmp_path), batch_size=16, grad_accum=4)
        roomy = training.memory_plan(peft_model, ds, args, usable_gb=80)
        tiny = training.memory_plan(peft_model, ds, args, usable_gb=0.7)
    finally:
        peft_model.unload()
    assert (roomy.batch_size, roomy.grad_accum, roomy.checkpointing) == (64, 1, False)  # one big micro-batch
    assert tiny.batch_size * tiny.grad_accum == 64 and tiny.batch_size < 64
    assert tiny.need_bytes <= 0.9 * 0.7 * 2**30
    assert training.memory_plan(model, ds, args).usable_bytes is None           # a CPU: nothing to plan


def test_fp32_trainable_casts_only_half_precision_weights_that_train():
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)).to(torch.bfloat16)
    m[0].weight.requires_grad_(False)
    assert training.fp32_trainable(m) == 3  # m[0].bias, m[1].weight, m[1].bias
    assert m[0].weight.dtype == torch.bfloat16  # frozen: left as it is
    assert {p.dtype for p in m.parameters() if p.requires_grad} == {torch.float32}
    assert training.fp32_trainable(m) == 0
