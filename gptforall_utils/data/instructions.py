"""Task `instructions`: instruction/response pairs in Dolly's schema, for instruction tuning.

Schema: {"instruction", "context", "response", "category"} (context "" when there is none).
Hub: databricks/databricks-dolly-15k (already in this schema; eight categories, DOLLY_CATEGORIES).
Alpaca (tatsu-lab/alpaca, `hub("alpaca")`) maps instruction -> instruction, input -> context,
output -> response, category "alpaca". Offline: data/instructions_offline.jsonl, 361 pairs written
for this course in seven of Dolly's categories (all but general_qa), with a fixed test split (see
data/instructions_offline.md). A local file may be in Dolly's schema or Alpaca's (instruction,
input, output[, text]); Alpaca has rows with an empty output: add ?drop_empty to drop them.
"""

from __future__ import annotations

from . import DATA_DIR, Task, hub_dataset, register, repo_relative, split, written_offline

OFFLINE_FILE = DATA_DIR / "instructions_offline.jsonl"
DOLLY_ID = "databricks/databricks-dolly-15k"
ALPACA_ID = "tatsu-lab/alpaca"
# Dolly-15k's categories, exactly as the Hub spells them.
DOLLY_CATEGORIES = ("open_qa", "general_qa", "classification", "closed_qa", "brainstorming",
                    "information_extraction", "summarization", "creative_writing")
# The offline file's categories: Dolly's, without general_qa.
CATEGORIES = ("open_qa", "closed_qa", "classification", "brainstorming", "creative_writing",
              "information_extraction", "summarization")
ALPACA_CATEGORY = "alpaca"  # Alpaca has no categories: every mapped row gets this one
COLUMNS = {"instruction": str, "response": str, "context": str, "category": str}


offline = written_offline(OFFLINE_FILE, 0.1)


def from_native(dataset, origin: str = "data"):
    """Alpaca's schema (instruction, input, output[, text]) mapped to Dolly's; Dolly's passes unchanged."""
    cols = dataset.column_names
    if not ({"instruction", "input", "output"} <= set(cols)) or "response" in cols:
        return dataset
    from datasets import Dataset

    n = len(dataset)
    out = {
        "instruction": dataset["instruction"],
        "context": [v if v is not None else "" for v in dataset["input"]],
        "response": dataset["output"],
        "category": dataset["category"] if "category" in cols else [ALPACA_CATEGORY] * n,
    }
    if "split" in cols:
        out["split"] = dataset["split"]
    return Dataset.from_dict(out)


def hub(name: str = "dolly", seed: int = 0):
    """Dolly-15k (default) or Alpaca from the Hub, mapped to the schema, with a 5% test split."""
    if name == "alpaca":
        ds = from_native(hub_dataset(ALPACA_ID, split="train"), ALPACA_ID)
    elif name == "dolly":
        ds = hub_dataset(DOLLY_ID, split="train")
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
    hub_source=f"{DOLLY_ID} (or {ALPACA_ID}, mapped)",
    offline_source=repo_relative(OFFLINE_FILE),
    hub_datasets=((DOLLY_ID, None), (ALPACA_ID, None)),
    from_native=from_native,
    key_columns=("instruction", "context"),
))
