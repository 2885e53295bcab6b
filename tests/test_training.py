"""training: hardware-aware arguments, validation before training, the answer-only loss, a real run."""

from __future__ import annotations

import math

import pytest
import torch

from gptforall_utils import env, training


def _run(tmp_path, profile="cpu", device="cpu", precision="fp32"):
    run = env.start("t_training", profile, "auto", "offline", str(tmp_path), 0)
    run.device, run.precision = device, precision
    return run


def _dataset(tok, n=8):
    prompts = [f"Review: film number {i} was {'great' if i % 2 else 'awful'}.\nSentiment:" for i in range(n)]
    completions = [" positive" if i % 2 else " negative" for i in range(n)]
    return training.prompt_completion_dataset(tok, prompts, completions)


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
    assert common["activation_checkpointing"] is True
    assert common["gradient_accumulation_steps"] == training.PROFILE_BATCHES["gpu"][1]


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


def test_answer_only_loss_equals_the_usual_loss(tiny_model):
    model, tok = tiny_model
    feats = [x for x in _dataset(tok, 6)]
    right = training.collator(tok, "right")(feats)
    left = training.collator(tok, "left")(feats)
    with torch.no_grad():
        usual = model(**right).loss
        fast, out = training.answer_only_loss(model, left)
    assert out.logits.shape[0] == int((left["labels"] != -100).sum())  # logits only where answers are
    assert math.isclose(float(usual), float(fast), rel_tol=1e-4)


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
