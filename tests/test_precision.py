"""Mixed precision in training: fp16 on the CPU is real (torch's autocast and GradScaler), the printed label says
what is active, and a GradScaler that keeps skipping optimizer steps stops the run (issue 21)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_run, nan_gradient_at, sentiment_pairs

from gptforall_utils import env, models, training


def _run(tmp_path, precision):
    return make_run(tmp_path, "smoke", precision=precision, name="t_precision")


_dataset = sentiment_pairs


def _lora(dtype=torch.float32, r=4, small=False):
    """LoRA on the embedded SmolLM2-135M, or (small=True) on a 2-layer model of the same architecture and tokenizer:
    the GradScaler tests test the guard, and fp16 matmuls on a CPU are slow (emulated where the CPU lacks them)."""
    from peft import get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    if small:
        torch.manual_seed(0)
        base = models.load_model("smollm2-135m-instruct", dtype=torch.float32, verbose=False).config
        model = LlamaForCausalLM(LlamaConfig(vocab_size=base.vocab_size, hidden_size=64, intermediate_size=128,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             tie_word_embeddings=True))
    else:
        model = models.load_model("smollm2-135m-instruct", dtype=dtype, verbose=False)
    return get_peft_model(model, training.lora_config(model, r=r, dropout=0.0, target_modules=("q_proj", "v_proj")))


def _trainer(model, tok, args, ds):
    return training._trainer_class()(model=model, args=args, train_dataset=ds,
                                     data_collator=training.collator(tok, training.TRAINING_PADDING_SIDE))


def _force_scaler(trainer, **scaler_kwargs):
    """A GradScaler on this trainer's accelerator, as accelerate sets one up on a card (what a T4 run has)."""
    trainer.accelerator.scaler = torch.amp.GradScaler("cpu", **scaler_kwargs)
    trainer.accelerator.native_amp = True


def _lora_b(model):
    return [p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n]


# ---------------------------------------------------------------- item 1: skipped steps under a GradScaler
def test_a_gradscaler_that_skips_every_step_stops_the_run(tmp_path, tiny_model):
    # A scale of 2**100 overflows every fp16 backward pass, and a backoff of 0.9 keeps it there for the whole run:
    # the scaler skips all 4 optimizer steps, and without the guard the run ends with no error and no learning.
    _, tok = tiny_model
    model = _lora(small=True)
    before = _lora_b(model)
    args = training.training_arguments(_run(tmp_path, "fp16"), batch_size=4, max_steps=4, logging_steps=1)
    trainer = _trainer(model, tok, args, _dataset(tok, 8))
    _force_scaler(trainer, init_scale=2.0 ** 100, backoff_factor=0.9)
    with pytest.raises(training.DivergedError) as err:
        training.run_trainer(trainer, "lora")
    message = str(err.value)
    assert "optimizer step 4 of 4" in message and "skipped every optimizer step (4 of 4)" in message
    assert "fp16 autocast with a GradScaler" in message
    assert all(torch.equal(a, b) for a, b in zip(before, _lora_b(model)))     # indeed: nothing was learned


def test_a_long_run_of_skipped_steps_stops_the_run_at_its_step(tmp_path, tiny_model, monkeypatch):
    _, tok = tiny_model
    monkeypatch.setattr(training.FiniteGuard, "MAX_SKIPPED_IN_A_ROW", 2)
    args = training.training_arguments(_run(tmp_path, "fp16"), batch_size=4, max_steps=4, logging_steps=1)
    trainer = _trainer(_lora(small=True), tok, args, _dataset(tok, 8))
    _force_scaler(trainer, init_scale=2.0 ** 100, backoff_factor=0.9)
    with pytest.raises(training.DivergedError, match=r"step 2 of 4: the GradScaler skipped the last 2 optimizer steps"):
        training.run_trainer(trainer, "lora")


def test_an_overflow_at_loss_scale_one_is_a_divergence(tmp_path, tiny_model):
    # At a scale of 1 nothing amplified the gradients: NaN gradients are the backward pass's own, not an overflow
    # for the scaler to absorb (it would skip the step silently, every step).
    _, tok = tiny_model
    model = _lora(small=True)
    nan_gradient_at(model, backward=2)
    args = training.training_arguments(_run(tmp_path, "fp16"), batch_size=4, max_steps=4, logging_steps=1)
    trainer = _trainer(model, tok, args, _dataset(tok, 8))
    _force_scaler(trainer, init_scale=1.0)
    with pytest.raises(training.DivergedError, match="step 2 of 4: the gradients were not finite at a loss scale of 1"):
        training.run_trainer(trainer, "lora")


def test_occasional_skips_under_a_gradscaler_are_not_an_error(tmp_path, tiny_model):
    # The default-style start: the scale begins too high, the first steps overflow and are skipped, then it trains.
    _, tok = tiny_model
    model = _lora(small=True)
    before = _lora_b(model)
    args = training.training_arguments(_run(tmp_path, "fp16"), learning_rate=3e-3, batch_size=4, max_steps=6,
                                       logging_steps=1)
    trainer = _trainer(model, tok, args, _dataset(tok, 8))
    _force_scaler(trainer, init_scale=2.0 ** 40, backoff_factor=2.0 ** -30)   # 2**40 overflows, 2**10 does not
    result = training.run_trainer(trainer, "lora")
    scale = float(trainer.accelerator.scaler.get_scale())
    assert scale < 2.0 ** 40                                                   # at least one step was skipped
    assert math.isfinite(result.final_loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, _lora_b(model)))  # and later steps were taken


