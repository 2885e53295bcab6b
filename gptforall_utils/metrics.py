"""Metrics: accuracy, macro-F1, confusion matrix, confidence intervals, paired tests (McNemar,
bootstrap, agreement), multiple-choice scoring by log-likelihood, perplexity, ROUGE, and the
LLM judge with the checks a judge needs (both orders, length control).

ROUGE goes through the `evaluate` library when its metric can load (it is fetched from the Hub)
and otherwise through `rouge_score` directly, with the same tokenisation, stemming and
aggregation, so the numbers agree. `rouge()` reports which backend it used. With several references
per prediction, the best-matching reference counts (per ROUGE type), as in `evaluate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


# ---------------------------------------------------------------- classification
# Accuracy, the confusion matrix and F1 come from scikit-learn; these wrappers fix the conventions the
# notebooks rely on: integer class ids 0..n-1, classes that never occur still get a row and a score,
# and bad input fails with a message instead of a silently wrong number.
def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Share of predictions equal to the label."""
    from sklearn.metrics import accuracy_score

    preds, truth = _class_ids(predictions, labels)
    return float(accuracy_score(truth, preds))


def confusion_matrix(predictions: Sequence[int], labels: Sequence[int], n_classes: int | None = None):
    """Counts as a list of rows: row = true class, column = predicted class.

    Classes are 0 .. n_classes - 1 (default: up to the largest id seen), so a class that never occurs
    still has its row and column of zeros.
    """
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    preds, truth = _class_ids(predictions, labels)
    classes = _classes(preds, truth, n_classes)
    return sk_confusion_matrix(truth, preds, labels=classes).tolist()


def per_class_f1(predictions: Sequence[int], labels: Sequence[int], n_classes: int | None = None) -> list[float]:
    """F1 of each class 0 .. n_classes - 1 (0 for a class that is never predicted correctly, also
    when it is never predicted and never true)."""
    from sklearn.metrics import f1_score

    preds, truth = _class_ids(predictions, labels)
    classes = _classes(preds, truth, n_classes)
    return [float(f) for f in f1_score(truth, preds, labels=classes, average=None, zero_division=0)]


def macro_f1(predictions: Sequence[int], labels: Sequence[int], n_classes: int | None = None) -> float:
    """Unweighted mean of the per-class F1 scores: every class counts the same, however rare."""
    from sklearn.metrics import f1_score

    preds, truth = _class_ids(predictions, labels)
    classes = _classes(preds, truth, n_classes)
    return float(f1_score(truth, preds, labels=classes, average="macro", zero_division=0))


def _class_ids(predictions: Sequence[int], labels: Sequence[int]) -> tuple[list[int], list[int]]:
    """Predictions and labels as lists of non-negative ints, checked to pair up."""
    _same_length(predictions, labels)
    out = []
    for name, values in (("predictions", predictions), ("labels", labels)):
        ids = []
        for v in values:
            try:
                ok = int(v) == v and int(v) >= 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"{name} must be class ids 0, 1, 2, ...; got {v!r}")
            ids.append(int(v))
        out.append(ids)
    return out[0], out[1]


