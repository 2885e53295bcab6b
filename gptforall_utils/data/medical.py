"""Task `medical`: medical abstracts in five disease classes (the GPTforAll case study).

Classes, in the Hub's order (condition_label 1..5): neoplasms, digestive system diseases,
nervous system diseases, cardiovascular diseases, general pathological conditions.
Hub: TimSchopf/medical_abstracts (about 14,400 PubMed abstracts; columns condition_label 1..5
and medical_abstract; train/test splits). Offline: data/medical_abstracts_offline.jsonl, 225
abstracts written for this course (45 per class) with a fixed test split of 55 (11 per class);
see data/medical_abstracts_offline.md. Schema: {"text": str, "label": int (index into LABELS)}.
"""

from __future__ import annotations

from . import DATA_DIR, Task, register, repo_relative, written_offline

LABELS = ("neoplasms", "digestive system diseases", "nervous system diseases", "cardiovascular diseases",
          "general pathological conditions")
OFFLINE_FILE = DATA_DIR / "medical_abstracts_offline.jsonl"
HUB_ID = "TimSchopf/medical_abstracts"


offline = written_offline(OFFLINE_FILE, 0.2)


def from_hub_row(row: dict) -> dict:
    """Map a Hub row (condition_label 1..5, medical_abstract) to the schema (label 0..4, text)."""
    label = int(row["condition_label"])
    if not 1 <= label <= len(LABELS):
        raise ValueError(f"condition_label {label} is outside 1..{len(LABELS)}")
    return {"text": row["medical_abstract"], "label": label - 1}


def hub():
    from datasets import DatasetDict, load_dataset

    dd = load_dataset(HUB_ID)
    out = {}
    for name in ("train", "test"):
        out[name] = dd[name].map(from_hub_row, remove_columns=dd[name].column_names)
    return DatasetDict(out)


TASK = register(Task(
    name="medical",
    columns={"text": str, "label": int},
    labels=LABELS,
    hub=hub,
    offline=offline,
    test_size=0.2,
    description="Medical abstracts, five disease classes",
    hub_source=HUB_ID,
    offline_source=repo_relative(OFFLINE_FILE),
))
