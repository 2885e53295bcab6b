"""export: merging, pruning (exact sparsity, excluded layers untouched, 2:4 in every group), and GGUF files
that come back through transformers' `gguf_file=` (bit-exact for F16, perplexity within 2% for Q8_0)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from gptforall_utils import export, metrics, models

SAMPLE = ("The committee met on Tuesday to discuss the budget for next year. Members agreed that the "
          "library needs a new roof, and that the park should stay open later in summer. ") * 3


@pytest.fixture(scope="module")
def tokenizer():
    return models.load_tokenizer("smollm2-135m-instruct")


def tiny_llama(tokenizer, seed: int = 0, tie: bool = True):
    """A random 2-layer Llama with the course tokenizer's vocabulary, its weights rounded to fp16 (so an
    F16 file can hold them exactly), in fp32."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rope_theta=10000.0, tie_word_embeddings=tie, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05) if p.ndim > 1 else p.uniform_(0.5, 1.5)  # norms away from 1: they must survive
            p.copy_(p.half().float())
    return model


@pytest.fixture(scope="module")
def tiny_f16(tokenizer, tmp_path_factory):
    """(source model, its F16 GGUF path, the model and tokenizer loaded back from that file)."""
    model = tiny_llama(tokenizer)
    path = export.write_gguf(model, tokenizer, tmp_path_factory.mktemp("gguf") / "tiny-F16.gguf", "F16")
    back, back_tok = export.load_gguf(path)
    return model, path, back, back_tok


# ---------------------------------------------------------------- GGUF round trip
def test_f16_round_trip_is_bit_exact_on_the_logits(tiny_f16, tokenizer):
    model, _, back, _ = tiny_f16
    ids = tokenizer(SAMPLE, return_tensors="pt")["input_ids"]
    assert export.max_logit_difference(model, back, ids) == 0.0


def test_f16_file_rebuilds_the_config_and_the_tokenizer(tiny_f16, tokenizer):
    model, path, back, back_tok = tiny_f16
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "vocab_size", "max_position_embeddings", "tie_word_embeddings"):
        assert getattr(back.config, key) == getattr(model.config, key), key
    assert back.config.rope_parameters["rope_theta"] == pytest.approx(10000.0)
    assert export.same_tokenizer(tokenizer, back_tok, [SAMPLE, "Ünïcode, digits 12345 and\n\n  spaces"])
    assert back_tok.chat_template == tokenizer.chat_template
    summary = export.gguf_summary(path)
    assert summary["metadata"]["tokenizer.ggml.model"] == "gpt2"
    assert summary["metadata"]["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    assert "tokenizer.chat_template" in summary["metadata"]
    assert "output.weight" not in summary["tensor_types"]  # tied: llama.cpp reuses token_embd
    assert summary["tensor_types"] == {"F16": 15, "F32": 5}  # 7 projections x 2 + embedding; 2 x 2 norms + final


def test_fp16_rounded_twin_of_a_bf16_model_matches_its_f16_file_bit_for_bit(tokenizer, tmp_path):
    """In bf16 (as on a card) the F16 file, loaded back in fp32 on the CPU, must equal the fp16-rounded twin exactly."""
    model = tiny_llama(tokenizer, seed=2)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05) if p.ndim > 1 else p.uniform_(0.5, 1.5)  # not fp16-exact: rounding must happen
    model.save_pretrained(tmp_path / "tiny")
    model = type(model).from_pretrained(tmp_path / "tiny", dtype=torch.bfloat16).eval()  # as load_model does
    path = export.write_gguf(model, tokenizer, tmp_path / "tiny-bf16-F16.gguf", "F16")
    back = export.load_gguf_model(path)
    twin = export.fp16_rounded(model)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}  # the source is left as it was
    ids = tokenizer(SAMPLE, return_tensors="pt")["input_ids"]
    assert export.max_logit_difference(twin, back, ids) == 0.0
    assert export.max_logit_difference(model, back, ids) > 0.0  # the bf16 model itself computes differently


