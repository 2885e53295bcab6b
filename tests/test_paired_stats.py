"""Paired comparisons: exact McNemar, the bootstrap over documents, agreement, per-token perplexity."""

from __future__ import annotations

import math
import random

import pytest
import torch

from gptforall_utils import metrics


def test_mcnemar_exact_known_values():
    # 10 questions only A gets right, 2 only B gets right: p = 2 * P(X <= 2), X ~ Bin(12, 1/2).
    a = [True] * 10 + [False] * 2 + [True] * 30 + [False] * 8
    b = [False] * 10 + [True] * 2 + [True] * 30 + [False] * 8
    r = metrics.mcnemar_exact(a, b)
    assert (r["only_a"], r["only_b"], r["both"], r["neither"]) == (10, 2, 30, 8)
    assert r["p"] == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert metrics.mcnemar_exact(b, a)["p"] == pytest.approx(r["p"])  # two-sided: symmetric
    assert metrics.mcnemar_exact(a, a)["p"] == 1.0  # no discordant question: no evidence
    assert metrics.mcnemar_exact([True, False], [False, True])["p"] == 1.0
    with pytest.raises(ValueError):
        metrics.mcnemar_exact([True], [True, False])


def test_mcnemar_only_discordant_questions_matter():
    # Adding questions both models get right (or wrong) changes nothing.
    a, b = [True] * 7 + [False] * 1, [False] * 7 + [True] * 1
    p = metrics.mcnemar_exact(a, b)["p"]
    assert metrics.mcnemar_exact(a + [True] * 500 + [False] * 300, b + [True] * 500 + [False] * 300)["p"] == p
    assert p < 0.08


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_items():
    rng = random.Random(1)
    small = [rng.gauss(0, 1) for _ in range(20)]
    large = [rng.gauss(0, 1) for _ in range(500)]

    def mean_of(values):
        return lambda idx: sum(values[i] for i in idx) / len(idx)

    est, lo, hi = metrics.bootstrap_interval(mean_of(small), len(small), seed=0)
    assert lo <= est <= hi
    _, lo2, hi2 = metrics.bootstrap_interval(mean_of(large), len(large), seed=0)
    assert (hi2 - lo2) < (hi - lo) / 3  # width ~ 1/sqrt(n): 5x narrower for 25x the items
    assert hi2 - lo2 == pytest.approx(2 * 1.96 / math.sqrt(500), rel=0.25)
    assert metrics.bootstrap_interval(mean_of(small), 20, seed=3) == metrics.bootstrap_interval(mean_of(small), 20, seed=3)
    with pytest.raises(ValueError):
        metrics.bootstrap_interval(mean_of(small), 1)


def test_perplexity_change_is_paired_over_documents():
    rng = random.Random(0)
    tokens = [rng.randint(50, 300) for _ in range(40)]
    # Documents differ a lot in difficulty; the after-model is uniformly 5% "more surprised" per token.
    per_token = [rng.uniform(2.0, 4.0) for _ in tokens]
    before = [t * p for t, p in zip(tokens, per_token)]
    after = [b + t * math.log(1.05) for b, t in zip(before, tokens)]
    r = metrics.perplexity_change(before, after, tokens, seed=0)
    assert r["change"] == pytest.approx(0.05)
    # Pairing cancels the documents' own difficulty: the interval is (almost) a point.
    assert r["low"] == pytest.approx(0.05, abs=1e-9) and r["high"] == pytest.approx(0.05, abs=1e-9)
    assert r["documents"] == 40 and r["tokens"] == sum(tokens)
    assert r["perplexity_after"] / r["perplexity_before"] == pytest.approx(1.05)
    # Noise per document widens it, and the estimate stays inside.
    noisy = [a + rng.gauss(0, 8) for a in after]
    r2 = metrics.perplexity_change(before, noisy, tokens, seed=0)
    assert r2["low"] < r2["change"] < r2["high"] and r2["high"] - r2["low"] > 0.005
    # No change at all gives exactly zero.
    r3 = metrics.perplexity_change(before, before, tokens)
    assert (r3["change"], r3["low"], r3["high"]) == (0.0, 0.0, 0.0)
    # Documents with no scored token are ignored, not divided by zero.
    assert metrics.perplexity_change(before + [0.0], after + [0.0], tokens + [0])["documents"] == 40


def test_cohen_kappa_and_agreement():
    a = ["A", "A", "B", "B", "A", "B", "tie", "A"]
    assert metrics.cohen_kappa(a, a) == 1.0
    flipped = [{"A": "B", "B": "A"}.get(x, x) for x in a]
    assert metrics.cohen_kappa(a, flipped) < 0
    # Textbook example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> po 0.7, pe 0.5, kappa 0.4.
    r1 = ["y"] * 25 + ["n"] * 25
    r2 = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert metrics.cohen_kappa(r1, r2) == pytest.approx(0.4)
    assert metrics.agreement(r1, r2) == {"n": 50, "agreement": pytest.approx(0.7), "kappa": pytest.approx(0.4)}


def test_token_nlls_reproduce_perplexity_and_split_by_document(tiny_model):
    model, tok = tiny_model
    texts = ["The cat sat on the mat and looked at the rain outside.",
             "Stock markets fell sharply on Monday after the bank raised interest rates.",
             "A small boat crossed the bay at dawn."]
    nll = metrics.token_nlls(model, tok, texts, max_length=16, stride=12)
    assert math.exp(nll.mean().item()) == pytest.approx(
        metrics.perplexity(model, tok, texts, max_length=16, stride=12), rel=1e-5)
    ids, docs = metrics.joined_tokens(tok, texts)
    assert nll.numel() == ids.numel() - 1  # every token but the first is predicted once
    sums, counts = metrics.document_sums(nll, docs[1:], n_documents=3)
    assert sum(counts) == nll.numel() and all(c > 5 for c in counts)
    assert sum(sums) == pytest.approx(nll.sum().item(), rel=1e-6)
    for d, text in enumerate(texts):  # each document's tokens decode back to its text
        assert tok.decode(ids[docs == d]).strip() == text
    # Cutting at max_tokens keeps the first tokens, and joined_tokens cuts the same way.
    cut = metrics.token_nlls(model, tok, texts, max_length=16, stride=12, max_tokens=20)
    assert cut.numel() == 19 and torch.allclose(cut, nll[:19], atol=1e-4)
    assert metrics.joined_tokens(tok, texts, max_tokens=20)[1].tolist() == docs[:20].tolist()