# ---------------------------------------------------------------- item 2: fp16 on the CPU is real, and so is its label
def test_the_precision_label_reads_the_accelerator_not_the_arguments(tmp_path, tiny_model):
    # A stock Trainer with fp16=True on a CPU: accelerate 1.15 turns fp16 on only off the CPU, so nothing is active.
    model, tok = tiny_model
    args = training.training_arguments(_run(tmp_path, "fp16"), batch_size=4, max_steps=1)
    assert args.fp16
    trainer = training._trainer_class()(model=model, args=args, train_dataset=_dataset(tok, 8),
                                        data_collator=training.collator(tok))
    assert trainer.accelerator.scaler is None and not trainer.accelerator.native_amp
    label = training.precision_summary(model, args, trainer.accelerator)
    assert label.startswith("no autocast (fp16 requested, not active on cpu)") and "GradScaler" not in label
    assert training.enable_fp16(trainer)
    assert training.precision_summary(model, args, trainer.accelerator).startswith("fp16 autocast with a GradScaler;")


def test_fp16_on_the_cpu_trains_with_real_autocast_and_a_gradscaler(tmp_path, tiny_model, monkeypatch, capsys):
    # GPTFORALL_PRECISION=fp16 on a CPU: the embedded model's frozen base in fp16, fp32 adapters, and train() runs
    # torch's fp16 autocast with a real GradScaler (the same code path as a T4), and learns.
    from transformers import TrainerCallback

    monkeypatch.setenv(env.PRECISION_ENV, "fp16")
    _, tok = tiny_model
    model = _lora(dtype=None)                         # the run's precision: an fp16 frozen base, fp32 adapters
    assert model.get_base_model().model.embed_tokens.weight.dtype == torch.float16
    seen = {"matmul": set(), "scalers": set(), "scales": []}
    q_proj = model.get_base_model().model.layers[0].self_attn.q_proj
    q_proj.lora_A["default"].register_forward_hook(lambda m, i, o: seen["matmul"].add(o.dtype))

    class Watch(TrainerCallback):
        def on_optimizer_step(self, args, state, control, optimizer=None, **kw):
            seen["scalers"].add(optimizer.scaler)
            seen["scales"].append(float(optimizer.scaler.get_scale()))

    # One batch of two examples, seen at every step: the loss must fall.
    args = training.training_arguments(_run(tmp_path, env.precision("cpu")), learning_rate=3e-3, batch_size=2,
                                       max_steps=3, logging_steps=1)
    assert args.fp16
    result = training.train(model, _dataset(tok, 2), args, tok, callbacks=[Watch()])
    printed = capsys.readouterr().out
    assert "training lora: fp16 autocast with a GradScaler; trainable weights fp32, frozen weights fp16" in printed
    assert seen["matmul"] == {torch.float16}           # the fp32 adapter's matmul ran in fp16: autocast is on
    (scaler,) = seen["scalers"]
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled() and scaler._device == "cpu"
    assert seen["scales"] == [training.FP16_INITIAL_SCALE] * 3   # no step skipped (2**16 would skip the first 4)
    assert all(math.isfinite(loss) for _, loss in result.loss_history)
    assert result.final_loss < result.first_loss


# ---------------------------------------------------------------- after training: the model's own forward
def test_after_training_the_model_answers_without_the_training_autocast(tmp_path, tiny_model, monkeypatch):
    """accelerate wraps the forward in bf16 autocast for training and leaves it there; run_trainer removes it, so a
    trained model answers as a freshly loaded one would (what before/after and merged/unmerged comparisons need)."""
    _, tok = tiny_model
    model = _lora(small=True)
    args = training.training_arguments(_run(tmp_path, "bf16"), batch_size=4, max_steps=1, logging_steps=1)
    trainer = _trainer(model, tok, args, _dataset(tok, 4))
    ids = tok("the film was great", return_tensors="pt")["input_ids"]
    seen = {}
    original = training.remove_autocast_wrapper

    def spy(m):
        with torch.no_grad():  # the forward as training left it: under bf16 autocast
            seen["wrapped"] = m(input_ids=ids).logits
        return original(m)

    monkeypatch.setattr(training, "remove_autocast_wrapper", spy)
    training.run_trainer(trainer, "lora")
    assert "_original_forward" not in model.__dict__
    with torch.no_grad():
        logits = model(input_ids=ids).logits
        own = type(model).forward(model, input_ids=ids).logits   # the class's forward: no autocast at all
    assert torch.equal(logits, own)
    assert not torch.equal(seen["wrapped"], own)  # the wrapper really changed the answer (bf16 matmuls)
    assert training.remove_autocast_wrapper(model) is False       # nothing left to remove