def _classes(preds: list[int], truth: list[int], n_classes: int | None) -> list[int]:
    """The class ids to report: 0 .. n_classes - 1, or up to the largest id seen."""
    largest = max(max(preds), max(truth))
    if n_classes is None:
        return list(range(largest + 1))
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    if largest >= n_classes:
        raise ValueError(f"class id {largest} is out of range for n_classes={n_classes} (ids run 0..{n_classes - 1})")
    return list(range(n_classes))


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% (z=1.96) Wilson score interval for a proportion; sound also near 0 or 1 and for small n."""
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= correct <= n:
        raise ValueError("correct must be between 0 and n")
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_ci(predictions: Sequence[int], labels: Sequence[int], z: float = 1.96) -> tuple[float, float]:
    """Accuracy and the half-width of its 95% Wilson interval (the "±" to print next to it)."""
    acc = accuracy(predictions, labels)
    lo, hi = wilson_interval(round(acc * len(labels)), len(labels), z)
    return acc, (hi - lo) / 2


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"predictions ({len(a)}) and labels ({len(b)}) differ in length")
    if len(a) == 0:
        raise ValueError("no predictions to score")


# ---------------------------------------------------------------- paired comparisons: McNemar, bootstrap, agreement
def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict[str, float | int]:
    """Exact McNemar test of two models scored on the same questions.

    Only the discordant questions carry information: b = right under A but wrong under B,
    c = wrong under A but right under B. With no real difference each discordant question is a
    fair coin, so p = P(|X - n/2| >= |b - n/2|) for X ~ Binomial(n = b + c, 1/2), two-sided.
    Returns {"both", "only_a", "only_b", "neither", "p"}; p = 1 when there is no discordant question.
    """
    _same_length(correct_a, correct_b)
    pairs = [(bool(x), bool(y)) for x, y in zip(correct_a, correct_b)]
    b = sum(1 for x, y in pairs if x and not y)
    c = sum(1 for x, y in pairs if y and not x)
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n if n else 1.0
    return {"both": sum(1 for x, y in pairs if x and y), "only_a": b, "only_b": c,
            "neither": sum(1 for x, y in pairs if not x and not y), "p": min(1.0, 2 * tail)}


def bootstrap_interval(statistic, n_items: int, n_resamples: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float, float]:
    """(estimate, low, high): a percentile bootstrap interval for `statistic(indices)`.

    `statistic` takes a list of item indices (drawn with replacement) and returns a number; the
    items are the unit that varies (documents, questions). For a paired comparison the statistic
    uses the SAME indices for both models, so what varies between documents cancels out.
    """
    import random

    if n_items < 2:
        raise ValueError(f"need at least 2 items to bootstrap, got {n_items}")
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")
    rng = random.Random(seed)
    estimate = float(statistic(list(range(n_items))))
    draws = sorted(float(statistic([rng.randrange(n_items) for _ in range(n_items)])) for _ in range(n_resamples))
    lo_i = int(math.floor((1 - level) / 2 * (n_resamples - 1)))
    hi_i = int(math.ceil((1 + level) / 2 * (n_resamples - 1)))
    return estimate, draws[lo_i], draws[hi_i]


def perplexity_change(nll_before: Sequence[float], nll_after: Sequence[float], tokens: Sequence[int],
                      n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, float | int]:
    """Relative change of perplexity (after / before - 1) with a paired bootstrap over documents.

    nll_before[d], nll_after[d]: summed negative log-likelihood of document d's tokens under each
    model; tokens[d]: how many tokens of d were scored (the same tokens for both models).
    Returns {"change", "low", "high", "documents", "tokens", "perplexity_before", "perplexity_after"}.
    """
    if not len(nll_before) == len(nll_after) == len(tokens):
        raise ValueError("nll_before, nll_after and tokens need one value per document")
    docs = [d for d in range(len(tokens)) if tokens[d] > 0]

    def change(idx):
        n = sum(tokens[docs[i]] for i in idx)
        before = sum(nll_before[docs[i]] for i in idx) / n
        after = sum(nll_after[docs[i]] for i in idx) / n
        return math.exp(after - before) - 1

    est, lo, hi = bootstrap_interval(change, len(docs), n_resamples, seed, level)
    n_tokens = sum(tokens[d] for d in docs)
    return {"change": est, "low": lo, "high": hi, "documents": len(docs), "tokens": n_tokens,
            "perplexity_before": math.exp(sum(nll_before[d] for d in docs) / n_tokens),
            "perplexity_after": math.exp(sum(nll_after[d] for d in docs) / n_tokens)}


def cohen_kappa(a: Sequence, b: Sequence) -> float:
    """Cohen's kappa of two raters' labels: their agreement, corrected for the agreement that chance alone
    would give (1 = perfect, 0 = no better than chance, < 0 = worse). 1.0 when both use one same label throughout."""
    _same_length(a, b)
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    labels = set(a) | set(b)
    expected = sum((list(a).count(k) / n) * (list(b).count(k) / n) for k in labels)
    if expected == 1:
        return 1.0
    return (observed - expected) / (1 - expected)


def agreement(a: Sequence, b: Sequence) -> dict[str, float | int]:
    """How far two raters (a judge and a person, two judges) agree: {"n", "agreement", "kappa"}."""
    _same_length(a, b)
    return {"n": len(a), "agreement": sum(x == y for x, y in zip(a, b)) / len(a), "kappa": cohen_kappa(a, b)}


# ---------------------------------------------------------------- multiple choice by log-likelihood
def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) the way lm-evaluation-harness splits them.

    The joined text is tokenized once and the context's tokens cut off the front, so the
    continuation's tokens are the ones the model really produces after the context (tokenizing
    the continuation alone can give different tokens at the seam). Trailing spaces of the context
    move to the continuation.
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    return ctx, whole[len(ctx):]


def choice_logprobs(model, tokenizer, contexts: Sequence[str], choices: Sequence[Sequence[str]],
                    batch_size: int = 16) -> list[list[tuple[float, int]]]:
    """For each question, (sum of log-probabilities, number of tokens) of every choice given its context.

    The same numbers as one forward pass per (context + choice), computed with the context run once per
    question: `batch_size` contexts are left-padded into one batch (masked, with their own position
    ids), their key/value cache is copied once per choice, and all the choices continue from it in a
    second pass. A question's context is about 27 tokens and a choice about 4 on ARC, so this does a
    third of the work.
    """
    import torch

    if len(contexts) != len(choices):
        raise ValueError(f"{len(contexts)} contexts but {len(choices)} choice lists")
    encoded = []  # per question: (context ids, [continuation ids per choice])
    for q, (context, options) in enumerate(zip(contexts, choices)):
        if not context.strip():
            raise ValueError(f"question {q} has an empty context")
        pairs = [encode_pair(tokenizer, context, option) for option in options]  # the context part is shared
        for c, (_, cont) in enumerate(pairs):
            if not cont:
                raise ValueError(f"question {q}, choice {c}: {options[c]!r} adds no token to the context")
        encoded.append((pairs[0][0], [cont for _, cont in pairs]))
    out: list[list[tuple[float, int]]] = []
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start:start + batch_size]
        width = max(len(ctx) for ctx, _ in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ctx, _) in enumerate(batch):  # left padding: every context ends in the last column
            ids[row, width - len(ctx):] = torch.tensor(ctx)
            mask[row, width - len(ctx):] = 1
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        with torch.no_grad():
            first = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                          use_cache=True, logits_to_keep=1)
        first_logp = torch.log_softmax(first.logits[:, -1].float(), dim=-1)  # (b, vocab): each choice's first token
        owner = [row for row, (_, conts) in enumerate(batch) for _ in conts]  # question row of every choice
        conts = [cont for _, cs in batch for cont in cs]
        totals = [first_logp[owner[i], cont[0]].item() for i, cont in enumerate(conts)]
        rest = max(len(c) for c in conts) - 1
        if rest > 0:  # the choices' later tokens, continuing from their question's cache
            cache = first.past_key_values
            cache.batch_select_indices(torch.tensor(owner, device=device))
            x = torch.full((len(conts), rest), pad, dtype=torch.long)
            x_mask = torch.zeros((len(conts), rest), dtype=torch.long)
            for i, cont in enumerate(conts):
                x[i, :len(cont) - 1] = torch.tensor(cont[:-1])
                x_mask[i, :len(cont) - 1] = 1
            full_mask = torch.cat([mask[owner], x_mask], dim=1)
            x_pos = mask[owner].sum(1, keepdim=True) + torch.arange(rest)[None, :]
            with torch.no_grad():
                logits = model(input_ids=x.to(device), attention_mask=full_mask.to(device),
                               position_ids=x_pos.to(device), past_key_values=cache).logits  # (n_choices, rest, vocab)
            for i, cont in enumerate(conts):
                if len(cont) > 1:  # position t of the second pass predicts the choice's token t + 1
                    logp = torch.log_softmax(logits[i, :len(cont) - 1].float(), dim=-1)
                    target = torch.tensor(cont[1:], device=logp.device)
                    totals[i] += logp.gather(1, target[:, None]).sum().item()
        k = 0
        for _, cs in batch:
            out.append([(totals[k + j], len(c)) for j, c in enumerate(cs)])
            k += len(cs)
    return out


def choice_predictions(logprobs: Sequence[Sequence[tuple[float, int]]], choices: Sequence[Sequence[str]],
                       normalise: str = "none") -> list[int]:
    """The chosen answer per question: the choice with the highest score.

    normalise="none": summed log-probability (lm-evaluation-harness's `acc`); longer choices pay
    for every extra token, so short choices are favoured. normalise="chars": divided by the
    choice's length in characters (the harness's `acc_norm`), which does not depend on the tokenizer.
    normalise="tokens": the mean per token.
    """
    if normalise not in ("none", "chars", "tokens"):
        raise ValueError("normalise must be 'none', 'chars' or 'tokens'")
    preds = []
    for scores, options in zip(logprobs, choices):
        if normalise == "none":
            values = [s for s, _ in scores]
        elif normalise == "chars":
            values = [s / max(len(o), 1) for (s, _), o in zip(scores, options)]
        else:
            values = [s / n for s, n in scores]
        preds.append(max(range(len(values)), key=values.__getitem__))
    return preds


# ---------------------------------------------------------------- language modelling
def perplexity(model, tokenizer, texts: str | Sequence[str], max_length: int = 512, stride: int = 256,
               max_tokens: int | None = None) -> float:
    """Perplexity of running text with a sliding window.

    The texts are joined with blank lines and tokenized once. Windows of `max_length` tokens move
    by `stride`; each window scores only the tokens not scored before, so every token (after the
    first) is predicted exactly once, with at least max_length - stride tokens of context (fewer
    at the very start). Returns
    exp(mean negative log-likelihood per predicted token).
    """
    return math.exp(token_nlls(model, tokenizer, texts, max_length, stride, max_tokens).double().mean().item())


def token_nlls(model, tokenizer, texts: str | Sequence[str], max_length: int = 512, stride: int = 256,
               max_tokens: int | None = None):
    """The negative log-likelihood of every predicted token (every token after the first), in order:
    the values `perplexity` averages, kept per token so they can be summed per document
    (`joined_tokens` says which document each token comes from)."""
    import torch

    if stride <= 0 or max_length <= 1 or stride >= max_length:
        # Windows must overlap by at least one token: a window's first token has no context inside
        # it, so with stride == max_length the token at every window boundary would never be scored.
        raise ValueError(f"need 0 < stride < max_length (got stride={stride}, max_length={max_length})")
    text = texts if isinstance(texts, str) else "\n\n".join(texts)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if ids.numel() < 2:
        raise ValueError("need at least two tokens of text to compute perplexity")
    device = next(model.parameters()).device
    nll = torch.zeros(ids.numel())
    scored_to = 1  # token 0 is never predicted
    for begin in range(0, ids.numel(), stride):
        end = min(begin + max_length, ids.numel())
        window = ids[begin:end].unsqueeze(0).to(device)
        with torch.no_grad():
            logits = model(input_ids=window).logits[0, :-1].float()  # (w - 1, vocab): position t predicts t + 1
        if not torch.isfinite(logits).all():
            raise ValueError(f"The model's logits are not finite (NaN/inf) on the window starting at token {begin}: "
                             "no perplexity can be computed from them. The weights or activations are not finite "
                             "(a diverged training run, or a half-precision overflow); retrain or load in fp32.")
        logp = torch.log_softmax(logits, dim=-1).gather(1, window[0, 1:, None])[:, 0]
        new = end - scored_to  # tokens this window scores for the first time
        nll[scored_to:end] = -logp[-new:].cpu()
        scored_to = end
        if end == ids.numel():
            break
    return nll[1:]


def joined_tokens(tokenizer, texts: str | Sequence[str], max_tokens: int | None = None):
    """(ids, document): the token ids `perplexity` scores (texts joined with blank lines, tokenized
    once, cut at max_tokens) and, for each token, the index of the text it comes from.

    A token that starts in the blank line between two texts counts for the next one. Needs a fast
    tokenizer (character offsets).
    """
    import bisect

    import torch

    texts = [texts] if isinstance(texts, str) else list(texts)
    starts, pos = [], 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + 2
    enc = tokenizer("\n\n".join(texts), add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor(enc["input_ids"])
    document = torch.tensor([max(0, bisect.bisect_right(starts, s) - 1) for s, _ in enc["offset_mapping"]])
    if max_tokens is not None:
        ids, document = ids[:max_tokens], document[:max_tokens]
    return ids, document


def document_sums(nll, document, n_documents: int | None = None) -> tuple[list[float], list[int]]:
    """(summed nll, scored tokens) per document: `nll` from `token_nlls`, `document` the documents of
    the same tokens (`joined_tokens(...)[1][1:]`, as the first token is never predicted)."""
    import torch

    n = n_documents if n_documents is not None else int(document.max()) + 1
    sums = torch.bincount(document, weights=nll.double(), minlength=n)
    counts = torch.bincount(document, minlength=n)
    return sums.tolist(), counts.tolist()


# ---------------------------------------------------------------- ROUGE
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def rouge(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]], backend: str = "auto",
          use_stemmer: bool = True) -> dict[str, float | str]:
    """ROUGE-1/2/L/Lsum F-measures (0..1), as `evaluate`'s rouge metric computes them.

    references: one reference per prediction, or a list of references per prediction (DialogSum's test
    dialogues have three). With several, each prediction is scored against every one of its references
    and, per ROUGE type, the BEST F-measure counts (rouge_score's `score_multi`, which is what `evaluate`
    does with lists of references); the per-prediction scores are then averaged, so every dialogue counts once.
    backend: "auto" (evaluate when its metric loads, else rouge_score), "evaluate" or "rouge_score".
    The result includes "backend" saying which one ran.
    """
    if backend not in ("auto", "evaluate", "rouge_score"):
        raise ValueError("backend must be 'auto', 'evaluate' or 'rouge_score'")
    refs = _reference_lists(predictions, references)
    if backend in ("auto", "evaluate"):
        try:
            import evaluate

            metric = evaluate.load("rouge")
            scores = metric.compute(predictions=list(predictions), references=refs,
                                    use_stemmer=use_stemmer, use_aggregator=False)
            out: dict[str, float | str] = {k: sum(scores[k]) / len(scores[k]) for k in ROUGE_TYPES}
            out["backend"] = "evaluate"
            return out
        except Exception as e:  # offline: the metric script lives on the Hub
            if backend == "evaluate":
                raise RuntimeError(f"evaluate's rouge metric could not load: {e}") from e
    per_item = rouge_per_item(predictions, refs, use_stemmer)
    out = {k: sum(v) / len(v) for k, v in per_item.items()}
    out["backend"] = "rouge_score"
    return out


def _reference_lists(predictions, references) -> list[list[str]]:
    _same_length(predictions, references)
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    for i, r in enumerate(refs):
        if not r or not all(isinstance(x, str) for x in r):
            raise ValueError(f"references[{i}] must be a string or a non-empty list of strings, got {references[i]!r}")
    return refs


def rouge_per_item(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
                   use_stemmer: bool = True) -> dict[str, list[float]]:
    """Per prediction, the ROUGE F-measures that `rouge` averages (the best reference per ROUGE type, with
    rouge_score, as evaluate computes them): the unit a paired bootstrap resamples when two systems are
    scored on the same items."""
    from rouge_score import rouge_scorer

    refs = _reference_lists(predictions, references)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    out: dict[str, list[float]] = {k: [] for k in ROUGE_TYPES}
    for pred, item_refs in zip(predictions, refs):
        s = scorer.score_multi(item_refs, pred)
        for k in ROUGE_TYPES:
            out[k].append(s[k].fmeasure)
    return out


# ---------------------------------------------------------------- open-ended answers: LLM judge, reference-free signals
# An LLM judge is configured through environment variables only; the key is read when a request is
# sent and never printed, logged or written. Without a judge, `answer_signals` gives measurable,
# reference-free properties of the answers (they say nothing about correctness).
JUDGE_URL_ENV = "GPTFORALL_JUDGE_URL"  # an OpenAI-compatible base URL, e.g. https://api.example.com/v1
JUDGE_MODEL_ENV = "GPTFORALL_JUDGE_MODEL"
JUDGE_KEY_ENV = "GPTFORALL_JUDGE_API_KEY"

JUDGE_PROMPT = (
    "You are an impartial judge. Rate the quality of the AI assistant's answer to the user's question "
    "below. Consider helpfulness, relevance, accuracy, depth and clarity; an answer that repeats itself, "
    "rambles or does not address the question deserves a low rating. First explain your assessment in "
    "two or three sentences, then give a rating from 1 to 10 in exactly this format: [[rating]], "
    "for example [[5]].\n\n"
    "[Question]\n{question}\n\n[The Start of the Assistant's Answer]\n{answer}\n"
    "[The End of the Assistant's Answer]"
)

# Pairwise comparison in the style of MT-Bench's pairwise judge: the verdict is [[A]], [[B]] or [[C]] (tie).
# The prompt asks the judge to ignore position and length; whether it does is what the checks below measure.
PAIRWISE_PROMPT = (
    "You are an impartial judge. Compare the two AI assistants' answers to the user's question below and "
    "decide which one answers it better. Consider helpfulness, relevance, accuracy, depth and clarity. "
    "The order in which the answers are shown must not influence you, and neither must their length: a "
    "longer answer is better only if what it adds is useful. First explain your comparison in two or three "
    "sentences, then give your verdict in exactly this format: [[A]] if answer A is better, [[B]] if answer "
    "B is better, [[C]] for a tie.\n\n"
    "[Question]\n{question}\n\n[The Start of Answer A]\n{answer_a}\n[The End of Answer A]\n\n"
    "[The Start of Answer B]\n{answer_b}\n[The End of Answer B]"
)


class JudgeConfig:
    """Where the judge lives: an OpenAI-compatible endpoint and model. The key stays in the environment."""

    def __init__(self, url: str, model: str, key_env: str = JUDGE_KEY_ENV):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{JUDGE_URL_ENV} must start with http:// or https://, got {url!r}.")
        if not model.strip():
            raise ValueError(f"{JUDGE_MODEL_ENV} is empty; set it to the judge model's name.")
        self.url = url.rstrip("/")
        self.model = model.strip()
        self.key_env = key_env

    @property
    def endpoint(self) -> str:
        """The chat-completions URL (the base URL may already name it)."""
        return self.url if self.url.endswith("/chat/completions") else self.url + "/chat/completions"

    def __repr__(self) -> str:  # never shows the key
        return f"JudgeConfig(endpoint={self.endpoint!r}, model={self.model!r}, key from ${self.key_env})"


def judge_config(environ=None) -> JudgeConfig | None:
    """The judge configured in the environment, or None when GPTFORALL_JUDGE_URL / _MODEL are not both set."""
    import os

    environ = os.environ if environ is None else environ
    url, model = environ.get(JUDGE_URL_ENV, "").strip(), environ.get(JUDGE_MODEL_ENV, "").strip()
    if not url or not model:
        return None
    return JudgeConfig(url, model)


def judge_request(config: JudgeConfig, question: str, answer: str, environ=None) -> tuple[str, dict, bytes]:
    """(endpoint, headers, JSON body) of one grading request; the key goes into the Authorization header only."""
    return _chat_request(config, JUDGE_PROMPT.format(question=question, answer=answer), environ)


def pairwise_request(config: JudgeConfig, question: str, answer_a: str, answer_b: str,
                     environ=None) -> tuple[str, dict, bytes]:
    """(endpoint, headers, JSON body) of one pairwise request: answer_a is shown as A, answer_b as B."""
    content = PAIRWISE_PROMPT.format(question=question, answer_a=answer_a, answer_b=answer_b)
    return _chat_request(config, content, environ)


def _chat_request(config: JudgeConfig, content: str, environ=None) -> tuple[str, dict, bytes]:
    import json
    import os

    environ = os.environ if environ is None else environ
    body = {
        "model": config.model,
        "temperature": 0,
        "max_tokens": 400,
        "messages": [{"role": "user", "content": content}],
    }
    headers = {"Content-Type": "application/json"}
    key = environ.get(config.key_env, "")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return config.endpoint, headers, json.dumps(body).encode("utf-8")


def parse_judge_rating(text: str) -> float | None:
    """The rating in a judge's reply: the last [[n]] (1..10); None when there is none or it is out of range."""
    import re

    found = re.findall(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]", text or "")
    if not found:
        return None
    value = float(found[-1])
    return value if 1 <= value <= 10 else None


