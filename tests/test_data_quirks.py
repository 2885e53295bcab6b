"""Real data's quirks, each checked on Hub rows from each source (`hub_source`: the course-written fixtures of
tests/hub_fixtures/, and the real rows of ../shared/hub_samples where they exist): local files in a task's
Hub-native schema, ambiguous label codes, JSON Lines with U+0085/U+2028/U+2029, empty fields, Dolly's and
Alpaca's categories, DialogSum's three references, benchmark files, and which task DATA feeds."""

from __future__ import annotations

import json

import pytest
from conftest import hub_rows_folder  # noqa: I001

from gptforall_utils import data, metrics
from gptforall_utils.data import instructions, medical
from gptforall_utils.recipes import sft


def rows(source: str, folder: str, split: str) -> list[dict]:
    return data.read_jsonl(hub_rows_folder(source) / folder / f"{split}.jsonl")


def write_jsonl(path, records, ensure_ascii=True):
    path.write_text("".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in records), encoding="utf-8")
    return str(path)


def with_split(source: str, folder: str, splits=("train", "test")) -> list[dict]:
    """A Hub dataset's splits as one local file in its own schema, with a `split` column."""
    return [{**r, "split": s} for s in splits for r in rows(source, folder, s)]


# ---------------------------------------------------------------- JSON Lines
def test_jsonl_splits_on_newlines_only(tmp_path, hub_source):
    # Real Rotten Tomatoes rows (latin-1 decoded: C1 characters such as U+0097) written WITHOUT escaping,
    # plus the separators str.splitlines() would cut at.
    records = rows(hub_source, "cornell-movie-review-data__rotten_tomatoes", "train")
    records[0] = {**records[0], "text": records[0]["text"] + " \u0085 \u2028 \u2029 end"}
    assert any("\x97" in r["text"] for r in records)
    path = write_jsonl(tmp_path / "rt.jsonl", records, ensure_ascii=False)
    assert len(open(path, encoding="utf-8").read().splitlines()) > len(records)  # what used to break
    dd = data.load("sentiment", path, seed=0)
    texts = set(dd["train"]["text"]) | set(dd["test"]["text"])
    assert texts == {r["text"] for r in records}
    (tmp_path / "crlf.jsonl").write_bytes(b'{"text": "good", "label": 1}\r\n{"text": "bad", "label": 0}\r\n')
    assert data.read_jsonl(tmp_path / "crlf.jsonl") == [{"text": "good", "label": 1}, {"text": "bad", "label": 0}]


def test_rotten_tomatoes_file_in_its_hub_schema_works_as_is(tmp_path, hub_source):
    records = with_split(hub_source, "cornell-movie-review-data__rotten_tomatoes", ("train", "validation", "test"))
    dd = data.load("sentiment", write_jsonl(tmp_path / "rt.jsonl", records))
    sizes = {n: sum(1 for r in records if r["split"] == n) for n in ("test", "train", "validation")}
    assert {n: len(s) for n, s in dd.items()} == sizes
    if hub_source == "samples":
        assert sizes == {"test": 40, "train": 40, "validation": 40}
    assert dd["test"]["label"] == [r["label"] for r in rows(hub_source, "cornell-movie-review-data__rotten_tomatoes", "test")]
    named = [{"text": r["text"], "label": ["neg", "pos"][r["label"]]} for r in records]  # the ClassLabel names
    dd = data.load("sentiment", write_jsonl(tmp_path / "named.jsonl", named))
    assert sum(dd["train"]["label"]) + sum(dd["test"]["label"]) == sum(r["label"] for r in records)
    assert hub_source != "samples" or sum(r["label"] for r in records) == 60


