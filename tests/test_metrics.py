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
    with pytest.raises(ValueError):
        metrics.wilson_interval(5, 0)
