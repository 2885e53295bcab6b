"""metrics: classification figures and confidence intervals on hand-checkable cases."""

from __future__ import annotations

import pytest

from gptforall_utils import metrics


def test_accuracy_confusion_and_f1_by_hand():
    labels = [0, 0, 0, 1, 1, 2]
    preds = [0, 0, 1, 1, 2, 2]
    assert metrics.accuracy(preds, labels) == pytest.approx(4 / 6)
    assert metrics.confusion_matrix(preds, labels) == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # class 0: tp2 fp0 fn1 -> 0.8; class 1: tp1 fp1 fn1 -> 0.5; class 2: tp1 fp1 fn0 -> 2/3
    assert metrics.per_class_f1(preds, labels) == pytest.approx([0.8, 0.5, 2 / 3])
    assert metrics.macro_f1(preds, labels) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_macro_f1_punishes_ignoring_a_class():
    labels = [0] * 9 + [1]
    always_zero = [0] * 10
    assert metrics.accuracy(always_zero, labels) == 0.9
    assert metrics.macro_f1(always_zero, labels) == pytest.approx((18 / 19 + 0) / 2)


def test_classes_that_never_occur_keep_their_row_and_score():
    # 4 classes, class 3 never true and never predicted, class 2 predicted but never true
    labels = [0, 1, 1, 0]
    preds = [0, 1, 2, 0]
    assert metrics.confusion_matrix(preds, labels, n_classes=4) == [
        [2, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    # class 0: 1.0; class 1: tp1 fn1 -> 2/3; class 2: tp0 fp1 -> 0; class 3: nothing at all -> 0
    assert metrics.per_class_f1(preds, labels, n_classes=4) == pytest.approx([1.0, 2 / 3, 0.0, 0.0])
    assert metrics.macro_f1(preds, labels, n_classes=4) == pytest.approx((1 + 2 / 3) / 4)
    # without n_classes the classes run up to the largest id seen (here 2)
    assert len(metrics.confusion_matrix(preds, labels)) == 3
    assert metrics.macro_f1(preds, labels) == pytest.approx((1 + 2 / 3) / 3)


def test_results_are_plain_python_numbers():
    matrix = metrics.confusion_matrix([0, 1], [1, 1])
    assert matrix == [[0, 0], [1, 1]] and all(type(c) is int for row in matrix for c in row)
    assert type(metrics.accuracy([0, 1], [1, 1])) is float
    assert all(type(f) is float for f in metrics.per_class_f1([0, 1], [1, 1]))


def test_wilson_interval_known_values():
    lo, hi = metrics.wilson_interval(93, 100)
    assert (round(lo, 4), round(hi, 4)) == (0.8625, 0.9657)
    lo, hi = metrics.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    acc, half = metrics.accuracy_ci([1] * 93 + [0] * 7, [1] * 100)
    assert acc == 0.93 and half == pytest.approx((0.9657 - 0.8625) / 2, abs=1e-4)


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="no predictions"):
        metrics.accuracy([], [])
    with pytest.raises(ValueError, match="differ in length"):
        metrics.confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="differ in length"):
        metrics.macro_f1([0], [0, 1])
    with pytest.raises(ValueError, match="out of range for n_classes=2"):
        metrics.confusion_matrix([0, 2], [0, 1], n_classes=2)
    with pytest.raises(ValueError, match="out of range"):
        metrics.per_class_f1([0, 1], [0, 3], n_classes=3)
    with pytest.raises(ValueError, match="class ids"):
        metrics.accuracy([0, -1], [0, 1])
    with pytest.raises(ValueError, match="class ids"):
        metrics.macro_f1(["pos", "neg"], [0, 1])
    with pytest.raises(ValueError, match="class ids"):
        metrics.accuracy([0.5, 1], [0, 1])
    with pytest.raises(ValueError):
        metrics.wilson_interval(5, 0)
