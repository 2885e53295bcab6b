"""Notebook 11 (pruning, GGUF export, on-device inference) and its solutions.

Smoke runs check the round trip the notebook promises (F16 logits bit-identical to the fp16-rounded model, the same
tokenizer and greedy answers, the 4-bit file within 10% perplexity: smoke writes F16 and the 4-bit file only), a merge
check that holds in fp32 and shows the adapter's effect, and that pruned zeros save no memory; the cpu-profile bars of
issue 16 (Q8_0 within 2%, the 4-bit file within 10%, Wanda beating magnitude at 50%) run with `-m course_bars`.
Without a run: notebook 11's device hygiene (no `.numpy()`, tokenizer outputs moved to the run's device) and its merge
check executed on a tiny model in fp32 and bf16 (a correct merge passes, a merge that drops the adapter fails).
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gptforall_utils import bars

NOTEBOOK = "11_pruning_export_on_device"
ROOT = Path(__file__).resolve().parents[1]
GENERATED = [ROOT / "notebooks" / f"{NOTEBOOK}.ipynb", ROOT / "notebooks" / "solutions" / f"{NOTEBOOK}_solutions.ipynb"]
_spec = importlib.util.spec_from_file_location("build_notebook_11", ROOT / "scripts" / "build_notebook_11.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)


def _code_cells(path: Path):
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] == "code" and "parameters" not in cell.get("metadata", {}).get("tags", []):
            yield i, "".join(cell["source"])


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.stem)
def test_11_hands_tensors_to_numpy_and_to_the_model_the_way_a_card_needs(path):
    """No `.numpy()` (it raises on a card tensor, and bf16 has no NumPy dtype: env.to_numpy is the one way), and every
    tokenizer output made with return_tensors="pt" is moved (`.to(run.device)`) in the expression that makes it."""
    found = []
    for i, source in _code_cells(path):
        tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("!", "%"))))
        moved = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "numpy":
                    found.append(f"cell {i}, line {node.lineno}: .numpy()")
                if node.func.attr in ("to", "cuda"):
                    moved.update(id(n) for n in ast.walk(node.func.value))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and any(k.arg == "return_tensors" and getattr(k.value, "value", None) == "pt"
                                                  for k in node.keywords) and id(node) not in moved:
                found.append(f"cell {i}, line {node.lineno}: a return_tensors='pt' output left on the CPU")
    assert not found, found


def _merge_cell() -> str:
    [cell] = [src for kind, src in build.CELLS if kind == "code" and "export.merge_adapter(lora)" in src]
    return cell


def _tiny_lora(precision: str):
    """A random 2-layer Llama with the course tokenizer, a LoRA adapter with a non-zero update, in `precision`, left in
    training mode with LoRA dropout on, as `training.train` leaves it."""
    from peft import get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from gptforall_utils import env, models, training

    tok = models.load_tokenizer("smollm2-135m-instruct")
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rope_theta=1e4,
                         tie_word_embeddings=True, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3) if p.ndim > 1 else p.fill_(1.0)
    model = model.to(env.torch_dtype(precision))
    lora = get_peft_model(model, training.lora_config(model, r=4, alpha=8, dropout=0.05)).train()  # as after training
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    return tok, lora


def _run_merge_cell(precision: str, merge=None):
    from gptforall_utils import env, export, prompts

    tok, lora = _tiny_lora(precision)
    fake_export = SimpleNamespace(merge_adapter=merge or export.merge_adapter)
    ns = {"tok": tok, "P": prompts.SENTIMENT, "texts": ["A warm, funny and clever film."], "lora": lora,
          "run": SimpleNamespace(device="cpu", precision=precision), "torch": torch, "env": env,
          "export": fake_export, "accuracy": lambda m: 1.0, "acc_lora": 1.0, "copy": __import__("copy")}
    exec(_merge_cell(), ns)
    return ns


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_11_merge_check_passes_a_correct_merge_at_every_precision(precision):
    ns = _run_merge_cell(precision)
    assert ns["merge_agrees"] is True
    assert ns["merge_diff"] < ns["adapter_effect"]  # the check can see the adapter: it is larger than the rounding


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_11_merge_check_catches_a_merge_that_drops_the_adapter(precision):
    """A merge that loses the update (the base model handed back) must not pass as rounding, in bf16 too."""
    from gptforall_utils import export

    def lossy_merge(lora):
        with torch.no_grad():
            for name, p in lora.named_parameters():
                if "lora_B" in name:
                    p.zero_()
        return export.merge_adapter(lora)

    ns = _run_merge_cell(precision, merge=lossy_merge)
    assert ns["merge_agrees"] is False


@pytest.mark.notebooks
def test_11_round_trip_and_pruning_figures(notebook_run):
    r = notebook_run(NOTEBOOK)
    assert r.status == "ok", r.error
    m = r.metrics
    assert m["f16_logit_diff_vs_fp16_rounded"] == 0.0  # the F16 file holds exactly the fp16-rounded weights
    assert 0.0 < m["f16_logit_diff_vs_fp32"] < 1.0
    assert m["f16_same_tokenizer"] == 1 and m["f16_same_greedy"] == 1
    assert m["merge_logit_diff"] < 1e-3
    assert m["merge_within_rounding"] == 1 and m["merge_logit_diff"] < m["adapter_logit_effect"]
    assert m["accuracy_merged"] == pytest.approx(m["accuracy_lora"])
    # The smoke profile writes the F16 file and the 4-bit one only (issue 22); Q8_0 and Q4_0 are cpu/gpu figures.
    # In their place, the same checks on what smoke has: the quantized file keeps perplexity (the 4-bit bar's 10%;
    # Q8_0's 2% is checked in tests/test_export.py and by the cpu bars) and is well under the F16 file.
    four = m["four_bit_type"]
    assert four in ("Q4_0", "Q4_1")
    assert abs(m["four_bit_perplexity_change"]) < 0.10
    assert abs(m["f16_perplexity_change"]) < 0.02
    assert m["gguf_mb_F16"] > m[f"gguf_mb_{four}"]
    assert m[f"gguf_mb_{four}"] < 0.6 * m["gguf_mb_F16"]
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
    # bars.py: Q8_0 within 2% and the 4-bit file within 10% perplexity, Wanda beating magnitude at 50%, an adapter
    # with a task effect, an exact F16 round trip, Q8_0 keeping the fine-tune (and Q4_1 erasing it on the Q4_1 base).
    assert not bars.failures("11", "cpu", m), bars.failures("11", "cpu", m)
