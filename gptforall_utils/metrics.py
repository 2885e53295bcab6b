"""Metrics: accuracy, macro-F1, confusion matrix, confidence intervals, perplexity and ROUGE.

ROUGE goes through the `evaluate` library when its metric can load (it is fetched from the Hub)
and otherwise through `rouge_score` directly, with the same tokenisation, stemming and
aggregation, so the numbers agree. `rouge()` reports which backend it used. With several references
per prediction, the best-matching reference counts (per ROUGE type), as in `evaluate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


# ---------------------------------------------------------------- classification
def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Share of predictions equal to the label."""
    _same_length(predictions, labels)
    return sum(int(p) == int(t) for p, t in zip(predictions, labels)) / len(labels)


def confusion_matrix(predictions: Sequence[int], labels: Sequence[int], n_classes: int | None = None):
    """Counts as a list of rows: row = true class, column = predicted class."""
    _same_length(predictions, labels)
    n = n_classes or (max(max(predictions), max(labels)) + 1)
    matrix = [[0] * n for _ in range(n)]
    for p, t in zip(predictions, labels):
        matrix[int(t)][int(p)] += 1
    return matrix


def per_class_f1(predictions: Sequence[int], labels: Sequence[int], n_classes: int | None = None) -> list[float]:
    """F1 of each class (0 where a class is never predicted and never true)."""
    m = confusion_matrix(predictions, labels, n_classes)
    scores = []
    for c in range(len(m)):
        tp = m[c][c]
        fp = sum(m[r][c] for r in range(len(m))) - tp
        fn = sum(m[c]) - tp
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return scores


def macro_f1(predictions: Sequence[int], labels: Sequence[int], n_classes: int | None = None) -> float:
    """Unweighted mean of the per-class F1 scores: every class counts the same, however rare."""
    scores = per_class_f1(predictions, labels, n_classes)
    return sum(scores) / len(scores)


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
    nll_sum, n_predicted, prev_end = 0.0, 0, 0
    for begin in range(0, ids.numel(), stride):
        end = min(begin + max_length, ids.numel())
        window = ids[begin:end].unsqueeze(0).to(device)
        targets = window.clone()
        new = end - prev_end  # tokens this window scores for the first time
        targets[:, :-new] = -100
        with torch.no_grad():
            logits = model(input_ids=window).logits.float()  # (1, w, vocab)
        shift_logits, shift_targets = logits[:, :-1], targets[:, 1:]
        mask = shift_targets != -100
        loss = torch.nn.functional.cross_entropy(
            shift_logits[mask], shift_targets[mask], reduction="sum")
        if not math.isfinite(loss.item()):
            raise ValueError(f"The model's logits are not finite (NaN/inf) on the window starting at token {begin}: "
                             "no perplexity can be computed from them. The weights or activations are not finite "
                             "(a diverged training run, or a half-precision overflow); retrain or load in fp32.")
        nll_sum += loss.item()
        n_predicted += int(mask.sum())
        prev_end = end
        if end == ids.numel():
            break
    return math.exp(nll_sum / n_predicted)


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
    _same_length(predictions, references)
    if backend not in ("auto", "evaluate", "rouge_score"):
        raise ValueError("backend must be 'auto', 'evaluate' or 'rouge_score'")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    for i, r in enumerate(refs):
        if not r or not all(isinstance(x, str) for x in r):
            raise ValueError(f"references[{i}] must be a string or a non-empty list of strings, got {references[i]!r}")
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
    return _rouge_score(predictions, refs, use_stemmer)


def _rouge_score(predictions: Sequence[str], references: Sequence[Sequence[str]], use_stemmer: bool) -> dict:
    # What evaluate's rouge does: RougeScorer(rouge_types, use_stemmer), score_multi(references, prediction)
    # per prediction (the best reference per ROUGE type, by F-measure), then the mean over predictions
    # (evaluate with use_aggregator=False, averaged).
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for pred, refs in zip(predictions, references):
        s = scorer.score_multi(list(refs), pred)
        for k in ROUGE_TYPES:
            totals[k] += s[k].fmeasure
    out: dict[str, float | str] = {k: v / len(predictions) for k, v in totals.items()}
    out["backend"] = "rouge_score"
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
    import json
    import os

    environ = os.environ if environ is None else environ
    body = {
        "model": config.model,
        "temperature": 0,
        "max_tokens": 400,
        "messages": [{"role": "user", "content": JUDGE_PROMPT.format(question=question, answer=answer)}],
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


def judge_answer(config: JudgeConfig, question: str, answer: str, timeout: float = 60.0,
                 environ=None) -> dict[str, float | str | None]:
    """Ask the judge to grade one answer: {"rating": 1..10 or None, "explanation": the judge's text}.

    Raises RuntimeError on an HTTP or protocol error (the message never contains the key).
    """
    import json
    import urllib.error
    import urllib.request

    endpoint, headers, body = judge_request(config, question, answer, environ)
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
        text = payload["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise RuntimeError(f"The judge's reply has no choices[0].message.content: {str(payload)[:200]}") from None
    return {"rating": parse_judge_rating(text), "explanation": text.strip()}


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