# ---------------------------------------------------------------- empty fields
def test_alpaca_file_with_empty_outputs_names_the_rows_and_the_option(tmp_path, hub_source):
    alpaca = rows(hub_source, "tatsu-lab__alpaca", "train")
    empty = [i for i, r in enumerate(alpaca) if not r["output"]]
    assert len(empty) == 2  # the Hub has such rows
    path = write_jsonl(tmp_path / "alpaca.jsonl", alpaca)
    with pytest.raises(ValueError, match=rf"rows {empty[0]}, {empty[1]} have an empty 'response'.*drop_empty"):
        data.load("instructions", path)
    dd = data.load("instructions", path + "?drop_empty", seed=0)
    assert len(dd["train"]) + len(dd["test"]) == len(alpaca) - 2
    assert set(dd["train"]["category"]) == {instructions.ALPACA_CATEGORY}
    same = data.load("instructions", path, seed=0, drop_empty=True)
    assert same["test"]["instruction"] == dd["test"]["instruction"]
    kept = {r["instruction"]: r for r in alpaca}
    row = dd["train"][0]
    assert (row["context"], row["response"]) == (kept[row["instruction"]]["input"], kept[row["instruction"]]["output"])
    with pytest.raises(ValueError, match="unknown option"):
        data.load("instructions", path + "?drop_blank")


def test_drop_empty_also_works_on_a_hub_source(use_hub_mirror, capsys):
    raw = data.hub_dataset("cornell-movie-review-data/rotten_tomatoes", split="test")
    assert len(data.load("sentiment", "hub?drop_empty")["test"]) == len(raw)  # nothing to drop, nothing dropped
    assert "dropped" not in capsys.readouterr().out


# ---------------------------------------------------------------- categories: Dolly, Alpaca, a local file
def test_offline_instructions_use_dollys_real_category_names(hub_source):
    dd = data.load("instructions", "offline")
    cats = set(dd["train"]["category"]) | set(dd["test"]["category"])
    assert cats == set(instructions.CATEGORIES) <= set(instructions.DOLLY_CATEGORIES)
    assert "generation" not in cats and "creative_writing" in cats
    dolly = {r["category"] for r in rows(hub_source, "databricks__databricks-dolly-15k", "train")}
    assert dolly <= set(instructions.DOLLY_CATEGORIES)


NOTEBOOK_09_GROUPS = {"qa": ["open_qa", "closed_qa", "general_qa", "information_extraction", "summarization",
                             "classification"], "creative": ["brainstorming", "creative_writing"]}


@pytest.mark.parametrize("source", ["dolly", "alpaca", "offline", "one-category file"])
def test_adapter_categories_exist_in_whatever_data_comes(source, tmp_path, capsys, hub_source):
    if source == "dolly":
        present = [r["category"] for r in rows(hub_source, "databricks__databricks-dolly-15k", "train")]
    elif source == "alpaca":
        path = write_jsonl(tmp_path / "a.jsonl", rows(hub_source, "tatsu-lab__alpaca", "train"))
        present = data.load("instructions", path + "?drop_empty")["train"]["category"]
    elif source == "offline":
        present = data.load("instructions", "offline")["train"]["category"]
    else:
        present = ["poetry"] * 5
    groups = sft.category_groups(present, NOTEBOOK_09_GROUPS)
    out = capsys.readouterr().out
    for name, cats in groups.items():
        chosen = cats.split(",")
        assert chosen and set(chosen) <= set(present), (name, chosen)
        assert f"{name}: {cats}" in out
        assert sft.choose_categories(present, cats) == chosen
    if source in ("dolly", "offline"):
        assert "creative_writing" in groups["creative"] and "closed_qa" in groups["qa"]
    else:
        assert groups["qa"] == groups["creative"] == ",".join(sorted(set(present)))  # one category: all of it


def test_recipe_skips_absent_categories_and_says_so(capsys):
    from datasets import Dataset

    ds = Dataset.from_list([{"instruction": "a", "context": "", "response": "b", "category": c}
                            for c in ("open_qa", "brainstorming", "open_qa")])
    picked = sft.select(ds, "brainstorming,generation", None)
    assert picked["sample_id"] == [1]
    assert "not in this data: generation" in capsys.readouterr().out
    with pytest.raises(ValueError, match="its categories: \\['brainstorming', 'open_qa'\\]"):
        sft.select(ds, "generation", None)


