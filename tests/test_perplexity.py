"""metrics.perplexity on a fake model whose next-token distribution is known exactly."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from gptforall_utils import metrics

VOCAB = 4
# Next-token probabilities given the current token (rows sum to 1): a bigram model.
BIGRAM = torch.tensor([
    [0.10, 0.60, 0.20, 0.10],
    [0.25, 0.25, 0.25, 0.25],
    [0.70, 0.10, 0.10, 0.10],
    [0.05, 0.05, 0.45, 0.45],
])


class BigramLM(torch.nn.Module):
    """logits[t] = log P(. | token t): perplexity is computable by hand from BIGRAM."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.calls = []

    def forward(self, input_ids):
        self.calls.append(input_ids.shape[1])
        return SimpleNamespace(logits=BIGRAM.log()[input_ids])


class DigitTokenizer:
    """Each character "0".."3" is one token."""

    def __call__(self, text, return_tensors="pt", add_special_tokens=False):
        ids = [int(c) for c in text if c in "0123"]
        return {"input_ids": torch.tensor([ids])}


TEXT = "0120330121302213300120"


def by_hand(text: str) -> float:
    ids = [int(c) for c in text]
    nll = [-math.log(BIGRAM[a, b].item()) for a, b in zip(ids, ids[1:])]
    return math.exp(sum(nll) / len(nll))


def test_two_token_case_is_one_over_probability():
    # "01": one prediction, P(1 | 0) = 0.6, so perplexity = 1 / 0.6.
    assert metrics.perplexity(BigramLM(), DigitTokenizer(), "01") == pytest.approx(1 / 0.6)


def test_matches_hand_computation():
    assert metrics.perplexity(BigramLM(), DigitTokenizer(), TEXT, max_length=64, stride=32) == pytest.approx(by_hand(TEXT))


@pytest.mark.parametrize("max_length,stride", [(2, 1), (3, 2), (5, 1), (5, 4), (8, 3), (64, 10)])
def test_window_and_stride_do_not_change_a_bigram_perplexity(max_length, stride):
    # A bigram model needs one token of context, so every window/stride must give the same answer:
    # each token after the first is scored exactly once.
    model = BigramLM()
    got = metrics.perplexity(model, DigitTokenizer(), TEXT, max_length=max_length, stride=stride)
    assert got == pytest.approx(by_hand(TEXT))
    assert max(model.calls) <= max_length


def test_uniform_model_has_perplexity_equal_to_vocabulary():
    class Uniform(BigramLM):
        def forward(self, input_ids):
            return SimpleNamespace(logits=torch.zeros(*input_ids.shape, VOCAB))

    assert metrics.perplexity(Uniform(), DigitTokenizer(), TEXT, max_length=4, stride=2) == pytest.approx(VOCAB)


def test_max_tokens_truncates():
    got = metrics.perplexity(BigramLM(), DigitTokenizer(), TEXT, max_length=8, stride=4, max_tokens=10)
    assert got == pytest.approx(by_hand(TEXT[:10]))


@pytest.mark.parametrize("kwargs", [dict(stride=0), dict(max_length=4, stride=4), dict(max_length=4, stride=5),
                                    dict(max_length=1, stride=1)])
def test_bad_windows_are_rejected(kwargs):
    with pytest.raises(ValueError, match="stride"):
        metrics.perplexity(BigramLM(), DigitTokenizer(), TEXT, **kwargs)


def test_too_short_text_is_rejected():
    with pytest.raises(ValueError, match="two tokens"):
        metrics.perplexity(BigramLM(), DigitTokenizer(), "3")


def test_nan_logits_are_refused_not_averaged():
    class Broken(BigramLM):
        def forward(self, input_ids):
            out = super().forward(input_ids)
            out.logits[..., 1] = float("nan")      # one token's logit is NaN everywhere (a diverged model)
            return out

    with pytest.raises(ValueError, match="not finite"):
        metrics.perplexity(Broken(), DigitTokenizer(), TEXT, max_length=8, stride=4)
