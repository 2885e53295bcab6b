"""Task `instructions`: the offline file meets its spec, Dolly's schema loads, and a local file works as DATA."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from gptforall_utils import data, prompts
from gptforall_utils.data import instructions

ROWS = [json.loads(line) for line in instructions.OFFLINE_FILE.read_text(encoding="utf-8").splitlines()
        if line.strip()]
NEEDS_CONTEXT = ("closed_qa", "information_extraction", "summarization")


def test_offline_file_size_and_categories():
    assert len(ROWS) >= 300
    counts = Counter(r["category"] for r in ROWS)
    assert set(counts) == set(instructions.CATEGORIES)
    assert min(counts.values()) >= 20, counts


def test_context_where_the_category_needs_it():
    for r in ROWS:
        if r["category"] in NEEDS_CONTEXT:
            assert r["context"].strip(), r["id"]
        assert r["instruction"].strip() and r["response"].strip(), r["id"]


def test_no_duplicate_instructions():
    seen = [" ".join(r["instruction"].lower().split()) for r in ROWS]
    assert len(set(seen)) == len(seen)


def test_fixed_test_split_covers_every_category():
    dd = data.load("instructions", source="offline", seed=0)
    assert set(dd["test"]["category"]) == set(instructions.CATEGORIES)
    other = data.load("instructions", source="offline", seed=7)
    assert dd["test"]["instruction"] == other["test"]["instruction"]
    assert not set(dd["test"]["instruction"]) & set(dd["train"]["instruction"])


def test_alpaca_prompt_with_and_without_input():
    with_input = prompts.alpaca_prompt("Summarize the passage.", "A long passage.")
    assert "### Input:\nA long passage." in with_input and with_input.endswith("### Response:\n")
    without = prompts.alpaca_prompt("Name three colours.", "  ")
    assert "### Input:" not in without and "### Instruction:\nName three colours." in without


def test_local_file_works_as_data(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [{"instruction": f"Say {i}.", "context": "", "response": str(i), "category": "open_qa"} for i in range(20)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    dd = data.load("instructions", source=str(path), seed=0)
    assert len(dd["test"]) == 2 and len(dd["train"]) == 18
    assert dd["train"][0]["context"] == ""


def test_local_file_without_response_is_refused(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"instruction": "x", "context": "", "output": "y", "category": "open_qa"}) + "\n")
    with pytest.raises(ValueError, match="response"):
        data.load("instructions", source=str(path))
