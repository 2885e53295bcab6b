"""Prompt templates: the model's chat template, the Alpaca template, and label-word classification.

Label-word classification asks the model a question and compares the logits of the first token
of each label word ("positive", "negative", ...) at the answer position. Unlike free generation
it always yields exactly one valid label, and its scores give a confidence for free.
"""

from __future__ import annotations

from dataclasses import dataclass

ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def alpaca_prompt(instruction: str, input: str = "") -> str:
    """The Alpaca prompt (without the response), with or without an input/context block."""
    if input and input.strip():
        return ALPACA_WITH_INPUT.format(instruction=instruction.strip(), input=input.strip())
    return ALPACA_NO_INPUT.format(instruction=instruction.strip())


def chat(tokenizer, user: str, system: str | None = None, history: list[dict] | None = None) -> str:
    """Render one user turn (after optional system text and earlier turns) with the model's chat
    template, ending where the assistant's answer begins."""
    messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.extend(history or [])
    messages.append({"role": "user", "content": user})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 64, batch_size: int = 8,
             **generate_kwargs) -> list[str]:
    """Greedy (by default) continuations of already-rendered prompts, without the prompt text."""
    import torch

    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right edge
    outputs: list[str] = []
    kwargs = {"do_sample": False, "max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
    kwargs.update(generate_kwargs)
    try:
        for i in range(0, len(prompts), batch_size):
            batch = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(model.device)
            with torch.no_grad():
                out = model.generate(**batch, **kwargs)
            new = out[:, batch["input_ids"].shape[1]:]
            outputs.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = old_side
    return [o.strip() for o in outputs]


@dataclass(frozen=True)
class LabelWordPrompt:
    """A classification question whose answer is one of `label_words`.

    template: the user message, with {text} where the input goes.
    label_words: one word per class, in class-index order; their first tokens must differ.
    """

    template: str
    label_words: tuple[str, ...]
    system: str | None = None

    def user_message(self, text: str) -> str:
        return self.template.format(text=text.strip())

    def render(self, tokenizer, text: str, examples: list[tuple[str, int]] | None = None) -> str:
        """The full prompt for `text`, with optional few-shot (text, label index) examples as earlier turns."""
        history = []
        for ex_text, ex_label in examples or []:
            history.append({"role": "user", "content": self.user_message(ex_text)})
            history.append({"role": "assistant", "content": self.label_words[ex_label]})
        return chat(tokenizer, self.user_message(text), system=self.system, history=history)

    def target(self, label: int) -> str:
        """The answer the model should give for a label index (used as the training target)."""
        return self.label_words[label]


def label_token_ids(tokenizer, label_words: tuple[str, ...] | list[str]) -> list[int]:
    """The first token id of each label word as it appears at the start of an answer.

    Raises ValueError when two label words start with the same token (the scores could not tell
    them apart): choose different words.
    """
    ids = []
    for word in label_words:
        toks = tokenizer(word, add_special_tokens=False)["input_ids"]
        if not toks:
            raise ValueError(f"Label word {word!r} tokenizes to nothing.")
        ids.append(toks[0])
    if len(set(ids)) != len(ids):
        clash = [w for w, i in zip(label_words, ids) if ids.count(i) > 1]
        raise ValueError(f"Label words {clash} share their first token; pick words that start differently.")
    return ids


def score_labels(model, tokenizer, prompts: list[str], label_words, batch_size: int = 16):
    """Logits of each label word's first token at the answer position: a tensor (n_prompts, n_labels).

    Prompts are left-padded so the answer position is the last column for every row; only that
    position's logits are computed (`logits_to_keep=1`), which skips most of the output layer's work.
    """
    import torch

    ids = torch.tensor(label_token_ids(tokenizer, label_words))
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    scores = []
    try:
        for i in range(0, len(prompts), batch_size):
            batch = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(model.device)
            with torch.no_grad():
                logits = model(**batch, logits_to_keep=1).logits[:, -1]  # (b, vocab) at the answer position
            scores.append(logits[:, ids.to(logits.device)].float().cpu())
    finally:
        tokenizer.padding_side = old_side
    scores = torch.cat(scores)
    check_finite_scores(scores)
    return scores


def check_finite_scores(scores) -> None:
    """Refuse label scores computed from NaN/inf logits: argmax would silently pick class 0 for every row (a
    diverged model then looks like a classifier that always answers the first label)."""
    import torch

    bad = ~torch.isfinite(scores)
    if bool(bad.any()):
        rows = int(bad.any(dim=-1).sum())
        raise ValueError(f"{rows} of {scores.shape[0]} prompts got non-finite label scores (NaN/inf logits): the "
                         "model's weights or activations are not finite (a diverged training run, or a half-precision "
                         "overflow). No accuracy can be computed from them; retrain (see training.DivergedError) "
                         "or load the model in fp32.")


def classify(model, tokenizer, prompt: LabelWordPrompt, texts: list[str],
             examples: list[tuple[str, int]] | None = None, batch_size: int = 16) -> list[int]:
    """Predicted label index for each text, by label-word scoring (zero-shot, or few-shot with `examples`)."""
    rendered = [prompt.render(tokenizer, t, examples) for t in texts]
    return score_labels(model, tokenizer, rendered, prompt.label_words, batch_size).argmax(dim=1).tolist()


# Chosen among six wordings on 120 validation snippets (SmolLM2-135M, embedded): the short system
# message and "negative or positive" order removed most of the model's bias towards "positive".
SENTIMENT = LabelWordPrompt(
    template="Classify the sentiment of this movie review as negative or positive.\nReview: {text}",
    label_words=("negative", "positive"),
    system="You are a precise sentiment classifier. Answer with one word.",
)
