"""Task `medical`: medical abstracts in five disease classes (the GPTforAll case study).

Classes, in the Hub's order (condition_label 1..5): neoplasms, digestive system diseases,
nervous system diseases, cardiovascular diseases, general pathological conditions.
Hub: TimSchopf/medical_abstracts (about 14,400 PubMed abstracts, CC BY-SA 3.0; columns
condition_label, an int64 1..5, and medical_abstract; train/test splits). Offline:
data/medical_abstracts_offline.jsonl, 225 abstracts written for this course (45 per class) with a
fixed test split of 55 (11 per class); see data/medical_abstracts_offline.md.
Schema: {"text": str, "label": int (0-based index into LABELS)}.

Local files: the course schema (`text`, `label` 0..4 or a class name) or the Hub's (`medical_abstract`,
`condition_label` 1..5). The column name decides the coding, never the values: `condition_label` is
1-based as on the Hub, `label` is 0-based; a code outside its column's range is refused, never shifted.
"""

from __future__ import annotations

from . import DATA_DIR, Task, hub_dataset, int_code, register, repo_relative, written_offline

LABELS = ("neoplasms", "digestive system diseases", "nervous system diseases", "cardiovascular diseases",
          "general pathological conditions")
OFFLINE_FILE = DATA_DIR / "medical_abstracts_offline.jsonl"
HUB_ID = "TimSchopf/medical_abstracts"
HUB_CODING = ", ".join(f"{i} {name}" for i, name in enumerate(LABELS, 1))


offline = written_offline(OFFLINE_FILE, 0.2)


def from_native(dataset, origin: str = "data"):
    """The Hub's schema (medical_abstract, condition_label 1..5) mapped to the course's (text, label 0..4).

    A file in the course schema passes unchanged. A file with both `condition_label` and `label` is
    refused: the two columns use different codings.
    """
    cols = dataset.column_names
    if "condition_label" not in cols:
        if "medical_abstract" in cols and "text" not in cols:
            dataset = dataset.rename_column("medical_abstract", "text")
        return dataset
    if "label" in cols:
        raise ValueError(f"{origin} has both `condition_label` (the Hub's 1-based codes 1..{len(LABELS)}) and "
                         f"`label` (the course's 0-based index 0..{len(LABELS) - 1}); keep the one your codes follow.")
    text = "text" if "text" in cols else "medical_abstract"
    if text not in cols:
        raise ValueError(f"{origin} has `condition_label` but no `medical_abstract` (or `text`) column.")
    labels = []
    for i, value in enumerate(dataset["condition_label"]):
        code = int_code(value)
        if code is None or not 1 <= code <= len(LABELS):
            raise ValueError(
                f"{origin}: row {i} has condition_label {value!r}. `condition_label` follows the Hub's 1-based "
                f"coding: {HUB_CODING}. A file with 0-based codes (0..{len(LABELS) - 1}) must name the column "
                f"`label`; nothing is shifted silently."
            )
        labels.append(code - 1)
    keep = [c for c in ("split",) if c in cols]
    from datasets import Dataset

    out = {"text": dataset[text], "label": labels, **{c: dataset[c] for c in keep}}
    return Dataset.from_dict(out)


def hub():
    from datasets import DatasetDict

    dd = hub_dataset(HUB_ID)  # train 11,550 / test 2,888; condition_label int64 1..5
    return DatasetDict({name: from_native(dd[name], f"{HUB_ID} ({name})") for name in ("train", "test")})


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
    hub_datasets=((HUB_ID, None),),
    from_native=from_native,
    label_hint=(f"A file with the Hub's 1-based codes 1..{len(LABELS)} ({HUB_CODING}) must name that column "
                "`condition_label`."),
))
