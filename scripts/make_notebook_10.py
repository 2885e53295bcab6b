"""Write notebook 10 (preference alignment with DPO) and its solutions notebook from the cells below.

    python scripts/make_notebook_10.py            # rewrite both notebooks
    python -m gptforall_utils.notebooks check     # then check the contract

The notebooks are generated so that the cells stay reviewable as Python strings and the contract parts
(badge, install cell, parameters cell) come from gptforall_utils.notebooks. Measured run times go into TIMES.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gptforall_utils import notebooks  # noqa: E402

STEM = "10_preference_alignment_dpo"
HARDWARE = "(measured on 2 CPU cores with the embedded 135M model)"
TIMES = {"smoke": "61 s", "cpu": "7.0 min", "gpu": "~10 min (T4, est.)"}
SOLUTION_TIMES = {"smoke": "71 s", "cpu": "not measured", "gpu": "~15 min (T4, est.)"}

LEARN = [
    "what supervised fine-tuning cannot express, and where preference tuning sits in the RLHF pipeline",
    "why DPO needs no reward model: its loss in four lines, checked against TRL's on the same batch",
    "how to build honest preference pairs from what you have, and what such pairs can and cannot teach",
    "TRL's DPOTrainer with LoRA, where the reference model is the same weights with the adapter switched off",
    "how to measure alignment: preference accuracy with an interval, reward margin, KL to the reference, length",
    "beta as the knob between learning the preference and staying close to the reference",
]

CELLS: list[tuple[str, str]] = [
    ("md", r"""
## Why preferences?

Supervised fine-tuning (notebook 06) says *"write this answer"*: every training answer is a target whose
probability goes up. It has no way to say *"this answer is better than that one"*. Ask a chat model how many
minutes a day has and it may give two fluent answers, one right and one wrong, one short and one padded, one
that stops and one that rambles. People find it much easier to compare two answers than to write a perfect one,
and a comparison is exactly what a **preference pair** records: a prompt $x$, a chosen answer $y_w$ and a
rejected answer $y_l$.

This is the *align* step of the fine-tuning lifecycle (scope, select, adapt **and align**, evaluate, deploy).
The chat models of this course went through it: SmolLM2-Instruct was first tuned on demonstrations (SFT) and then
on preference pairs with DPO, the method of this chapter.
"""),
    ("code", r"""
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from gptforall_utils import data, env, memory, metrics, models, plots, prompts, training
from gptforall_utils.data import preferences

run = env.start("10_preference_alignment_dpo", PROFILE, MODEL, DATA, OUTPUT_DIR, SEED)
started = time.perf_counter()
"""),
    ("md", r"""
## The RLHF pipeline, and the shortcut DPO takes

The classic recipe (InstructGPT, 2022) has three stages. **1. SFT** on demonstrations gives a model that follows
instructions: it becomes the *reference* $\pi_{ref}$. **2. A reward model** $r(x, y)$ is trained on preference
pairs to score answers, so that $\sigma(r(x, y_w) - r(x, y_l))$ is the probability that people prefer $y_w$
(the Bradley-Terry model). **3. Reinforcement learning** (PPO) makes the policy $\pi$ sample answers, scores
them with the reward model and updates $\pi$ to raise the reward, minus a penalty $\beta\,\mathrm{KL}(\pi \| \pi_{ref})$
that keeps it from drifting into text the reward model was never trained on.

That is two extra models in memory and sampling inside the training loop. **DPO** (Rafailov et al., 2023) goes
from the SFT model and the pairs straight to the aligned model, with a loss that looks like supervised learning.
"""),
    ("code", r"""
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch


def pipeline_figure():
    fig, ax = plt.subplots(figsize=(11, 4.4))
    ax.set(xlim=(0, 13.4), ylim=(0, 5.1))
    ax.axis("off")

    def box(x, y, w, h, text, colour, dashed=False):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.06", fc=colour, ec="black",
                                    ls="--" if dashed else "-"))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)

    def arrow(start, end, colour="black", dashed=False):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color=colour, lw=1.3,
                                     linestyle="--" if dashed else "-", shrinkA=2, shrinkB=2))

    box(0.2, 3.4, 1.9, 1.1, "pretrained\nmodel", "#dddddd")
    box(2.6, 3.4, 2.2, 1.1, "1. SFT on\ndemonstrations\n= the reference", "#cfe2f3")
    box(5.4, 3.4, 2.2, 1.1, "2. reward model\ntrained on\nthe pairs", "#f4cccc")
    box(8.2, 3.4, 2.5, 1.1, "3. PPO: sample answers,\nscore them, update,\nminus beta KL to reference", "#f4cccc")
    box(5.4, 1.95, 2.2, 0.9, "preference pairs\n(prompt, chosen, rejected)", "white", dashed=True)
    box(8.2, 0.3, 2.5, 1.1, "DPO: one loss on the pairs\n(no reward model,\nno sampling)", "#fff2cc")
    box(11.3, 1.75, 1.9, 1.3, "aligned\nmodel", "#d9ead3")
    arrow((2.1, 3.95), (2.6, 3.95))
    arrow((4.8, 3.95), (5.4, 3.95))
    arrow((7.6, 3.95), (8.2, 3.95))
    arrow((10.7, 3.95), (11.4, 3.05))
    arrow((6.5, 2.85), (6.5, 3.4))
    arrow((7.6, 2.2), (8.3, 1.4))
    ax.plot([3.7, 3.7], [3.38, 0.85], color="#b45f06", ls="--", lw=1.3)
    arrow((3.7, 0.85), (8.2, 0.85), colour="#b45f06", dashed=True)
    arrow((10.7, 0.85), (11.4, 1.75), colour="#b45f06", dashed=True)
    ax.text(0.2, 4.8, "RLHF with PPO: three stages, a reward model and a reference in memory beside the policy",
            fontsize=10, weight="bold")
    ax.text(0.2, 1.35, "DPO: from the SFT model\nand the pairs, straight\nto the aligned model", fontsize=10,
            weight="bold", color="#b45f06")
    fig.tight_layout()
    return fig


