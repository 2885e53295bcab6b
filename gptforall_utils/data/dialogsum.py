"""Task `dialogsum`: everyday dialogues with a short third-person reference summary.

Schema: {"dialogue", "summary"} (turns written as "#Person1#: ...", one per line; the summary
names speakers the same way). Hub: knkarthick/dialogsum (Chen et al. 2021, CC BY-NC-SA 4.0;
columns id, dialogue, summary, topic; train/validation/test). Offline:
data/dialogsum_offline.jsonl, 168 dialogues written for this course, with a fixed test split of
40 (see data/dialogsum_offline.md). A local .jsonl/.csv file needs the columns dialogue and
summary (the Hub's id and topic may be there too); a `split` column ("train"/"validation"/"test")
fixes the split, otherwise 20% of the dialogues are held out (a dialogue's rows stay together).

Evaluation splits hold one row per dialogue: the Hub's test split repeats each dialogue three times,
once per reference summary (test_0_1, test_0_2, test_0_3, ...), so "test" and "validation" are
grouped by dialogue text into rows with `summary` (the first reference) and `references` (all of
them, in order), from every source. Score with `metrics.rouge(predictions, split["references"])`.
"""

from __future__ import annotations

import re

from . import DATA_DIR, Task, hub_dataset, register, repo_relative, written_offline

OFFLINE_FILE = DATA_DIR / "dialogsum_offline.jsonl"
HUB_ID = "knkarthick/dialogsum"
COLUMNS = {"dialogue": str, "summary": str}
EVAL_SPLITS = ("validation", "test")  # grouped: one row per dialogue, with all its references
TURN = re.compile(r"^#Person(\d+)#:\s*\S", re.MULTILINE)


def speakers(dialogue: str) -> list[int]:
    """Speaker numbers in order of first appearance, read from the `#PersonN#:` turn markers."""
    seen: list[int] = []
    for m in TURN.finditer(dialogue):
        n = int(m.group(1))
        if n not in seen:
            seen.append(n)
    return seen


def turns(dialogue: str) -> list[tuple[str, str]]:
    """The dialogue as (speaker, text) pairs, e.g. ("#Person1#", "Hello.")."""
    out = []
    for line in dialogue.splitlines():
        m = re.match(r"^(#Person\d+#):\s*(.*)$", line.strip())
        if m:
            out.append((m.group(1), m.group(2)))
        elif out and line.strip():  # a turn that runs over several lines
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
    return out


offline = written_offline(OFFLINE_FILE, 0.2)


def hub():
    return hub_dataset(HUB_ID)  # train 12,460 / validation 500 / test 1,500 (500 dialogues x 3 references)


def group_references(dataset):
    """One row per distinct dialogue (in order of first appearance) with `references`: all its summaries.

    Rows belong together when their dialogue text is the same (up to surrounding whitespace), which is
    how the Hub's test split and a local file in its layout repeat a dialogue for each reference.
    """
    from datasets import Dataset, Features, List, Value

    order: list[str] = []
    dialogue: dict[str, str] = {}
    refs: dict[str, list[str]] = {}
    for d, s in zip(dataset["dialogue"], dataset["summary"]):
        key = d.strip()
        if key not in refs:
            order.append(key)
            dialogue[key], refs[key] = d, []
        refs[key].append(s)
    features = Features({"dialogue": Value("string"), "summary": Value("string"),
                         "references": List(Value("string"))})
    return Dataset.from_dict({"dialogue": [dialogue[k] for k in order], "summary": [refs[k][0] for k in order],
                              "references": [refs[k] for k in order]}, features=features)


def finish(dd):
    """Group the evaluation splits by dialogue (see group_references); training splits keep every pair."""
    for name in EVAL_SPLITS:
        if name in dd:
            dd[name] = group_references(dd[name])
    return dd


TASK = register(Task(
    name="dialogsum",
    columns=COLUMNS,
    hub=hub,
    offline=offline,
    test_size=0.2,
    description="Dialogues (#Person1#: ... turns) with a 1-3 sentence reference summary",
    hub_source=HUB_ID,
    offline_source=repo_relative(OFFLINE_FILE),
    hub_datasets=((HUB_ID, None),),
    finish=finish,
    group_by="dialogue",  # a file in the Hub's test layout keeps a dialogue's references on one side
))
