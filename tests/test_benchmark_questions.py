"""Task `benchmark_questions`: the 80 MT-Bench questions offline, 10 per category, grouped on request."""

from __future__ import annotations

import pytest

from gptforall_utils import data
from gptforall_utils.data import benchmark_questions as bq


@pytest.fixture(scope="module")
def questions():
    return data.load("benchmark_questions", "offline")["test"]


def test_eighty_questions_ten_per_category(questions):
    assert len(questions) == 80
    assert set(questions.column_names) == {"question_id", "category", "question", "followup"}
    assert {c: list(questions["category"]).count(c) for c in bq.CATEGORIES} == dict.fromkeys(bq.CATEGORIES, 10)
    assert len(set(questions["question_id"])) == 80
    assert all(q.strip() for q in questions["question"]) and all(f.strip() for f in questions["followup"])


def test_by_category_keeps_order_and_limits(questions):
    groups = bq.by_category(questions, per_category=2)
    assert list(groups) == list(bq.CATEGORIES)
    assert all(len(v) == 2 and all(r["category"] == c for r in v) for c, v in groups.items())
    with pytest.raises(ValueError):
        bq.by_category(questions, per_category=0)


def test_normalise_hub_style_rows():
    row = bq.normalise(12345, "math", ["What is 3+4?", "And times 2?"])
    assert row == {"question_id": 12345, "category": "math", "question": "What is 3+4?", "followup": "And times 2?"}
    assert bq.normalise(1, "stem", ["Only one turn"])["followup"] == ""
    with pytest.raises(ValueError, match="first turn"):
        bq.normalise(2, "stem", [])