run.savefig(pipeline_figure(), "rlhf_pipeline")
"""),
    ("md", r"""
## DPO: the reward model is hidden in the policy

The RLHF objective, $\max_\pi \mathbb{E}[r(x, y)] - \beta\,\mathrm{KL}(\pi \| \pi_{ref})$, has a closed-form
optimum: $\pi^*(y|x) \propto \pi_{ref}(y|x)\, e^{r(x,y)/\beta}$. Turned around, every policy defines a reward,
$r(x, y) = \beta \log \frac{\pi(y|x)}{\pi_{ref}(y|x)} + \beta \log Z(x)$, and $Z(x)$ (a sum over all possible
answers, impossible to compute) is the same for both answers of a pair, so it cancels in the Bradley-Terry
difference. What is left is a loss on log-probabilities we *can* compute:

$$\mathcal{L}_{DPO} = -\log \sigma\Big(\beta\big[(\log \pi - \log \pi_{ref})(y_w) - (\log \pi - \log \pi_{ref})(y_l)\big]\Big)$$

where $\log \pi(y|x)$ is the sum of the log-probabilities of the answer's tokens. Here it is, the whole idea:
"""),
    ("code", r"""
def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    chosen_reward = beta * (policy_chosen - ref_chosen)         # implicit reward of y_w, per pair
    rejected_reward = beta * (policy_rejected - ref_rejected)   # implicit reward of y_l, per pair
    return -F.logsigmoid(chosen_reward - rejected_reward).mean()


# At the start the policy *is* the reference: both rewards are 0, every pair is a tie, and the loss is log 2.
logp = torch.tensor([-42.0, -17.5])
print(f"loss when policy == reference: {dpo_loss(logp, logp, logp, logp, beta=0.1):.4f} (log 2 = {math.log(2):.4f})")
"""),
    ("md", r"""
The gradient of this loss raises $\log \pi(y_w)$ and lowers $\log \pi(y_l)$, weighted by how wrong the current
implicit reward is: pairs already ranked correctly by a wide margin barely count. $\beta$ sets the scale: a small
$\beta$ needs large log-ratios (a large move away from the reference) to reach the same loss, a large $\beta$ is
satisfied by small ones.

## Preference data

The task `preferences` has three text columns, `prompt`, `chosen` and `rejected`. On the Hub it is
`HuggingFaceH4/ultrafeedback_binarized` (MIT licence): four answers per prompt from different models, scored by
GPT-4; the best one is `chosen` and one of the other three, at random, is `rejected`. SmolLM2-Instruct was
tuned with DPO on its training split, so this notebook evaluates on its `test_prefs` split.

Offline, the course has no preference judgements, so we build pairs honestly from what it has: the prompts and
reference answers of the `instructions` task (written for this course, with their own fixed test split) are
`chosen`, and **the model's own sampled answer to the same prompt is `rejected`** (self-generated negatives).
"""),
    ("code", r"""
N_TRAIN = run.pick(smoke=2, cpu=24, gpu=2000)     # preference pairs to train on
N_TEST = run.pick(smoke=2, cpu=35, gpu=200)       # held-out pairs (the offline test split has 35)
REJECTED_TOKENS = run.pick(smoke=8, cpu=64, gpu=256)    # budget of each self-generated answer
ANSWER_TOKENS = run.pick(smoke=8, cpu=64, gpu=256)      # budget of the greedy answers compared at the end
ANSWER_ROWS = run.pick(smoke=2, cpu=8, gpu=200)         # held-out prompts answered before and after
MAX_LENGTH = run.pick(smoke=192, cpu=320, gpu=1024)     # prompt + answer tokens seen in training and scoring
BATCH = run.pick(smoke=2, cpu=4, gpu=8)                  # pairs per step: 2 x BATCH sequences
SCORE_BATCH = run.pick(smoke=4, cpu=4, gpu=2)            # pairs per forward pass when scoring held-out pairs
EPOCHS = run.pick(smoke=1, cpu=1, gpu=1)
MAX_STEPS = run.pick(smoke=1, cpu=-1, gpu=-1)            # -1: EPOCHS over the training pairs
BETA = 0.1
BETAS = run.pick(smoke=[0.1, 0.5], cpu=[0.1, 0.5], gpu=[0.02, 0.1, 0.5, 1.0])

dd = data.load("preferences", source=run.data, seed=run.seed)
print(data.describe(dd))
train_rows = dd["train"].shuffle(seed=run.seed).select(range(min(N_TRAIN, len(dd["train"]))))
test_rows = dd["test"].select(range(min(N_TEST, len(dd["test"]))))
print(f"{len(train_rows)} training pairs, {len(test_rows)} held-out pairs; "
      f"{preferences.missing_rejected(train_rows) + preferences.missing_rejected(test_rows)} still need a rejected answer")
"""),
    ("md", r"""
### Self-generated negatives

Where a `rejected` answer is missing, the model writes it: we render each prompt with the chat template and
*sample* an answer (temperature 0.7, top-p 0.9), as the model would answer a user. The answers are kept in the
output folder under a key made of the model, seed, sizes and decoding settings, so running the notebook again
reads them instead of generating them again.
"""),
    ("code", r"""
tok = models.load_tokenizer(run.model, profile=run.profile)
base = models.load_model(run.model, profile=run.profile)


