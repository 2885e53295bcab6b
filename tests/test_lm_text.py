"""The lm_text task: real running English text offline (the Lee news corpus from gensim's wheel)."""

from __future__ import annotations

from gptforall_utils import data
from gptforall_utils.data import lm_text


def test_offline_source_is_the_lee_corpus_split_the_same_way_every_time():
    a = data.load("lm_text", source="offline", seed=0)
    b = data.load("lm_text", source="offline", seed=123)
    assert set(a) >= {"train", "test"}
    assert len(a["test"]) == lm_text.OFFLINE_TEST_DOCS
    assert len(a["train"]) + len(a["test"]) == len(lm_text.read_lee()) == 300
    assert a["test"]["text"] == b["test"]["text"]  # fixed split: perplexities stay comparable


def test_offline_text_is_real_running_prose():
    test = data.load("lm_text", source="offline")["test"]["text"]
    words = " ".join(test).split()
    assert len(words) > 15_000
    common = sum(w.lower() in {"the", "of", "and", "to", "a", "in"} for w in words) / len(words)
    assert common > 0.15  # English function words, not markup or code
    assert all(doc.strip() and "<" not in doc for doc in test)
    assert not set(test) & set(data.load("lm_text", source="offline")["train"]["text"])


def test_task_names_its_sources():
    task = data.get_task("lm_text")
    assert "wikitext" in task.hub_source and "lee_background" in task.offline_source
    assert task.columns == {"text": str}