# ---------------------------------------------------------------- DialogSum: three references per test dialogue
def test_dialogsum_local_file_in_the_hub_layout_is_grouped_like_the_hub(tmp_path, use_hub_mirror, hub_source):
    local = data.load("dialogsum", write_jsonl(tmp_path / "ds.jsonl", with_split(hub_source, "knkarthick__dialogsum",
                                                                                ("train", "validation", "test"))))
    hub = data.load("dialogsum", "hub")
    assert local["test"].to_list() == hub["test"].to_list()
    raw = data.hub_dataset("knkarthick/dialogsum")
    assert len(local["test"]) == len({d.strip() for d in raw["test"]["dialogue"]}) and len(local["train"]) == len(
        raw["train"])
    assert hub_source != "samples" or (len(local["test"]), len(local["train"])) == (14, 40)


def test_rouge_takes_the_best_reference_and_counts_each_dialogue_once():
    refs = [["the cat sat", "a dog ran home", "birds sing"], ["trains leave at noon"]]
    s = metrics.rouge(["a dog ran home", "trains leave at noon"], refs, backend="rouge_score")
    assert s["rouge1"] == pytest.approx(1.0)  # the second reference of dialogue 1 matches exactly
    only_first = metrics.rouge(["a dog ran home", "trains leave at noon"], [r[0] for r in refs],
                               backend="rouge_score")
    assert only_first["rouge1"] == pytest.approx(0.5)  # (0 + 1) / 2 dialogues
    # One reference in a list scores as that reference alone.
    assert metrics.rouge(["a b c"], [["a b d"]], backend="rouge_score") == metrics.rouge(
        ["a b c"], ["a b d"], backend="rouge_score")
    with pytest.raises(ValueError, match="non-empty list"):
        metrics.rouge(["a"], [[]], backend="rouge_score")


def test_rouge_on_the_hub_test_rows_uses_every_reference(use_hub_mirror):
    test = data.load("dialogsum", "hub")["test"]
    # A prediction equal to a dialogue's THIRD reference scores 1 for that dialogue.
    preds = [r[-1] for r in test["references"]]
    assert metrics.rouge(preds, test["references"], backend="rouge_score")["rougeL"] == pytest.approx(1.0)
    assert metrics.rouge(preds, test["summary"], backend="rouge_score")["rougeL"] < 0.9


# ---------------------------------------------------------------- medical labels: the column name decides the coding
def test_medical_file_in_the_hub_schema_works_as_is(tmp_path, hub_source):
    records = with_split(hub_source, "TimSchopf__medical_abstracts")
    dd = data.load("medical", write_jsonl(tmp_path / "med.jsonl", records))
    assert dd["test"]["label"] == [r["condition_label"] - 1 for r in rows(hub_source, "TimSchopf__medical_abstracts", "test")]
    assert dd["test"]["text"] == [r["medical_abstract"] for r in rows(hub_source, "TimSchopf__medical_abstracts", "test")]


def test_medical_one_based_codes_without_class_five_are_not_shifted(tmp_path, hub_source):
    records = [r for r in with_split(hub_source, "TimSchopf__medical_abstracts") if r["condition_label"] != 5]
    dd = data.load("medical", write_jsonl(tmp_path / "med.jsonl", records))
    names = [medical.LABELS[i] for i in dd["test"]["label"]]
    want = [medical.LABELS[r["condition_label"] - 1] for r in records if r["split"] == "test"]
    assert names == want


def test_medical_csv_from_the_hub_reads_its_codes(tmp_path, hub_source):
    import csv

    path = tmp_path / "med.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["condition_label", "medical_abstract", "split"])
        w.writeheader()
        w.writerows(with_split(hub_source, "TimSchopf__medical_abstracts"))
    dd = data.load("medical", str(path))
    assert sorted(set(dd["train"]["label"]) | set(dd["test"]["label"])) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("records", "message"), [
    ([{"text": "An abstract.", "label": lab} for lab in (1, 2, 3, 4, 5)], r"0-based.*condition_label"),
    ([{"medical_abstract": "An abstract.", "condition_label": c} for c in (0, 1, 2, 3, 4)],
     r"condition_label 0.*1-based.*1 neoplasms.*`label`"),
    ([{"medical_abstract": "An abstract.", "condition_label": 1, "label": 0}] * 2, "both"),
])
def test_ambiguous_medical_codes_are_refused_naming_the_coding(tmp_path, records, message):
    with pytest.raises(ValueError, match=message):
        data.load("medical", write_jsonl(tmp_path / "bad.jsonl", records))