def sample_answers(user_prompts: list[str]) -> list[str]:
    # The model's own answers: sampled, seeded, with the chat template the model was tuned with.
    torch.manual_seed(run.seed)
    rendered = [prompts.chat(tok, p) for p in user_prompts]
    return prompts.generate(base, tok, rendered, max_new_tokens=REJECTED_TOKENS, batch_size=16,
                            do_sample=True, temperature=0.7, top_p=0.9)


key = dict(model=str(models.resolve(run.model, run.profile)), data=run.data, seed=run.seed, n_train=len(train_rows),
           n_test=len(test_rows), max_new_tokens=REJECTED_TOKENS, temperature=0.7, top_p=0.9)
t0 = time.perf_counter()
pairs, info = preferences.self_generated({"train": train_rows, "test": test_rows}, sample_answers,
                                         cache_dir=run.output_dir, key=key)
generation_seconds = time.perf_counter() - t0
for name in pairs:
    preferences.check_pairs(pairs[name], origin=f"{name} pairs")
print(f"generated {info['generated']} answers, read {info['from_cache']} from {info['cache'] or 'no cache'}, "
      f"dropped {info['dropped_ties']} ties, in {generation_seconds:.1f} s")
example = pairs["train"][0]
print("PROMPT:  ", example["prompt"][:300])
print("CHOSEN:  ", example["chosen"][:300])
print("REJECTED:", example["rejected"][:300])
"""),
    ("md", r"""
### What such pairs can and cannot teach

A self-generated pair says one thing: *answer like the reference, not like yourself*. Everything that
systematically separates the course's references from the model's samples is learnable: style, directness,
**length**, where to stop, staying on the question. Nothing else is. The references were not checked for truth
against the model's answers, nobody judged which answer is safer, and a sampled answer that happens to be better
than the reference is still labelled `rejected`. So these pairs cannot teach truthfulness, safety or
helpfulness beyond the references' style; a preference dataset with real judgements (like UltraFeedback on the
Hub) can, as far as its judges were right.

Before training, look at the one difference DPO cannot miss: length.
"""),
    ("code", r"""
chosen_words = [len(t.split()) for t in pairs["train"]["chosen"]]
rejected_words = [len(t.split()) for t in pairs["train"]["rejected"]]
rejected_tokens = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in pairs["train"]["rejected"]]
longer_rejected = sum(r > c for c, r in zip(chosen_words, rejected_words)) / len(chosen_words)
print(f"mean words: chosen {sum(chosen_words) / len(chosen_words):.1f}, rejected {sum(rejected_words) / len(rejected_words):.1f}; "
      f"rejected is the longer answer in {longer_rejected:.0%} of pairs; "
      f"{sum(n >= REJECTED_TOKENS for n in rejected_tokens)} of {len(rejected_tokens)} rejected answers ran to the budget")
fig, ax = plt.subplots(figsize=(6, 3.2))
bins = range(0, max(chosen_words + rejected_words) + 6, 5)
ax.hist(chosen_words, bins=bins, alpha=0.6, label="chosen (reference)")
ax.hist(rejected_words, bins=bins, alpha=0.6, label="rejected (model's own)")
ax.set_xlabel("answer length (words)")
ax.set_ylabel("training pairs")
ax.set_title("Length of the two answers")
ax.legend()
fig.tight_layout()
run.savefig(fig, "pair_lengths")
"""),
    ("md", r"""
## Memory: the reference model costs nothing with LoRA

DPO needs $\pi_{ref}$ at every step. With full fine-tuning that is a second, frozen copy of the model. With a
LoRA adapter it is free: the reference *is* the base weights, so we compute its log-probabilities by switching
the adapter off for one forward pass. TRL does this by itself when the model it trains is a PEFT model and no
`ref_model` is given. Here is what each choice needs (the `memory` module's estimate, LoRA r=16 on every linear
layer, a batch of 4 pairs = 8 sequences of 512 tokens, bf16 with gradient checkpointing, as a 7B model would need; the
reference's forward pass runs without gradients, so its activations are freed layer by layer and left out). The
estimate counts full-vocabulary logits for every token; TRL 1.16 computes the log-probabilities in chunks without
them, so real totals are lower. The difference between the two columns is the point:
"""),
    ("code", r"""
def dpo_memory(name: str, precision: str = "bf16", pairs_per_step: int = 4, seq_len: int = 512):
    lora = memory.estimate(name, method="lora", precision=precision, batch_size=2 * pairs_per_step, seq_len=seq_len,
                           lora_r=16, checkpointing=True)
    second_copy = memory.weight_bytes(name, precision)          # a frozen reference model, loaded separately
    return {"adapter off (one copy)": lora.total / memory.GB, "second full copy": (lora.total + second_copy) / memory.GB}


table = {name: dpo_memory(name) for name in ("SmolLM2-135M", "SmolLM2-1.7B", "LLaMA-7B")}
for name, row in table.items():
    print(f"{name:<14} " + " | ".join(f"{k}: {v:6.2f} GB" for k, v in row.items()))
fig = plots.grouped_bars(table, title="DPO with LoRA: where the reference model lives", ylabel="GB (estimate)")
t4 = memory.HARDWARE["Colab T4 16 GB"]["memory_gb"]
fig.axes[0].axhline(t4, color="grey", ls="--", lw=1)
fig.axes[0].text(-0.4, t4, " Colab T4", va="bottom", fontsize=8, color="grey")
run.savefig(fig, "reference_memory")
"""),
    ("md", r"""
## Which model do we align?

Where DPO starts matters: DPO moves a model relative to a reference, so it should start from a
model that already follows instructions. Our embedded model, SmolLM2-135M-**Instruct**, already is one: it went
through SFT and DPO before we got it. Notebook 06's recipe (an SFT adapter on the course's instructions) would
give another starting point, but it trains on the same reference answers we use as `chosen`, which would blur
what DPO adds, and on two CPU cores it would cost most of this notebook's time budget. So we start from the
Instruct model and say so: the reference is that model, and everything DPO changes is measured against it.

