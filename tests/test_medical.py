"""Task `medical`: the offline abstracts load in the schema with a fixed, balanced test split; Hub rows map."""

from __future__ import annotations

import json

import pytest

from gptforall_utils import data
from gptforall_utils.data import medical


@pytest.fixture(scope="module")
def offline():
    return data.load("medical", "offline", seed=0)


def test_offline_schema_and_split(offline):
    assert set(offline) == {"train", "test"}
    assert offline["train"].column_names == ["text", "label"]
    assert list(offline["test"].features["label"].names) == list(medical.LABELS)
    assert len(offline["test"]) >= 50 and len(offline["train"]) + len(offline["test"]) >= 200
    for split in ("train", "test"):
        counts = [list(offline[split]["label"]).count(c) for c in range(5)]
        assert min(counts) == max(counts), counts  # balanced classes


def test_offline_test_split_is_fixed_and_disjoint(offline):
    other = data.load("medical", "offline", seed=7)
    assert list(other["test"]["text"]) == list(offline["test"]["text"])
    assert not set(offline["test"]["text"]) & set(offline["train"]["text"])


def test_offline_abstracts_are_abstract_sized(offline):
    words = [len(t.split()) for t in list(offline["train"]["text"]) + list(offline["test"]["text"])]
    assert 100 <= min(words) and max(words) <= 270


def test_hub_rows_map_to_the_schema():
    from datasets import Dataset

    rows = Dataset.from_list([{"condition_label": 4, "medical_abstract": "Atrial fibrillation ..."},
                              {"condition_label": 1, "medical_abstract": "A tumour ..."}])
    mapped = medical.from_native(rows, "hub rows")
    assert mapped.to_list() == [{"text": "Atrial fibrillation ...", "label": 3}, {"text": "A tumour ...", "label": 0}]
    assert medical.LABELS[mapped["label"][1]] == "neoplasms"
    with pytest.raises(ValueError, match="1-based"):
        medical.from_native(Dataset.from_list([{"condition_label": 0, "medical_abstract": "x"}]), "hub rows")


def test_local_file_with_label_names(tmp_path):
    rows = [{"text": f"Abstract number {i} about a tumour.", "label": medical.LABELS[i % 5]} for i in range(10)]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    dd = data.load("medical", str(path))
    assert sorted(list(dd["train"]["label"]) + list(dd["test"]["label"])) == sorted(i % 5 for i in range(10))


def test_local_file_with_unknown_label_is_refused(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "An abstract.", "label": "oncology"}) + "\n"
                    + json.dumps({"text": "Another.", "label": "neoplasms"}))
    with pytest.raises(ValueError, match="oncology"):
        data.load("medical", str(path))
