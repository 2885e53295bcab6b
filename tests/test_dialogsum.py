"""Task `dialogsum`: the offline file meets its spec, the schema loads, and a local file works as DATA."""

from __future__ import annotations

import json
import re

import pytest

from gptforall_utils import data
from gptforall_utils.data import dialogsum

ROWS = [json.loads(line) for line in dialogsum.OFFLINE_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


ABBREVIATIONS = re.compile(r"\b(Dr|Mr|Mrs|Ms|St|Mt|No|approx|e\.g|i\.e|etc)\.", re.IGNORECASE)


def _sentences(text: str) -> int:
    """Sentences ending in . ! or ? and followed by a capital or a #PersonN# tag (titles like "Dr." don't end one)."""
    text = ABBREVIATIONS.sub(lambda m: m.group(1), text.strip())
    return len([s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z#])", text) if s])


def test_offline_file_size_and_splits():
    assert len(ROWS) >= 150
    splits = [r["split"] for r in ROWS]
    assert set(splits) == {"train", "test"}
    assert splits.count("test") >= 30
    assert all(set(r) >= {"id", "dialogue", "summary", "topic", "split"} for r in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_every_dialogue_meets_the_spec(row):
    words = len(row["dialogue"].split())
    assert 80 <= words <= 250, f"{words} words"
    who = dialogsum.speakers(row["dialogue"])
    assert 2 <= len(who) <= 4
    assert who == list(range(1, len(who) + 1)), "speakers are numbered in order of first appearance"
    assert all(line.startswith("#Person") for line in row["dialogue"].splitlines() if line.strip())
    assert 1 <= _sentences(row["summary"]) <= 3
    assert row["topic"].strip()


def test_no_duplicates():
    for key in ("id", "dialogue", "summary"):
        values = [r[key].strip().lower() for r in ROWS]
        assert len(set(values)) == len(values), f"duplicate {key}"


def test_turns_parser():
    text = "#Person1#: Hello there.\n#Person2#: Hi!\nStill me.\n#Person1#: Bye."
    assert dialogsum.turns(text) == [("#Person1#", "Hello there."), ("#Person2#", "Hi! Still me."),
                                     ("#Person1#", "Bye.")]
    assert dialogsum.speakers(text) == [1, 2]


def test_offline_load_is_in_the_schema_with_the_fixed_split():
    dd = data.load("dialogsum", source="offline", seed=3)
    assert set(dd["train"].column_names) == {"dialogue", "summary"}
    assert len(dd["test"]) == sum(r["split"] == "test" for r in ROWS)
    assert dd["test"]["dialogue"] == data.load("dialogsum", source="offline", seed=0)["test"]["dialogue"]


def test_local_file_works_as_data(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [{"dialogue": f"#Person1#: Question {i}?\n#Person2#: Answer {i}.", "summary": f"They talk about {i}."}
            for i in range(10)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    dd = data.load("dialogsum", source=str(path), seed=0)
    assert len(dd["train"]) == 8 and len(dd["test"]) == 2
    assert dd["test"][0]["summary"].startswith("They talk about")


def test_local_file_missing_column_is_refused(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"dialogue": "#Person1#: Hi.", "abstract": "x"}) + "\n")
    with pytest.raises(ValueError, match="summary"):
        data.load("dialogsum", source=str(path))
    with pytest.raises(FileNotFoundError):
        data.load("dialogsum", source=str(tmp_path / "nope.jsonl"))
