"""ROUGE: the rouge_score path on hand-checkable cases, and the automatic offline fallback."""

from __future__ import annotations

import pytest

from gptforall_utils import metrics


def test_identical_strings_score_one():
    s = metrics.rouge(["the cat sat on the mat"], ["the cat sat on the mat"], backend="rouge_score")
    for k in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert s[k] == pytest.approx(1.0)
    assert s["backend"] == "rouge_score"


def test_disjoint_strings_score_zero():
    s = metrics.rouge(["apples and pears"], ["trains leave at noon"], backend="rouge_score")
    assert s["rouge1"] == s["rouge2"] == s["rougeL"] == 0.0


def test_small_case_by_hand():
    # prediction: "the cat was found under the bed" (7 tokens), reference: "the cat was under the bed" (6).
    # Unigram overlap: the x2, cat, was, under, bed = 6 -> P = 6/7, R = 6/6, F = 2PR/(P+R) = 12/13.
    # Bigrams: pred 6, ref 5; shared: "the cat", "cat was", "under the", "the bed" = 4 -> F = 2*4/(6+5) = 8/11.
    # LCS: "the cat was under the bed" = 6 -> same as ROUGE-1 here: 12/13.
    s = metrics.rouge(["the cat was found under the bed"], ["the cat was under the bed"], backend="rouge_score")
    assert s["rouge1"] == pytest.approx(12 / 13)
    assert s["rouge2"] == pytest.approx(8 / 11)
    assert s["rougeL"] == pytest.approx(12 / 13)


def test_lcs_rewards_word_order():
    # Same bag of words, reversed order: ROUGE-1 stays 1, ROUGE-L falls to LCS 1 of 3 -> 1/3.
    s = metrics.rouge(["c b a"], ["a b c"], backend="rouge_score")
    assert s["rouge1"] == pytest.approx(1.0)
    assert s["rougeL"] == pytest.approx(1 / 3)


def test_stemming_and_punctuation_as_evaluate_does():
    # use_stemmer=True: "summaries"/"summary" and "walked"/"walking" share stems; "#Person1#" -> "person1".
    with_stem = metrics.rouge(["#Person1# walked home"], ["#Person1# walking home."], backend="rouge_score")
    no_stem = metrics.rouge(["#Person1# walked home"], ["#Person1# walking home."], backend="rouge_score",
                            use_stemmer=False)
    assert with_stem["rouge1"] == pytest.approx(1.0)
    assert no_stem["rouge1"] == pytest.approx(2 / 3)


def test_per_pair_scores_are_averaged():
    # evaluate with use_aggregator=False gives one score per pair; we report their mean.
    s = metrics.rouge(["a b", "x y"], ["a b", "p q"], backend="rouge_score")
    assert s["rouge1"] == pytest.approx(0.5)


def test_offline_falls_back_to_rouge_score_and_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    s = metrics.rouge(["the cat sat"], ["the cat sat"])  # backend="auto"
    assert s["backend"] == "rouge_score"
    assert s["rouge1"] == pytest.approx(1.0)
    with pytest.raises(RuntimeError, match="could not load"):
        metrics.rouge(["the cat sat"], ["the cat sat"], backend="evaluate")


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        metrics.rouge(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        metrics.rouge([], [])
    with pytest.raises(ValueError, match="backend"):
        metrics.rouge(["a"], ["a"], backend="sacrebleu")


def test_per_item_scores_are_what_rouge_averages():
    preds = ["the cat sat on the mat", "apples and pears", "the cat was found under the bed"]
    refs = [["a cat sat on a mat", "the cat sat on the mat"], "trains leave at noon", "the cat was under the bed"]
    per = metrics.rouge_per_item(preds, refs)
    assert per["rouge1"] == pytest.approx([1.0, 0.0, 12 / 13])  # the best of several references counts
    mean = metrics.rouge(preds, refs, backend="rouge_score")
    for k in metrics.ROUGE_TYPES:
        assert sum(per[k]) / len(per[k]) == pytest.approx(mean[k])
    with pytest.raises(ValueError, match="references"):
        metrics.rouge_per_item(["a"], [[]])
