"""fit_arguments / memory_plan for TRL's configs (issue 21): SFTConfig with prompt/completion chat data and DPOConfig
with preference pairs are sized for the card like train()'s TrainingArguments, planned from a CPU for a simulated
card (usable_gb)."""

from __future__ import annotations

import pytest
from conftest import make_run
from datasets import Dataset

from gptforall_utils import memory, training
from gptforall_utils.recipes import sft

GIB = 2**30


def _run(tmp_path):
    return make_run(tmp_path, "smoke", name="t_fit")


def _rows(n=16):
    text = "The committee reviewed the proposal in detail and asked for a revised budget. " * 3
    return [{"instruction": f"Summarise note {i}.", "context": text, "response": f"Note {i}: {text[:120]}"}
            for i in range(n)]


def _chat(n=16):
    return Dataset.from_list([sft.to_chat(r) for r in _rows(n)])


def _pairs(n=16):
    rows = _rows(n)
    return Dataset.from_list([{"prompt": [{"role": "user", "content": r["instruction"] + "\n\n" + r["context"]}],
                               "chosen": [{"role": "assistant", "content": r["response"]}],
                               "rejected": [{"role": "assistant", "content": "I do not know."}]} for r in rows])


def _shrinks(args, plan) -> bool:
    return plan.batch_size < args.per_device_train_batch_size or plan.checkpointing


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_a_small_card_changes_batch_or_checkpointing_for_trl_configs(tmp_path, tiny_model, kind):
    model, tok = tiny_model
    run = _run(tmp_path)
    if kind == "sft":
        args, ds = training.sft_config(run, batch_size=8, grad_accum=2, max_length=512), _chat()
    else:
        args, ds = training.dpo_config(run, batch_size=8, grad_accum=2, max_length=512), _pairs()
    peft = training.lora_config(model, r=16, alpha=32)
    roomy = training.memory_plan(model, ds, args, usable_gb=80, tokenizer=tok, peft_config=peft)
    assert (roomy.batch_size, roomy.grad_accum, roomy.checkpointing) == (16, 1, False)   # one big micro-batch
    # A card whose 90% holds less than the step at the configured batch of 8 without checkpointing.
    seq, per_example = training.training_sequence(ds, args, tok)
    at_8 = memory.plan_step(memory.model_config(model), "lora", "fp32", 8, 2, seq * per_example, None,
                            lora_r=16).need_bytes
    small_gb = 0.8 * at_8 / GIB / 0.9
    fitted = training.fit_arguments(args, model, ds, usable_gb=small_gb, tokenizer=tok, peft_config=peft)
    assert fitted is not args and type(fitted) is type(args)
    assert fitted.per_device_train_batch_size * fitted.gradient_accumulation_steps == 16    # same effective batch
    assert (fitted.per_device_train_batch_size < 8 or fitted.activation_checkpointing)
    assert fitted.per_device_eval_batch_size == fitted.per_device_train_batch_size
    assert training.fit_arguments(args, model, ds, tokenizer=tok, peft_config=peft) is args   # a CPU: unchanged


def test_a_preference_pair_counts_as_two_sequences(tmp_path, tiny_model):
    model, tok = tiny_model
    run = _run(tmp_path)
    pairs = _pairs()
    seq, per_example = training.training_sequence(pairs, training.dpo_config(run), tok)
    assert per_example == 2
    # The longest pair is its chosen answer after the prompt, rendered with the chat template: as TRL tokenizes it.
    rendered = [tok.apply_chat_template(r["prompt"] + r["chosen"], tokenize=True, return_dict=True)["input_ids"]
                for r in pairs]
    assert seq == max(len(ids) for ids in rendered)
    assert training.training_sequence(_chat(), training.sft_config(run), tok)[1] == 1


def test_the_config_max_length_caps_the_measured_sequence(tmp_path, tiny_model):
    _, tok = tiny_model
    run = _run(tmp_path)
    assert training.training_sequence(_chat(), training.sft_config(run, max_length=32), tok) == (32, 1)
    assert training.training_sequence(_chat(), training.sft_config(run, max_length=64)) == (64, 1)  # no tokenizer


def test_a_trl_trainer_s_adapter_is_planned_as_lora_not_full(tmp_path, tiny_model):
    model, tok = tiny_model
    args = training.sft_config(_run(tmp_path), batch_size=8, max_length=512)
    as_lora = training.memory_plan(model, _chat(), args, usable_gb=80, tokenizer=tok,
                                   peft_config=training.lora_config(model))
    as_full = training.memory_plan(model, _chat(), args, usable_gb=80, tokenizer=tok)
    _, total = training.parameter_counts(model)
    # Full fine-tuning would also keep gradients and two fp32 Adam states for every weight: >= 8 bytes each.
    assert as_full.need_bytes - as_lora.need_bytes > 8 * total