## DPOTrainer and DPOConfig (TRL 1.16)

TRL's arguments have moved over the versions, and many tutorials are out of date: there is no
`max_prompt_length` any more (one `max_length` truncates prompt plus answer, from the end), every setting goes in
`DPOConfig` rather than the trainer, the tokenizer is passed as `processing_class`, and with a `peft_config`
the trainer wraps the model in a LoRA adapter and uses the adapter-off model as the reference.
`training.dpo_config` applies the course's hardware rules (precision from the hardware; gradient checkpointing
off, because a small model's step fits the card: pass `gradient_checkpointing=True` for a larger one) on top of
TRL's defaults, which assume a bf16 GPU and turn checkpointing on.
"""),
    ("code", r"""
from datasets import Dataset
from trl import DPOTrainer

# TRL's conversational format: the chat template (the model's own) is applied by the trainer.
train_conv = Dataset.from_list([preferences.as_conversation(r) for r in pairs["train"]])
test_conv = [preferences.as_conversation(r) for r in pairs["test"]]
print(train_conv[0])


def make_trainer(beta: float, name: str, model=None):
    config = training.dpo_config(
        run, run.path(name), beta=beta,
        learning_rate=run.pick(smoke=5e-4, cpu=5e-4, gpu=1e-4), epochs=EPOCHS, max_steps=MAX_STEPS,
        batch_size=BATCH, grad_accum=run.pick(smoke=1, cpu=1, gpu=2),
        warmup_steps=run.pick(smoke=0, cpu=1, gpu=10), logging_steps=run.pick(smoke=1, cpu=2, gpu=10),
        max_length=MAX_LENGTH)
    model = model if model is not None else models.load_model(run.model, profile=run.profile, verbose=False)
    lora = training.lora_config(model, r=16, alpha=32)
    # On a GPU the micro-batch and activation checkpointing follow the card's memory (same effective batch; a pair
    # is two sequences); on a CPU nothing changes.
    config = training.fit_arguments(config, model, train_conv, tokenizer=tok, peft_config=lora)
    return DPOTrainer(model=model, ref_model=None, args=config, train_dataset=train_conv, processing_class=tok,
                      peft_config=lora)


trainer = make_trainer(BETA, "dpo", model=base)
config = trainer.args
print(f"beta={config.beta} | lr={config.learning_rate} | precision: bf16={config.bf16} fp16={config.fp16} | "
      f"gradient checkpointing: {config.gradient_checkpointing} | max_length={config.max_length}")
print("separate reference model:", trainer.ref_model, "-> the reference is the policy with its adapter disabled")
"""),
    ("md", r"""
## Before training: every pair is a tie

We score the held-out pairs with the **implicit reward** $\beta \log \frac{\pi(y|x)}{\pi_{ref}(y|x)}$ of each
answer. The *preference accuracy* is the share of pairs whose chosen answer gets the higher reward. A freshly
added LoRA adapter outputs exactly zero, so the policy equals the reference, every reward is exactly 0 and every
pair is a tie. We count a tie as half a correct ranking, the expected score of a coin flip, so the starting
accuracy is chance. For contrast we also print the ranking the reference model itself gives by plain
likelihood. It is not a usable reward: summed over the answer it favours whichever answer is shorter, and per
token it favours what the model would write itself, which is exactly what our `rejected` answers are.
"""),
    ("code", r"""
def describe_scores(scores, beta, label):
    acc, wins, ties, n = scores.accuracy()
    lo, hi = metrics.wilson_interval(wins + 0.5 * ties, n)
    margins = scores.margins(beta)
    print(f"{label}: preference accuracy {acc:.3f} (95% CI {lo:.2f}-{hi:.2f}; {wins} wins, {ties} ties, n={n}) | "
          f"mean reward margin {sum(margins) / n:+.3f} | KL to reference {scores.kl_per_token:.4f} per token")
    return acc, (lo, hi), sum(margins) / n


scores_before = training.preference_scores(trainer.model, tok, test_conv, SCORE_BATCH, MAX_LENGTH)
acc_before, ci_before, margin_before = describe_scores(scores_before, BETA, "before DPO")
print(f"reference likelihood ranks chosen first: {scores_before.likelihood_accuracy():.3f} (sum of log-probs), "
      f"{scores_before.likelihood_accuracy(per_token=True):.3f} (per token)")
"""),
    ("md", r"""
Generation from the reference, before any training, for the side-by-side comparison at the end: greedy answers,
a fixed budget, and whether each one stopped at the end-of-turn token by itself.
"""),
    ("code", r"""
def answers(model, rows):
    texts, stopped, lengths = [], [], []
    old_side, tok.padding_side = tok.padding_side, "left"
    for i in range(0, len(rows), 8):
        batch = [prompts.chat(tok, r["prompt"]) for r in rows[i:i + 8]]
        enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=ANSWER_TOKENS, do_sample=False, pad_token_id=tok.pad_token_id)
        for new in out[:, enc["input_ids"].shape[1]:].tolist():
            stopped.append(tok.eos_token_id in new)
            texts.append(tok.decode(new, skip_special_tokens=True).strip())
            lengths.append(len(texts[-1].split()))
    tok.padding_side = old_side
    return texts, stopped, lengths


eval_rows = [pairs["test"][i] for i in range(min(ANSWER_ROWS, len(pairs["test"])))]
trainer.model.eval()
answers_before, stopped_before, words_before = answers(trainer.model, eval_rows)
"""),
    ("md", r"""
## Train

`training.run_trainer` runs `trainer.train()` and measures time, peak memory and the loss history; it refuses to
report a diverged run. TRL also logs, per step, the mean implicit rewards of the chosen and rejected answers in
the batch and their margin.
"""),
    ("code", r"""