def test_quantized_files_store_what_they_promise(tokenizer, tmp_path):
    model = tiny_llama(tokenizer, seed=1)
    types = {}
    for qtype in ("Q8_0", "Q4_0"):
        path = export.write_gguf(model, tokenizer, tmp_path / f"tiny-{qtype}.gguf", qtype)
        types[qtype] = export.gguf_summary(path)["tensor_types"]
    # Norms stay F32; the embedding (also the output layer) is Q8_0 in every quantized file.
    assert types["Q8_0"] == {"Q8_0": 15, "F32": 5}
    assert types["Q4_0"] == {"Q4_0": 14, "Q8_0": 1, "F32": 5}
    mixed = export.write_gguf(model, tokenizer, tmp_path / "tiny-mixed.gguf", "Q4_0", overrides={"ffn_down": "Q8_0"})
    assert export.gguf_summary(mixed)["tensor_types"] == {"Q4_0": 12, "Q8_0": 3, "F32": 5}
    back = export.load_gguf_model(tmp_path / "tiny-Q4_0.gguf")
    ids = tokenizer(SAMPLE, return_tensors="pt")["input_ids"]
    diff = export.max_logit_difference(model, back, ids)
    assert 0.0 < diff < 1.0  # lossy, but the same model


def test_q8_0_export_keeps_perplexity_within_two_percent(tiny_model, tmp_path):
    model, tok = tiny_model
    from gptforall_utils import data

    text = data.load("lm_text", "offline")["test"]["text"][:6]
    path = export.write_gguf(model, tok, tmp_path / "smollm2-Q8_0.gguf", "Q8_0")
    back = export.load_gguf_model(path)
    before = metrics.perplexity(model, tok, text, max_length=256, stride=192, max_tokens=768)
    after = metrics.perplexity(back, tok, text, max_length=256, stride=192, max_tokens=768)
    assert after != before  # it really was quantized
    assert abs(after / before - 1) < 0.02, (before, after)
    assert export.file_mb(path) < 0.6 * 2 * sum(p.numel() for p in model.parameters()) / 2**20  # well under F16


def test_permutation_is_what_transformers_undoes():
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    w = torch.arange(8 * 16 * 3, dtype=torch.float32).reshape(8 * 16, 3)  # 8 heads of 16 rows
    undone = LlamaTensorProcessor()._reverse_permute_weights(export.permute_for_gguf(w, 8).numpy(), 8, 8)
    assert torch.equal(torch.from_numpy(undone), w)
    assert not torch.equal(export.permute_for_gguf(w, 8), w)


def test_write_gguf_refuses_what_it_cannot_write(tokenizer, tmp_path):
    model = tiny_llama(tokenizer)
    with pytest.raises(ValueError, match="Q8_0"):
        export.write_gguf(model, tokenizer, tmp_path / "x.gguf", "Q3_K")
    with pytest.raises(ValueError, match="Q2_K"):
        export.write_gguf(model, tokenizer, tmp_path / "x.gguf", "Q4_0", overrides={"attn_v": "Q2_K"})
    model.config.model_type = "gpt2"
    with pytest.raises(ValueError, match="Llama"):
        export.write_gguf(model, tokenizer, tmp_path / "x.gguf", "F16")
    assert not (tmp_path / "x.gguf").exists()


def test_load_gguf_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="write_gguf"):
        export.load_gguf(tmp_path / "missing.gguf")
    with pytest.raises(FileNotFoundError, match="write_gguf"):
        export.load_gguf_tokenizer(tmp_path / "missing.gguf")