def parse_pairwise_verdict(text: str) -> str | None:
    """The verdict in a pairwise reply: the last [[A]], [[B]] or [[C]] as "A", "B" or "tie"; None without one."""
    import re

    found = re.findall(r"\[\[\s*([ABC])\s*\]\]", text or "")
    if not found:
        return None
    return {"A": "A", "B": "B", "C": "tie"}[found[-1]]


def _send(endpoint: str, headers: dict, body: bytes, timeout: float) -> str:
    """POST one chat-completions request; the reply's text. RuntimeError (without the key) on failure."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"The judge at {endpoint} answered HTTP {e.code} ({e.reason}).") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise RuntimeError(f"Could not reach the judge at {endpoint}: {getattr(e, 'reason', e)}.") from None
    except json.JSONDecodeError:
        raise RuntimeError(f"The judge at {endpoint} did not answer with JSON.") from None
    try:
        return payload["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise RuntimeError(f"The judge's reply has no choices[0].message.content: {str(payload)[:200]}") from None


def judge_answer(config: JudgeConfig, question: str, answer: str, timeout: float = 60.0,
                 environ=None) -> dict[str, float | str | None]:
    """Ask the judge to grade one answer: {"rating": 1..10 or None, "explanation": the judge's text}.

    Raises RuntimeError on an HTTP or protocol error (the message never contains the key).
    """
    text = _send(*judge_request(config, question, answer, environ), timeout)
    return {"rating": parse_judge_rating(text), "explanation": text.strip()}


def judge_pair(config: JudgeConfig, question: str, answer_a: str, answer_b: str, timeout: float = 60.0,
               environ=None) -> dict[str, str | None]:
    """Ask the judge which of two answers is better: {"verdict": "A" | "B" | "tie" | None, "explanation"}.

    One order only: `compare_both_orders` asks twice, with the answers swapped.
    """
    text = _send(*pairwise_request(config, question, answer_a, answer_b, environ), timeout)
    return {"verdict": parse_pairwise_verdict(text), "explanation": text.strip()}


def remote_pairwise_judge(config: JudgeConfig, timeout: float = 60.0, environ=None):
    """The configured judge as a pairwise judge function (question, answer_a, answer_b) -> verdict."""

    def judge(question: str, answer_a: str, answer_b: str) -> str | None:
        return judge_pair(config, question, answer_a, answer_b, timeout, environ)["verdict"]

    return judge


# ---------------------------------------------------------------- checking a pairwise judge
# A pairwise judge is any function (question, answer_a, answer_b) -> "A" | "B" | "tie" | None.
# Two deterministic stand-ins, each with one bias real LLM judges are known to have, let the
# checks below be tested without a judge model: if a check cannot expose them, it cannot expose
# the same bias in a real judge.
def longer_answer_judge(question: str, answer_a: str, answer_b: str) -> str:
    """Stand-in judge with a pure length bias: the answer with more words wins (equal length: tie)."""
    a, b = len(answer_a.split()), len(answer_b.split())
    return "A" if a > b else "B" if b > a else "tie"


def first_position_judge(question: str, answer_a: str, answer_b: str) -> str:
    """Stand-in judge with a pure position bias: whatever is shown first wins."""
    return "A"


def compare_both_orders(judge, questions: Sequence[str], answers_x: Sequence[str], answers_y: Sequence[str],
                        names: tuple[str, str] = ("before", "after")) -> list[dict]:
    """Judge every pair twice, x shown first then y shown first; a win counts only when both orders agree.

    Returns one record per question: {"first": winner with x as A, "second": winner with y as A,
    "outcome": the winner's name, "tie", "inconsistent" (the verdict followed the position) or
    "invalid" (no verdict in one order)}.
    """
    if not len(questions) == len(answers_x) == len(answers_y):
        raise ValueError("questions, answers_x and answers_y must have the same length")
    x, y = names
    records = []
    for q, ax, ay in zip(questions, answers_x, answers_y):
        first = {"A": x, "B": y, "tie": "tie"}.get(judge(q, ax, ay))
        second = {"A": y, "B": x, "tie": "tie"}.get(judge(q, ay, ax))
        if first is None or second is None:
            outcome = "invalid"
        elif first == second:
            outcome = first
        else:
            outcome = "inconsistent"
        records.append({"first": first, "second": second, "outcome": outcome})
    return records


def pairwise_summary(records: Sequence[dict], names: tuple[str, str] = ("before", "after")) -> dict[str, float | int]:
    """Counts and rates of `compare_both_orders` records.

    "first_order_<y>_wins": what a single-order evaluation (y always shown second) would report;
    "consistency": share of pairs with the same verdict in both orders; "<y>_win_rate": y's
    consistent wins over all pairs, with its 95% Wilson interval ("<y>_win_low", "<y>_win_high").
    """
    x, y = names
    n = len(records)
    if n == 0:
        raise ValueError("no judged pairs")
    count = {k: sum(r["outcome"] == k for r in records) for k in (x, y, "tie", "inconsistent", "invalid")}
    lo, hi = wilson_interval(count[y], n)
    return {"pairs": n, f"{y}_wins": count[y], f"{x}_wins": count[x], "ties": count["tie"],
            "inconsistent": count["inconsistent"], "invalid": count["invalid"],
            "consistency": (n - count["inconsistent"] - count["invalid"]) / n,
            f"first_order_{y}_wins": sum(r["first"] == y for r in records),
            f"{y}_win_rate": count[y] / n, f"{y}_win_low": lo, f"{y}_win_high": hi}


def length_preference(records: Sequence[dict], answers_x: Sequence[str], answers_y: Sequence[str],
                      names: tuple[str, str] = ("before", "after")) -> dict[str, float | int]:
    """How often a consistent verdict went to the longer answer (in words), with its Wilson interval.

    Only pairs with a winner and answers of different length count. A judge that ignores length
    sits near 0.5 unless the better answers really are longer; 1.0 means length alone decides.
    """
    x, y = names
    decided = longer = 0
    for r, ax, ay in zip(records, answers_x, answers_y):
        lx, ly = len(ax.split()), len(ay.split())
        if r["outcome"] in (x, y) and lx != ly:
            decided += 1
            longer += (r["outcome"] == y) == (ly > lx)
    lo, hi = wilson_interval(longer, decided) if decided else (0.0, 1.0)
    return {"decided": decided, "longer_wins": longer, "share": longer / decided if decided else float("nan"),
            "low": lo, "high": hi}


LENGTH_BUCKETS = ((-math.inf, -0.2, "y shorter by >20%"), (-0.2, 0.2, "within 20%"), (0.2, math.inf, "y longer by >20%"))


def wins_by_length_bucket(records: Sequence[dict], answers_x: Sequence[str], answers_y: Sequence[str],
                          names: tuple[str, str] = ("before", "after")) -> dict[str, dict[str, int]]:
    """Outcomes grouped by how much longer y's answer is than x's: (len_y - len_x) / max(len_x, len_y) in words.

    Returns {bucket label (with "y" replaced by y's name): {"pairs", y, x, "tie", "inconsistent", "invalid"}}.
    If y only wins where its answers are longer, the judge may be rewarding length.
    """
    x, y = names
    table = {label.replace("y ", f"{y} ", 1): dict.fromkeys(("pairs", y, x, "tie", "inconsistent", "invalid"), 0)
             for _, _, label in LENGTH_BUCKETS}
    for r, ax, ay in zip(records, answers_x, answers_y):
        lx, ly = len(ax.split()), len(ay.split())
        diff = (ly - lx) / max(lx, ly, 1)
        for low, high, label in LENGTH_BUCKETS:
            if low <= diff < high:
                row = table[label.replace("y ", f"{y} ", 1)]
                row["pairs"] += 1
                row[r["outcome"]] += 1
                break
    return table


def repetition_rate(text: str, n: int = 3) -> float:
    """Share of the answer's word n-grams that repeat an earlier n-gram (0: none repeat; near 1: a loop).

    0.0 for answers shorter than n words.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    words = text.lower().split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def answer_signals(answers: Sequence[str], stopped: Sequence[bool] | None = None, n: int = 3) -> dict[str, float]:
    """Reference-free signals of a set of answers: mean length in words, mean repetition rate (n-grams),
    share of empty answers and (when `stopped` is given) share that ended with the end-of-sequence token.

    These measure form, not correctness: a short, non-repetitive answer can still be wrong.
    """
    if not answers:
        raise ValueError("no answers to measure")
    if stopped is not None and len(stopped) != len(answers):
        raise ValueError(f"{len(answers)} answers but {len(stopped)} stopped flags")
    out = {
        "words": sum(len(a.split()) for a in answers) / len(answers),
        "repetition": sum(repetition_rate(a, n) for a in answers) / len(answers),
        "empty": sum(1 for a in answers if not a.strip()) / len(answers),
    }
    if stopped is not None:
        out["stops_at_eos"] = sum(bool(s) for s in stopped) / len(answers)
    return out
