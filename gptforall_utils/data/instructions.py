"""Task `instructions`: instruction/response pairs in Dolly's schema, for instruction tuning.

Schema: {"instruction", "context", "response", "category"} (context "" when there is none).
Hub: databricks/databricks-dolly-15k (already in this schema) by default; Alpaca
(tatsu-lab/alpaca) maps instruction -> instruction, input -> context, output -> response,
category "alpaca". Offline: data/instructions_offline.jsonl, 361 pairs written for this course
across Dolly's seven categories, with a fixed test split (see data/instructions_offline.md).
"""

from __future__ import annotations

from . import DATA_DIR, Task, register, repo_relative, split, written_offline

OFFLINE_FILE = DATA_DIR / "instructions_offline.jsonl"
CATEGORIES = ("open_qa", "closed_qa", "classification", "brainstorming", "generation",
              "information_extraction", "summarization")
COLUMNS = {"instruction": str, "response": str, "context": str, "category": str}


offline = written_offline(OFFLINE_FILE, 0.1)


def hub(name: str = "dolly", seed: int = 0):
    """Dolly-15k (default) or Alpaca from the Hub, mapped to the schema, with a 5% test split."""
    from datasets import load_dataset

    if name == "alpaca":
        ds = load_dataset("tatsu-lab/alpaca", split="train")
        ds = ds.map(lambda r: {"instruction": r["instruction"], "context": r["input"], "response": r["output"],
                               "category": "alpaca"}, remove_columns=ds.column_names)
    elif name == "dolly":
        ds = load_dataset("databricks/databricks-dolly-15k", split="train")
    else:
        raise ValueError("hub dataset must be 'dolly' or 'alpaca'")
    return split(ds, 0.05, seed)


TASK = register(Task(
    name="instructions",
    columns=COLUMNS,
    hub=hub,
    offline=offline,
    test_size=0.1,
    description="Instruction/response pairs (Dolly schema)",
    may_be_empty=("context",),
    hub_source="databricks/databricks-dolly-15k (or tatsu-lab/alpaca, mapped)",
    offline_source=repo_relative(OFFLINE_FILE),
))