# ---------------------------------------------------------------- merge
def test_merge_adapter_gives_a_plain_model_with_the_adapters_outputs(tokenizer):
    from peft import get_peft_model

    from gptforall_utils import training

    model = tiny_llama(tokenizer)
    lora = get_peft_model(model, training.lora_config(model, r=4, alpha=8, dropout=0.0))
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # B starts at zero: make the adapter do something
    ids = tokenizer(SAMPLE, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        adapted = lora(input_ids=ids).logits
    merged = export.merge_adapter(lora)
    assert not hasattr(merged, "peft_config")
    assert torch.allclose(merged(input_ids=ids).logits, adapted, atol=1e-4)
    with pytest.raises(ValueError, match="PEFT"):
        export.merge_adapter(merged)


# ---------------------------------------------------------------- pruning
def _untouched_snapshot(model):
    prunable = {f"{n}.weight" for n in export.prunable_linears(model)}
    return {k: v.clone() for k, v in model.state_dict().items() if k not in prunable}


@pytest.mark.parametrize("method", export.PRUNE_METHODS)
@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.75])
def test_pruning_hits_the_sparsity_exactly_and_leaves_excluded_layers_alone(tokenizer, method, sparsity):
    model = tiny_llama(tokenizer)
    norms = export.activation_norms(model, tokenizer, [SAMPLE], n_batches=2, seq_len=32)
    before = _untouched_snapshot(model)
    achieved = export.prune_(model, sparsity, method, norms=norms)
    assert achieved == sparsity  # every row of every layer loses exactly round(sparsity * d_in) weights
    for name, layer in export.prunable_linears(model).items():
        zeros_per_row = (layer.weight == 0).sum(dim=1)
        assert (zeros_per_row == round(layer.in_features * sparsity)).all(), name
    after = model.state_dict()
    assert before.keys() and all(torch.equal(after[k], v) for k, v in before.items())
    assert "model.embed_tokens.weight" in before and "model.norm.weight" in before
    assert "lm_head" not in export.prunable_linears(model)


@pytest.mark.parametrize("method", export.PRUNE_METHODS)
def test_two_four_pattern_holds_in_every_group_of_four(tokenizer, method):
    model = tiny_llama(tokenizer)
    norms = export.activation_norms(model, tokenizer, [SAMPLE], n_batches=2, seq_len=32)
    achieved = export.prune_(model, 0.5, method, pattern="2:4", norms=norms)
    assert achieved == 0.5
    for name, layer in export.prunable_linears(model).items():
        groups = (layer.weight == 0).reshape(layer.out_features, -1, 4).sum(-1)
        assert (groups == 2).all(), name
        assert export.two_four_holds(layer.weight)


def test_wanda_keeps_small_weights_on_loud_inputs():
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    loud_first = torch.tensor([100.0, 1.0, 1.0, 1.0])
    magnitude = export.keep_mask(export.magnitude_score(w), 0.5)
    wanda = export.keep_mask(export.wanda_score(w, loud_first), 0.5)
    assert magnitude.tolist() == [[False, False, True, True]]
    assert wanda.tolist() == [[True, False, False, True]]


def test_wanda_scores_half_precision_weights_in_fp32():
    """A bf16 weight (as on a card) is scored in fp32, exactly as |W| * ||X|| with torch's type promotion (what
    notebook 11 writes out and checks equal to the package's mask): bf16 scores would order the weights differently."""
    torch.manual_seed(0)
    weight = torch.randn(64, 128).to(torch.bfloat16)
    norm = torch.rand(128) * 10
    score = export.wanda_score(weight, norm)
    assert score.dtype == torch.float32
    assert torch.equal(score, weight.abs() * norm)
    assert torch.equal(export.keep_mask(score, 0.5), export.keep_mask(weight.abs() * norm, 0.5))


def test_pruned_context_restores_the_dense_weights(tokenizer):
    model = tiny_llama(tokenizer)
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    with export.pruned(model, 0.5, "magnitude") as achieved:
        assert achieved == 0.5 and export.measured_sparsity(model) == 0.5
    assert all(torch.equal(model.state_dict()[k], v) for k, v in dense.items())
    assert export.measured_sparsity(model) == 0.0


def test_pruning_refuses_bad_requests(tokenizer):
    model = tiny_llama(tokenizer)
    with pytest.raises(ValueError, match="norms"):
        export.prune_(model, 0.5, "wanda")
    with pytest.raises(ValueError, match="method"):
        export.prune_(model, 0.5, "random")
    with pytest.raises(ValueError, match="sparsity"):
        export.keep_mask(torch.ones(2, 8), 1.0)
    with pytest.raises(ValueError, match="2:4"):
        export.keep_mask(torch.ones(2, 8), 0.6, "2:4")
    with pytest.raises(ValueError, match="tokens"):
        export.activation_norms(model, tokenizer, ["too short"], n_batches=4, seq_len=64)


