"""Task `dialogsum`: everyday dialogues with a short third-person reference summary.

Schema: {"dialogue", "summary"} (turns written as "#Person1#: ...", one per line; the summary
names speakers the same way). Hub: knkarthick/dialogsum (Chen et al. 2021, CC BY-NC-SA 4.0;
columns id, dialogue, summary, topic; train/validation/test). Offline:
data/dialogsum_offline.jsonl, 168 dialogues written for this course, with a fixed test split of
40 (see data/dialogsum_offline.md). A local .jsonl/.csv file needs the columns dialogue and
summary; a `split` column ("train"/"test") fixes the split, otherwise 20% is held out.
"""

from __future__ import annotations

import re

from . import DATA_DIR, Task, register, repo_relative, written_offline

OFFLINE_FILE = DATA_DIR / "dialogsum_offline.jsonl"
HUB_ID = "knkarthick/dialogsum"
COLUMNS = {"dialogue": str, "summary": str}
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
    from datasets import load_dataset

    return load_dataset(HUB_ID)  # train 12,460 / validation 500 / test 1,500; already in the schema


TASK = register(Task(
    name="dialogsum",
    columns=COLUMNS,
    hub=hub,
    offline=offline,
    test_size=0.2,
    description="Dialogues (#Person1#: ... turns) with a 1-3 sentence reference summary",
    hub_source=HUB_ID,
    offline_source=repo_relative(OFFLINE_FILE),
))