result = training.run_trainer(trainer, "dpo")
print(result.summary())
logged = [h for h in trainer.state.log_history if "rewards/margins" in h]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
ax1.plot([s for s, _ in result.loss_history], [v for _, v in result.loss_history], marker="o", ms=3)
ax1.axhline(math.log(2), color="grey", ls=":", label="log 2 (all ties)")
ax1.set(xlabel="optimizer step", ylabel="DPO loss", title="Training loss")
ax1.legend()
for key_name, label in (("rewards/chosen", "chosen"), ("rewards/rejected", "rejected"), ("rewards/margins", "margin")):
    ax2.plot([h["step"] for h in logged], [h[key_name] for h in logged], marker="o", ms=3, label=label)
ax2.axhline(0, color="grey", lw=0.8)
ax2.set(xlabel="optimizer step", ylabel="implicit reward (training batch)", title="Rewards while training")
ax2.legend()
fig.tight_layout()
run.savefig(fig, "training")
"""),
    ("md", r"""
### Check: TRL computes the loss we wrote

On a batch of held-out pairs, we compute $\log \pi$ and $\log \pi_{ref}$ ourselves (a forward pass with the
adapter on, one with it off, log-softmax, the answer tokens' log-probabilities summed), put them through
`dpo_loss` above, and compare with the loss TRL's trainer computes on the same batch. After training the policy
and the reference differ, so the check is not the trivial log 2.
"""),
    ("code", r"""
policy = trainer.model
policy.eval()
check_rows = test_conv[:run.pick(smoke=2, cpu=4, gpu=4)]
batch = training.preference_batches(tok, check_rows, batch_size=len(check_rows), max_length=MAX_LENGTH)[0]
pi_chosen, pi_rejected = training.completion_logps(policy, batch)
with policy.disable_adapter():
    ref_chosen, ref_rejected = training.completion_logps(policy, batch)
ours = dpo_loss(pi_chosen, pi_rejected, ref_chosen, ref_rejected, beta=BETA).item()
with torch.no_grad():
    theirs = trainer.compute_loss(policy, {k: v.to(policy.device) for k, v in batch.items()}).item()
loss_check = abs(ours - theirs)
_, tolerance = env.rounding_tolerance(run.precision, "loss")   # half precision: two kernels, rounding differs
print(f"our DPO loss {ours:.6f} | TRL's {theirs:.6f} | difference {loss_check:.2e} (tolerance {tolerance:g})")
assert env.agree(ours, theirs, run.precision, "loss"), "the hand-written loss and TRL's disagree"
"""),
    ("md", r"""
## After training: held-out pairs

The same held-out pairs, never trained on, scored again. The interval is a 95% Wilson interval: with a few
dozen pairs, each one moves the accuracy by a few points.
"""),
    ("code", r"""
scores_after = training.preference_scores(policy, tok, test_conv, SCORE_BATCH, MAX_LENGTH)
acc_after, ci_after, margin_after = describe_scores(scores_after, BETA, "after DPO ")
chosen_r, rejected_r = scores_after.rewards(BETA)
print(f"mean implicit reward: chosen {sum(chosen_r) / len(chosen_r):+.3f}, rejected {sum(rejected_r) / len(rejected_r):+.3f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
accs, cis = [acc_before, acc_after], [ci_before, ci_after]
ax1.bar(["before", "after"], accs, color=["C7", "C2"],
        yerr=[[a - lo for a, (lo, _) in zip(accs, cis)], [hi - a for a, (_, hi) in zip(accs, cis)]], capsize=6)
ax1.axhline(0.5, color="grey", ls=":", label="chance")
ax1.set(ylim=(0, 1), ylabel="preference accuracy", title="Held-out pairs (95% Wilson interval)")
ax1.legend()
ax2.hist(scores_after.margins(BETA), bins=15, color="C2", alpha=0.8, label="after")
ax2.axvline(0, color="grey", ls=":", label="before: every margin is 0")
ax2.set(xlabel="implicit reward margin (chosen - rejected)", ylabel="held-out pairs", title="Reward margins")
ax2.legend()
fig.tight_layout()
run.savefig(fig, "held_out")
"""),
    ("md", r"""
## Answers: length and side by side

DPO has a known **length bias**: it learns whatever separates chosen from rejected answers, and length is the
easiest thing to learn. In most public preference datasets the chosen answers are longer, so DPO makes models
wordier. Compare the way our pairs lean (the length figure above) with the way the model's answers move (below).
"""),
    ("code", r"""
answers_after, stopped_after, words_after = answers(policy, eval_rows)
mean_before, mean_after = sum(words_before) / len(words_before), sum(words_after) / len(words_after)
eos_before, eos_after = sum(stopped_before) / len(stopped_before), sum(stopped_after) / len(stopped_after)
reference_words = sum(len(r["chosen"].split()) for r in eval_rows) / len(eval_rows)
print(f"mean answer length: before {mean_before:.1f} words, after {mean_after:.1f} (references: {reference_words:.1f}); "
      f"stopped by themselves: before {eos_before:.0%}, after {eos_after:.0%}")
lean = "shorter" if longer_rejected > 0.5 else "longer" if longer_rejected < 0.5 else "neither"
moved = "shorter" if mean_after < mean_before else "longer" if mean_after > mean_before else "no longer or shorter"
print(f"the training pairs favour the {lean} answer; the answers became {moved}")

fig, ax = plt.subplots(figsize=(6, 3.2))
bins = range(0, max(words_before + words_after) + 6, 5)
ax.hist(words_before, bins=bins, alpha=0.6, label="before DPO")
ax.hist(words_after, bins=bins, alpha=0.6, label="after DPO")
ax.axvline(reference_words, color="black", ls="--", lw=1, label="reference answers (mean)")
ax.set(xlabel="greedy answer length (words)", ylabel="held-out prompts", title="Answer length before and after")
ax.legend()
fig.tight_layout()
run.savefig(fig, "answer_lengths")
"""),
    ("code", r"""
import pandas as pd

pd.set_option("display.max_colwidth", None)
side = pd.DataFrame({"prompt": [r["prompt"] for r in eval_rows], "reference (chosen)": [r["chosen"] for r in eval_rows],
                     "before DPO": answers_before, "after DPO": answers_after})
display(side.head(6).style.set_properties(**{"text-align": "left", "white-space": "pre-wrap"}))
"""),
    ("md", r"""
### A judge, if you have one

Preference accuracy says the policy now *ranks* answers like the pairs do; it does not say the new answers are
better. Notebook 08's LLM judge can rate them when one is configured (`GPTFORALL_JUDGE_URL`,
`GPTFORALL_JUDGE_MODEL`, `GPTFORALL_JUDGE_API_KEY` in the environment, never in the notebook). Without one, we
say so, and the side-by-side table above is for you to read.
"""),
    ("code", r"""
judge = metrics.judge_config()
judge_before = judge_after = None
if judge:
    def mean_rating(texts):
        ratings = [metrics.judge_answer(judge, r["prompt"], a)["rating"] for r, a in zip(eval_rows, texts)]
        valid = [x for x in ratings if x is not None]
        return sum(valid) / len(valid) if valid else None

    judge_before, judge_after = mean_rating(answers_before), mean_rating(answers_after)
    print(f"judge {judge.model}: mean rating before {judge_before}, after {judge_after}")
else:
    print("No LLM judge configured (GPTFORALL_JUDGE_URL / GPTFORALL_JUDGE_MODEL): answers are compared by length, "
          "stopping and the table above only.")
"""),
    ("md", r"""
## beta: how far from the reference?

$\beta$ is the strength of the KL leash. We train the same adapter on the same pairs for the same number of
steps with a few values of $\beta$ and measure two things on the held-out pairs: preference accuracy, and the
policy's KL divergence from the reference, $\mathrm{KL}(\pi \| \pi_{ref})$ averaged over the answers' tokens
(with the text fixed). Small $\beta$ lets the policy move far; large $\beta$ keeps it close.
"""),
    ("code", r"""
sweep = {BETA: (acc_after, scores_after.kl_per_token, result.train_seconds)}   # the run above is one point
for beta in BETAS:
    if beta in sweep:
        continue
    t = make_trainer(beta, f"dpo_beta_{beta}")
    r = training.run_trainer(t, "dpo")
    s = training.preference_scores(t.model, tok, test_conv, SCORE_BATCH, MAX_LENGTH)
    sweep[beta] = (s.accuracy()[0], s.kl_per_token, r.train_seconds)
    print(f"beta={beta}: accuracy {sweep[beta][0]:.3f}, KL {sweep[beta][1]:.4f} per token, {r.train_seconds:.0f} s")
    del t, r, s
betas = sorted(sweep)
fig, ax1 = plt.subplots(figsize=(6, 3.4))
ax1.plot(betas, [sweep[b][0] for b in betas], "o-", color="C0", label="preference accuracy")
ax1.axhline(0.5, color="C0", ls=":", lw=1)
ax1.set(xscale="log", xlabel="beta", ylabel="held-out preference accuracy", ylim=(0, 1.05))
ax2 = ax1.twinx()
ax2.plot(betas, [sweep[b][1] for b in betas], "s--", color="C3", label="KL to reference")
ax2.set_ylabel("KL(policy || reference) per token", color="C3")
ax1.set_title("beta: learning the preference vs staying close")
fig.legend(loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=2, fontsize=8)
fig.tight_layout()
run.savefig(fig, "beta_sweep")
"""),
    ("md", r"""
## When DPO works, and when it fails

- **It works** when chosen and rejected differ in what you care about, consistently, and the pairs come from
  answers the model could plausibly give (on-policy data like our self-generated negatives is the easy case).
- **It learns shortcuts.** Any systematic difference is learnable, length first: read the answer-length change
  above with the pairs' lengths in mind. Pairs whose chosen answers are longer teach a model to pad its answers.
- **Accuracy is not quality.** The implicit reward ranks answers like the data does. A judge or a person must
  still read the answers; a high preference accuracy on pairs that only differ in style says nothing about facts.
- **Drift.** With a small $\beta$ the policy wanders from the reference (the KL grows), and both rewards can fall
  together: the model lowers the likelihood of the chosen answers too, just less than the rejected ones.
"""),
    ("code", r"""
lo_after, hi_after = ci_after
record = dict(
    preference_accuracy_before=acc_before, preference_accuracy_after=acc_after,
    preference_accuracy_after_ci_low=lo_after, preference_accuracy_after_ci_high=hi_after,
    reward_margin_before=margin_before, reward_margin_after=margin_after,
    chosen_reward_after=sum(chosen_r) / len(chosen_r), rejected_reward_after=sum(rejected_r) / len(rejected_r),
    kl_per_token_after=scores_after.kl_per_token,
    likelihood_accuracy_reference=scores_before.likelihood_accuracy(),
    loss_check_abs_diff=loss_check, answer_words_before=mean_before, answer_words_after=mean_after,
    reference_words=reference_words, eos_rate_before=eos_before, eos_rate_after=eos_after,
    rejected_longer_share=longer_rejected, n_train=len(pairs["train"]), n_test=len(pairs["test"]), beta=BETA,
    generated_answers=info["generated"], cached_answers=info["from_cache"], generation_seconds=generation_seconds,
    dpo_train_seconds=result.train_seconds, dpo_peak_memory_mb=result.peak_memory_mb,
    dpo_trainable_params=result.trainable_params, dpo_final_loss=result.final_loss,
    judge=judge.model if judge else "none", notebook_seconds=time.perf_counter() - started,
)
if judge_before is not None and judge_after is not None:
    record.update(judge_rating_before=judge_before, judge_rating_after=judge_after)
for beta, (acc, kl, seconds) in sweep.items():
    record[f"sweep_beta_{beta}_accuracy"] = acc
    record[f"sweep_beta_{beta}_kl"] = kl
run.record(**record)
"""),
    ("md", r"""
## Exercises

**Warm-up: IPO is one line.** TRL 1.16 offers many preference losses through `DPOConfig(loss_type=[...])`:
`"ipo"` replaces the log-sigmoid by a squared distance of the (per-token) log-ratio margin from $1/(2\beta)$,
so it never pushes margins to infinity. Train with `loss_type=["ipo"]` and compare held-out accuracy and KL.
Where does ORPO live in TRL 1.16, and why is it not a one-line change?

**Core: another source of rejected answers.** Build pairs whose `rejected` is the reference answer of a
*different* instruction (off-topic but well written). Train on them and evaluate on this notebook's held-out
self-generated pairs. What did the model learn, and what did it not?

**Stretch: pairs that differ only in length.** Make `rejected` the reference answer plus a padding sentence
("I hope this helps! Let me know if you need anything else."). Train, then measure the held-out accuracy on the
real pairs, the answer lengths, and how the implicit reward margin relates to the length difference of each pair.
What went wrong, and how would you detect it in a real dataset?

Solutions: `notebooks/solutions/10_preference_alignment_dpo_solutions.ipynb`.
"""),
]


SOLUTION_CELLS: list[tuple[str, str]] = [
    ("code", r"""
import math
import random
import time

import torch
from datasets import Dataset
from trl import DPOTrainer

from gptforall_utils import data, env, metrics, models, plots, prompts, training
from gptforall_utils.data import preferences

run = env.start("10_preference_alignment_dpo_solutions", PROFILE, MODEL, DATA, OUTPUT_DIR, SEED)
N_TRAIN = run.pick(smoke=2, cpu=48, gpu=1000)
N_TEST = run.pick(smoke=2, cpu=35, gpu=200)
REJECTED_TOKENS = run.pick(smoke=8, cpu=64, gpu=256)
MAX_LENGTH = run.pick(smoke=192, cpu=320, gpu=1024)
BATCH = run.pick(smoke=2, cpu=4, gpu=8)
SCORE_BATCH = run.pick(smoke=4, cpu=4, gpu=2)
MAX_STEPS = run.pick(smoke=1, cpu=-1, gpu=-1)
BETA = 0.1

dd = data.load("preferences", source=run.data, seed=run.seed)
train_rows = dd["train"].shuffle(seed=run.seed).select(range(min(N_TRAIN, len(dd["train"]))))
test_rows = dd["test"].select(range(min(N_TEST, len(dd["test"]))))
tok = models.load_tokenizer(run.model, profile=run.profile)
base = models.load_model(run.model, profile=run.profile, verbose=False)


def sample_answers(user_prompts):
    torch.manual_seed(run.seed)
    return prompts.generate(base, tok, [prompts.chat(tok, p) for p in user_prompts], max_new_tokens=REJECTED_TOKENS,
                            batch_size=16, do_sample=True, temperature=0.7, top_p=0.9)


key = dict(model=str(models.resolve(run.model, run.profile)), data=run.data, seed=run.seed, n_train=len(train_rows),
           n_test=len(test_rows), max_new_tokens=REJECTED_TOKENS, temperature=0.7, top_p=0.9)
pairs, info = preferences.self_generated({"train": train_rows, "test": test_rows}, sample_answers,
                                         cache_dir=run.output_dir, key=key)
test_conv = [preferences.as_conversation(r) for r in pairs["test"]]
print(info)


def train_dpo(train_pairs, name, **overrides):
    config = training.dpo_config(run, run.path(name), beta=overrides.pop("beta", BETA), learning_rate=5e-4,
                                 max_steps=MAX_STEPS, batch_size=BATCH, logging_steps=2, max_length=MAX_LENGTH,
                                 **overrides)
    model = models.load_model(run.model, profile=run.profile, verbose=False)
    conv = Dataset.from_list([preferences.as_conversation(r) for r in train_pairs])
    lora = training.lora_config(model, r=16, alpha=32)
    config = training.fit_arguments(config, model, conv, verbose=False, tokenizer=tok, peft_config=lora)
    trainer = DPOTrainer(model=model, args=config, train_dataset=conv, processing_class=tok, peft_config=lora)
    result = training.run_trainer(trainer, "dpo")
    scores = training.preference_scores(trainer.model, tok, test_conv, SCORE_BATCH, MAX_LENGTH)
    acc, wins, ties, n = scores.accuracy()
    lo, hi = metrics.wilson_interval(wins + 0.5 * ties, n)
    print(f"{name}: held-out accuracy {acc:.3f} (95% CI {lo:.2f}-{hi:.2f}), KL {scores.kl_per_token:.4f} per token, "
          f"final loss {result.final_loss:.3f}")
    return trainer, scores, acc
"""),
    ("md", r"""
## Warm-up: IPO is one line

`loss_type=["ipo"]` in `DPOConfig` is the whole change. IPO's loss is
$\big(\frac{\log\text{ratio}(y_w)}{|y_w|} - \frac{\log\text{ratio}(y_l)}{|y_l|} - \frac{1}{2\beta}\big)^2$: a target
margin instead of "as large as possible", with the log-ratios averaged per token (TRL's choice, confirmed with the
IPO authors). We check TRL's value against that formula on one batch. **ORPO** is not a loss type of `DPOTrainer`
in TRL 1.16: it lives in `trl.experimental.orpo` (`ORPOTrainer`, `ORPOConfig`), needs no reference model at all
(it adds an odds-ratio term to the SFT loss on the chosen answer), and so it is a different trainer, not a
one-line change.
"""),
    ("code", r"""
dpo_trainer, dpo_scores, dpo_acc = train_dpo(pairs["train"], "dpo")
ipo_trainer, ipo_scores, ipo_acc = train_dpo(pairs["train"], "ipo", loss_type=["ipo"])

policy = ipo_trainer.model
batch = training.preference_batches(tok, test_conv[:4], batch_size=4, max_length=MAX_LENGTH)[0]
pc, pr = training.completion_logps(policy, batch)
with policy.disable_adapter():
    rc, rr = training.completion_logps(policy, batch)
n_chosen, n_rejected = batch["completion_mask"].sum(1).chunk(2)
ipo_ours = (((pc - rc) / n_chosen - (pr - rr) / n_rejected - 1 / (2 * BETA)) ** 2).mean().item()
with torch.no_grad():
    ipo_theirs = ipo_trainer.compute_loss(policy, {k: v.to(policy.device) for k, v in batch.items()}).item()
print(f"IPO loss by hand {ipo_ours:.5f} vs TRL {ipo_theirs:.5f}")
import importlib.util
print("ORPO in TRL 1.16:", importlib.util.find_spec("trl.experimental.orpo") is not None)
"""),
    ("md", r"""
## Core: off-topic rejected answers

Each `rejected` is now the reference answer of another training prompt (shuffled with the seed). These pairs
teach *relevance*: answer this question, not another one. The held-out pairs, though, contrast the reference
with the model's own on-topic answer, and off-topic pairs say nothing about that difference, so expect a much
weaker transfer than the chapter's self-generated pairs give.
"""),
    ("code", r"""
rows = [pairs["train"][i] for i in range(len(pairs["train"]))]
order = list(range(len(rows)))
random.Random(run.seed).shuffle(order)
# Row order[i] gets the answer of row order[i + 1]: a shuffle in which no prompt keeps its own answer.
off_topic = [{"prompt": rows[a]["prompt"], "chosen": rows[a]["chosen"], "rejected": rows[b]["chosen"]}
             for a, b in zip(order, order[1:] + order[:1])]
off_trainer, off_scores, off_acc = train_dpo(off_topic, "off_topic")
fig = plots.bars({"self-generated": dpo_acc, "off-topic": off_acc, "IPO (self-gen.)": ipo_acc},
                 title="Held-out preference accuracy by training pairs", ylabel="accuracy", ref=0.5, ref_label="chance")
run.savefig(fig, "rejected_sources")
"""),
    ("md", r"""
## Stretch: pairs that differ only in length

`rejected` = the reference + a padding sentence. The only signal is "stop earlier, do not add that sentence".
The model learns it fast (the training loss collapses), and the implicit reward becomes a length detector: on the
real held-out pairs its margin follows the length difference between the rejected and the chosen answer. A
quick check for any preference dataset is to correlate chosen-minus-rejected length with the label (or with the
trained reward): a strong correlation means the data teaches length.
"""),
    ("code", r"""
PAD = " I hope this helps! Let me know if you need anything else."
length_only = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["chosen"] + PAD} for r in pairs["train"]]
len_trainer, len_scores, len_acc = train_dpo(length_only, "length_only")
margins = len_scores.margins(BETA)
length_gap = [nr - nc for nc, nr in zip(len_scores.chosen_tokens, len_scores.rejected_tokens)]


def pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    sa, sb = math.sqrt(sum((x - ma) ** 2 for x in a)), math.sqrt(sum((y - mb) ** 2 for y in b))
    return cov / (sa * sb) if sa and sb else 0.0


corr = pearson(length_gap, margins)
print(f"length-only pairs: held-out accuracy {len_acc:.3f}; correlation of margin with length gap {corr:+.2f}")
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.scatter(length_gap, margins, s=14)
ax.axhline(0, color="grey", lw=0.8)
ax.set(xlabel="rejected - chosen length (tokens)", ylabel="implicit reward margin",
       title="A reward trained on length-only pairs")
fig.tight_layout()
run.savefig(fig, "length_only")
run.record(accuracy_dpo=dpo_acc, accuracy_ipo=ipo_acc, accuracy_off_topic=off_acc, accuracy_length_only=len_acc,
           ipo_loss_abs_diff=abs(ipo_ours - ipo_theirs), margin_length_correlation=corr,
           kl_dpo=dpo_scores.kl_per_token, kl_ipo=ipo_scores.kl_per_token, n_train=len(pairs["train"]),
           n_test=len(pairs["test"]))
"""),
]


def main() -> None:
    title = "10 · Aligning with preferences: DPO with TRL"
    times = {k: v for k, v in TIMES.items()}
    nb = notebooks.build(STEM, title, LEARN, times, CELLS)
    nb["cells"][0]["source"] = nb["cells"][0]["source"].replace("**Expected run time:**", f"**Expected run time** {HARDWARE}:")
    notebooks.write(nb, ROOT / "notebooks" / f"{STEM}.ipynb")
    sol_stem = f"{STEM}_solutions"
    sol = notebooks.build(sol_stem, "10 · Solutions: preference alignment with DPO",
                          ["worked answers to the warm-up, core and stretch exercises of notebook 10"],
                          SOLUTION_TIMES, SOLUTION_CELLS, folder="notebooks/solutions")
    sol["cells"][0]["source"] = sol["cells"][0]["source"].replace("**Expected run time:**",
                                                                  f"**Expected run time** {HARDWARE}:")
    notebooks.write(sol, ROOT / "notebooks" / "solutions" / f"{sol_stem}.ipynb")


if __name__ == "__main__":
    main()