# ---------------------------------------------------------------- benchmark questions: every question of a file
def test_fastchat_question_file_works_as_is_and_all_of_it_is_test(tmp_path, hub_source):
    fastchat = [{"question_id": 81 + i, "category": r["category"], "turns": r["prompt"],
                 **({"reference": r["reference"]} if r["reference"] else {})}
                for i, r in enumerate(rows(hub_source, "HuggingFaceH4__mt_bench_prompts", "train"))]
    dd = data.load("benchmark_questions", write_jsonl(tmp_path / "question.jsonl", fastchat))
    n = len(fastchat)
    assert list(dd) == ["test"] and len(dd["test"]) == n and (hub_source != "samples" or n == 80)
    assert dd["test"]["question_id"] == list(range(81, 81 + n))
    assert all(f.strip() for f in dd["test"]["followup"])


def test_hub_schema_question_file_and_an_all_test_file(tmp_path, hub_source):
    hub_rows = rows(hub_source, "HuggingFaceH4__mt_bench_prompts", "train")
    dd = data.load("benchmark_questions", write_jsonl(tmp_path / "q.jsonl", hub_rows))
    n = len(hub_rows)
    assert len(dd["test"]) == n and dd["test"]["question_id"] == [r["prompt_id"] for r in hub_rows]
    marked = [{**r, "split": "test"} for r in hub_rows]
    assert len(data.load("benchmark_questions", write_jsonl(tmp_path / "t.jsonl", marked))["test"]) == n
    with pytest.raises(ValueError, match="'test' rows"):
        data.load("benchmark_questions", write_jsonl(tmp_path / "x.jsonl", [{**r, "split": "dev"} for r in hub_rows]))


def test_a_trained_task_still_needs_train_rows(tmp_path, hub_source):
    records = [{**r, "split": "test"} for r in rows(hub_source, "cornell-movie-review-data__rotten_tomatoes", "test")]
    with pytest.raises(ValueError, match="both 'train' and 'test'"):
        data.load("sentiment", write_jsonl(tmp_path / "t.jsonl", records))


# ---------------------------------------------------------------- wikitext's layout and which task DATA feeds
def test_wikitext_file_in_its_hub_layout_works_as_is(tmp_path, hub_source):
    lines = rows(hub_source, "Salesforce__wikitext__wikitext-2-raw-v1", "test")
    assert any(r["text"] == "" for r in lines)
    dd = data.load("lm_text", write_jsonl(tmp_path / "wiki.jsonl", lines))
    assert sum(len(s) for s in dd.values()) == sum(1 for r in lines if r["text"].strip())


def test_other_tasks_follow_named_sources_only():
    assert data.other_source("hub?drop_empty") == "hub"
    assert data.other_source("alpaca.json?drop_empty") == "auto"


def test_dialogsum_file_without_split_keeps_a_dialogues_references_together(tmp_path, hub_source):
    test_rows = rows(hub_source, "knkarthick__dialogsum", "test")  # samples: 14 dialogues in 40 rows
    dd = data.load("dialogsum", write_jsonl(tmp_path / "test_only.jsonl", test_rows), seed=3)
    train, test = set(dd["train"]["dialogue"]), set(dd["test"]["dialogue"])
    assert not train & test
    dialogues = len({r["dialogue"].strip() for r in test_rows})
    assert dialogues == (14 if hub_source == "samples" else 5)
    assert len(train | test) == dialogues and len(dd["test"]) == -(-dialogues // 5)  # 20% of them, rounded up
    assert sum(len(r) for r in dd["test"]["references"]) + len(dd["train"]) == len(test_rows)


def test_a_parquet_file_as_the_hub_stores_it_works(tmp_path, use_hub_mirror, hub_source):
    # The Hub keeps datasets as Parquet; a downloaded split is a valid DATA file as it is.
    path = tmp_path / "train-00000-of-00001.parquet"
    data.hub_dataset("TimSchopf/medical_abstracts", split="train").to_parquet(str(path))
    dd = data.load("medical", str(path), seed=0)
    raw = rows(hub_source, "TimSchopf__medical_abstracts", "train")
    got = sorted((r["text"], r["label"]) for name in ("train", "test") for r in dd[name])
    assert got == sorted((r["medical_abstract"], r["condition_label"] - 1) for r in raw)