def test_llama_cpp_reads_the_file_like_transformers(tiny_f16, tokenizer):
    """llama.cpp itself (not only transformers' reader) loads the F16 file: same tokens, same logits up to its
    half-precision arithmetic. Skipped where llama-cpp-python is not installed (CI; see benchmarks/on_device.md)."""
    import numpy as np

    llama_cpp = pytest.importorskip("llama_cpp")
    model, path, _, _ = tiny_f16
    ids = tokenizer(SAMPLE)["input_ids"][:48]
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=128, logits_all=True, n_threads=2, verbose=False)
    try:
        assert llm.tokenize(tokenizer.decode(ids).encode(), add_bos=False, special=True) == ids
        llm.eval(ids)
        theirs = np.array(llm.scores[:len(ids)])
    finally:
        llm.close()
    with torch.no_grad():
        ours = model(torch.tensor([ids])).logits[0].numpy()
    assert np.abs(theirs - ours).max() < 0.01 * np.abs(ours).max()
    assert (theirs.argmax(-1) == ours.argmax(-1)).all()


def test_int8_dynamic_quantizes_a_cpu_fp32_copy_of_a_half_precision_model(tokenizer):
    """quantize_dynamic has CPU fp32 kernels only: applied to a bf16 model (or one on a card) in place it fails at the
    first forward ("expected scalar type Float but found BFloat16"). int8_dynamic works on a CPU fp32 copy."""
    model = tiny_llama(tokenizer)
    half = tiny_llama(tokenizer).to(torch.bfloat16)
    int8 = export.int8_dynamic(half)
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}  # the source is left as it was
    assert {p.device.type for p in int8.parameters()} == {"cpu"}
    assert {p.dtype for p in int8.parameters()} == {torch.float32}  # embeddings and norms: fp32 copies
    quantized = [m for m in int8.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert len(quantized) == 15  # every nn.Linear: 7 projections x 2 layers, and the output layer
    ids = tokenizer(SAMPLE, return_tensors="pt")["input_ids"]
    diff = export.max_logit_difference(model, int8, ids)
    assert 0.0 < diff < 1.0  # lossy, but the same model


# ---------------------------------------------------------------- speed
def test_generation_speed_times_exactly_the_tokens_asked_for(tokenizer):
    model = tiny_llama(tokenizer)
    out = export.generation_speed(model, tokenizer, "Hello there", max_new_tokens=5)
    assert out["new_tokens"] == 5
    assert out["ttft_s"] > 0 and out["tokens_per_s"] > 0
    assert export.weights_mb(model) == pytest.approx(sum(p.numel() for p in model.parameters()) * 4 / 2**20,
                                                     rel=0.01)


@pytest.mark.parametrize("qtype", ["F16", "Q4_1"])
def test_the_header_summary_agrees_with_gguf_py(tokenizer, tmp_path, qtype):
    import gguf

    path = export.write_gguf(tiny_llama(tokenizer), tokenizer, tmp_path / f"tiny-{qtype}.gguf", qtype)
    reader = gguf.GGUFReader(str(path))
    summary = export.gguf_summary(path)
    assert summary["tensor_types"] == dict(Counter(t.tensor_type.name for t in reader.tensors))
    n_bytes = Counter()
    for t in reader.tensors:
        n_bytes[t.tensor_type.name] += int(t.n_bytes)
    assert summary["tensor_mb"] == {k: v / 2**20 for k, v in n_bytes.items()}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        want = field.contents()
        got = summary["metadata"][key]
        if isinstance(want, list):
            assert got == f"[{len(want)} items]", key
        elif isinstance(want, str):
            assert got == (want if len(want) <= 60 else want[:57] + "..."), key
        else:
            assert got == pytest.approx(want), key
    assert set(summary["metadata"]) == {k for k in reader.fields if not k.startswith("GGUF.")}


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    path = tmp_path / "not.gguf"
    path.write_bytes(b"PK\x03\x04" + bytes(64))
    with pytest.raises(ValueError, match="not a GGUF file"):
        export.gguf_summary(path)
