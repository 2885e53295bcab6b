"""The Hub mirror (GPTFORALL_HUB_MIRROR): datasets served from disk exactly as `datasets.load_dataset` returns
them, every task's `hub()` on Hub rows from each source (the course-written fixtures of tests/hub_fixtures/, and the
real rows of ../shared/hub_samples where they exist), the fixtures' schema checked equal to the samples', Hub model
ids served from a saved folder, and the one rule that a mirror counts as the Hub."""

from __future__ import annotations

import json
import os

import pytest
from conftest import (  # noqa: I001
    HUB_FIXTURES,
    HUB_MODEL,
    HUB_SAMPLES,
    default_hub_source,
    hub_rows_folder,
    hub_samples,
    hub_sources,
)

from gptforall_utils import data, env, models
from gptforall_utils.data import benchmark_questions, dialogsum, instructions, medical


def fake_load_dataset(path, name=None, *, split=None, source=None):
    """The reference reader of hub_samples/README.md: rows cast to schema.json's features, Hub split order. source:
    "samples" or "fixtures"; by default the session's one source (the samples where they exist, else the fixtures)."""
    import datasets

    folder = hub_rows_folder(source or default_hub_source()) / (path.replace("/", "__") + (f"__{name}" if name else ""))
    schema = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
    features = data.features_from_schema(schema["features"])
    parts = {}
    for s in schema["splits"]:
        rows = [json.loads(line) for line in (folder / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
        parts[s] = datasets.Dataset.from_list(rows).cast(features)
    dd = datasets.DatasetDict(parts)
    return dd[split] if split is not None else dd


FIXTURE_NAMES = sorted(p.name for p in HUB_FIXTURES.iterdir() if (p / "schema.json").is_file())


def test_every_hub_dataset_the_course_loads_has_a_course_written_fixture():
    # ARC-Easy is built at test time from its asset (tests/hub_mirror_arc.py); every other one is written here.
    wanted = {data.mirror_name(hub_id, config) for name in data.tasks()
              for hub_id, config in data.get_task(name).hub_datasets} - {"allenai__ai2_arc__ARC-Easy"}
    assert wanted == set(FIXTURE_NAMES), wanted ^ set(FIXTURE_NAMES)
    for name in FIXTURE_NAMES:
        schema = json.loads((HUB_FIXTURES / name / "schema.json").read_text(encoding="utf-8"))
        assert "written for this course" in schema["sample_source"].lower(), name
        assert list(data.read_mirror_folder(HUB_FIXTURES / name)) == list(schema["splits"])


if "samples" in hub_sources():  # collected only where ../shared/hub_samples exists (no skip elsewhere)
    @pytest.mark.parametrize("name", [n for n in FIXTURE_NAMES if (HUB_SAMPLES / n).is_dir()])
    def test_fixture_schema_equals_the_real_samples_schema(name):
        # Where ../shared/hub_samples exists: the fixture's schema is the real rows' schema.json, field for field.
        fixture = json.loads((HUB_FIXTURES / name / "schema.json").read_text(encoding="utf-8"))
        real = json.loads((hub_samples() / name / "schema.json").read_text(encoding="utf-8"))
        for key in ("hub_id", "config", "splits", "features", "column_order", "licence"):
            assert fixture[key] == real[key], (name, key)
        fixture_rows = data.read_mirror_folder(HUB_FIXTURES / name)
        real_rows = data.read_mirror_folder(hub_samples() / name)
        assert list(fixture_rows) == list(real_rows)
        for split in real_rows:
            assert fixture_rows[split].features == real_rows[split].features
            assert fixture_rows[split].column_names == real_rows[split].column_names


def test_tests_never_reach_the_real_hub():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert env.hub_reachable() is False
    assert env.hub_mirror() is None and env.hub_available() is False  # no mirror unless a test sets one


@pytest.mark.parametrize("hub_id", ["cornell-movie-review-data/rotten_tomatoes", "Salesforce/wikitext",
                                    "databricks/databricks-dolly-15k", "tatsu-lab/alpaca", "knkarthick/dialogsum",
                                    "TimSchopf/medical_abstracts", "HuggingFaceH4/mt_bench_prompts"])
def test_mirror_serves_what_load_dataset_returns(use_hub_mirror, hub_source, hub_id):
    config = "wikitext-2-raw-v1" if hub_id == "Salesforce/wikitext" else None
    folder = use_hub_mirror / data.mirror_name(hub_id, config)
    schema = json.loads((folder / "schema.json").read_text())
    got = data.hub_dataset(hub_id, config)
    want = fake_load_dataset(hub_id, config, source=hub_source)
    assert list(got) == list(schema["splits"]) == list(want)  # the Hub's split order
    for name in got:
        assert got[name].features == want[name].features == data.features_from_schema(schema["features"])
        assert got[name].column_names == schema["column_order"]
        assert got[name].to_list() == want[name].to_list()
        assert str(got[name].split) == name
    first = next(iter(schema["splits"]))
    one = data.hub_dataset(hub_id, config, split=first)
    assert one.to_list() == got[first].to_list() and one.features == got[first].features


def test_the_ci_mirror_covers_every_hub_dataset_the_tasks_read(hub_mirror):
    # hub_samples, tests/hub_fixtures and ARC-Easy (built from its asset): the notebooks' Hub pass reads only these.
    wanted = {data.mirror_name(hub_id, config) for name in data.tasks()
              for hub_id, config in data.get_task(name).hub_datasets}
    missing = {w for w in wanted if not (hub_mirror / w / "schema.json").is_file()}
    assert wanted and not missing, missing


def test_a_dataset_missing_from_the_mirror_names_the_folder_expected(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTFORALL_HUB_MIRROR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"tatsu-lab__alpaca.*schema\.json"):
        data.hub_dataset("tatsu-lab/alpaca")
    with pytest.raises(FileNotFoundError, match="Salesforce__wikitext__wikitext-2-raw-v1"):
        data.hub_dataset("Salesforce/wikitext", "wikitext-2-raw-v1")


def test_unknown_split_and_slices_are_refused(use_hub_mirror):
    with pytest.raises(ValueError, match="Unknown split"):
        data.hub_dataset("tatsu-lab/alpaca", split="test")
    with pytest.raises(ValueError, match="not served"):
        data.hub_dataset("tatsu-lab/alpaca", split="train[:10]")


def test_a_mirror_that_is_not_a_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTFORALL_HUB_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="GPTFORALL_HUB_MIRROR"):
        env.hub_available()


def test_schema_features_are_parsed_not_evaluated():
    import datasets

    f = data.features_from_schema({"a": "ClassLabel(names=['neg', 'pos'])", "b": "List(Value('string'))"})
    assert f["a"].names == ["neg", "pos"] and f["b"] == datasets.List(datasets.Value("string"))
    with pytest.raises(ValueError, match="cannot be read"):
        data.features_from_schema({"a": "__import__('os').getcwd()"})


def test_save_to_mirror_writes_the_layout_hub_dataset_reads(use_hub_mirror, hub_source, tmp_path, monkeypatch):
    dd = data.hub_dataset("cornell-movie-review-data/rotten_tomatoes")
    folder = data.save_to_mirror(dd, tmp_path, "cornell-movie-review-data/rotten_tomatoes", max_rows=5,
                                 licence="unknown")
    assert folder == tmp_path / "cornell-movie-review-data__rotten_tomatoes"
    schema = json.loads((folder / "schema.json").read_text())
    assert schema["splits"] == {n: len(s) for n, s in dd.items()}  # sizes of what was saved from
    assert hub_source != "samples" or schema["splits"] == {"train": 40, "validation": 40, "test": 40}
    monkeypatch.setenv("GPTFORALL_HUB_MIRROR", str(tmp_path))
    again = data.hub_dataset("cornell-movie-review-data/rotten_tomatoes")
    assert list(again) == list(dd)
    for name in dd:
        assert again[name].features == dd[name].features
        assert again[name].to_list() == dd[name].select(range(5)).to_list()
    # U+0097 (a C1 control character of the latin-1 decoding) survives the round trip, escaped on disk.
    text = (folder / "train.jsonl").read_text()
    assert text.isascii()


# ---------------------------------------------------------------- the one rule: a mirror counts as the Hub
def test_a_mirror_counts_as_the_hub_for_auto(use_hub_mirror, hub_source):
    assert env.hub_reachable() is False and env.hub_available() is True
    dd = data.load("sentiment", "auto")
    want = {"train": 40, "validation": 40, "test": 40} if hub_source == "samples" else {"train": 40, "validation": 10,
                                                                                         "test": 20}
    assert {n: len(s) for n, s in dd.items()} == want  # the mirror's rows, not the offline asset's
    assert models.resolve("auto", "gpu").source == "mirror"


def test_without_a_mirror_hub_data_points_to_offline_and_the_mirror():
    with pytest.raises(FileNotFoundError, match="GPTFORALL_HUB_MIRROR"):
        data.load("medical", "hub")


# ---------------------------------------------------------------- every task's hub() on the real rows
def test_sentiment_hub(use_hub_mirror):
    dd = data.load("sentiment", "hub")
    assert dd["train"].features["label"].names == ["negative", "positive"]
    raw = data.hub_dataset("cornell-movie-review-data/rotten_tomatoes", split="test")
    assert dd["test"]["label"] == raw["label"]  # 0 = neg = negative, 1 = pos = positive
    assert dd["test"]["text"] == raw["text"]


def test_lm_text_hub_drops_blank_lines(use_hub_mirror, capsys):
    dd = data.load("lm_text", "hub")
    raw = data.hub_dataset("Salesforce/wikitext", "wikitext-2-raw-v1")
    for name in ("train", "test"):
        assert dd[name]["text"] == [t for t in raw[name]["text"] if t.strip()]
    assert "blank row(s)" in capsys.readouterr().out


def test_instructions_hub_is_dolly_with_its_real_categories(use_hub_mirror, hub_source):
    dd = data.load("instructions", "hub")
    n = len(data.hub_dataset(instructions.DOLLY_ID, split="train"))
    assert len(dd["train"]) + len(dd["test"]) == n and (hub_source != "samples" or n == 40)
    cats = set(dd["train"]["category"]) | set(dd["test"]["category"])
    assert cats <= set(instructions.DOLLY_CATEGORIES) and "generation" not in cats
    alpaca = instructions.hub("alpaca")
    assert set(alpaca["train"]["category"]) == {"alpaca"}
    n = len(data.hub_dataset(instructions.ALPACA_ID, split="train"))
    assert sum(len(s) for s in alpaca.values()) == n and (hub_source != "samples" or n == 40)
    if hub_source == "fixtures":  # the course-written rows hold every Dolly category and both empty Alpaca outputs
        assert cats == set(instructions.DOLLY_CATEGORIES)
        assert sum(1 for r in list(alpaca["train"]["response"]) + list(alpaca["test"]["response"]) if not r) == 2


def test_dialogsum_hub_scores_each_test_dialogue_once(use_hub_mirror, hub_source):
    dd = data.load("dialogsum", "hub")
    raw = data.hub_dataset("knkarthick/dialogsum")
    assert len(dd["train"]) == len(raw["train"]) and dd["train"]["summary"] == raw["train"]["summary"]
    test = dd["test"]
    # samples: 40 Hub rows = 13 dialogues x 3 references + the first reference of a 14th (test_0_1 ... test_25_1);
    # fixtures: 13 rows = 4 dialogues x 3 references + the first reference of a 5th (the same cut).
    complete = 13 if hub_source == "samples" else 4
    assert len(test) == complete + 1
    assert [len(r) for r in test["references"]] == [3] * complete + [1]
    assert test["references"][0] == raw["test"]["summary"][:3]
    assert test["summary"] == [r[0] for r in test["references"]]
    assert len(dd["validation"]) == len(raw["validation"]) == (40 if hub_source == "samples" else 4)


def test_medical_hub_maps_the_one_based_codes(use_hub_mirror):
    dd = data.load("medical", "hub")
    raw = data.hub_dataset("TimSchopf/medical_abstracts")
    for name in ("train", "test"):
        assert dd[name]["label"] == [c - 1 for c in raw[name]["condition_label"]]
        assert dd[name].features["label"].names == list(medical.LABELS)


def test_benchmark_questions_hub(use_hub_mirror, hub_source):
    q = data.load("benchmark_questions", "hub")
    raw = data.hub_dataset("HuggingFaceH4/mt_bench_prompts", split="train")
    assert list(q) == ["test"] and len(q["test"]) == len(raw) == (80 if hub_source == "samples" else 16)
    assert q["test"]["question_id"] == raw["prompt_id"]
    assert q["test"]["question"] == [p[0] for p in raw["prompt"]]
    groups = benchmark_questions.by_category(q["test"], 10)
    assert list(groups) == list(benchmark_questions.CATEGORIES)


def test_dialogsum_group_references_keeps_order():
    from datasets import Dataset

    ds = Dataset.from_dict({"dialogue": ["a", "a ", "b", "a"], "summary": ["1", "2", "3", "4"]})
    g = dialogsum.group_references(ds)
    assert g["dialogue"] == ["a", "b"] and g["references"] == [["1", "2", "4"], ["3"]]


# ---------------------------------------------------------------- models from the mirror
def test_hub_ids_resolve_to_the_mirror(use_hub_mirror):
    folder = use_hub_mirror / "HuggingFaceTB__SmolLM2-360M-Instruct"
    for name in (HUB_MODEL, "smollm2-360m-instruct"):
        r = models.resolve(name, "gpu")
        assert (r.source, r.location) == ("mirror", str(folder))
    # The profile's default id is not in this mirror and the Hub does not answer: the embedded model.
    assert models.resolve("auto", "smoke").source == "embedded"
    with pytest.raises(FileNotFoundError, match="HuggingFaceTB__SmolLM2-1.7B-Instruct"):
        models.resolve("smollm2-1.7b-instruct", "gpu")
    with pytest.raises(FileNotFoundError, match="someorg__some-model"):
        models.resolve("someorg/some-model", "gpu")


def test_a_mirrored_model_loads_like_the_hub_one(use_hub_mirror, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = tiny_model
    loaded = models.load_model(HUB_MODEL, profile="gpu", device="cpu", verbose=False)
    tok = models.load_tokenizer(HUB_MODEL, profile="gpu")
    folder = models.resolve(HUB_MODEL, "gpu").location
    plain = AutoModelForCausalLM.from_pretrained(folder)  # exactly what from_pretrained(<hub id>) would do
    assert type(AutoTokenizer.from_pretrained(folder)) is type(tok)
    ids = tok("The Hub, served from disk", return_tensors="pt")
    assert ids["input_ids"].tolist() == tokenizer("The Hub, served from disk", return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        assert torch.allclose(loaded(**ids).logits, model(**ids).logits, atol=1e-5)
        assert torch.allclose(plain(**ids).logits, model(**ids).logits, atol=1e-5)


# ---------------------------------------------------------------- preparing a mirror (instructors, no network later)
def test_prepare_script_writes_a_mirror_the_course_reads(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare_hub_mirror", data.DATA_DIR.parent / "scripts" /
                                                  "prepare_hub_mirror.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    saved = []

    def save_model(hub_id, mirror):
        saved.append(hub_id)
        return mirror / hub_id.replace("/", "__")

    # Without the Hub (and no stand-in loader) it stops at once, saying why.
    assert script.main([str(tmp_path / "m0")]) == 1
    assert "not reachable" in capsys.readouterr().err
    code = script.main([str(tmp_path / "m"), "--tasks", "dialogsum", "lm_text", "--max-rows", "7"],
                       load_dataset=fake_load_dataset, save_model=save_model)
    assert code == 0 and saved == list(script.models.CATALOG[m].hub_id for m in script.DEFAULT_MODELS)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["Salesforce__wikitext__wikitext-2-raw-v1",
                                                                  "knkarthick__dialogsum"]
    monkeypatch.setenv("GPTFORALL_HUB_MIRROR", str(tmp_path / "m"))
    dd = data.hub_dataset("knkarthick/dialogsum")
    want = fake_load_dataset("knkarthick/dialogsum")
    assert list(dd) == list(want)
    for s in dd:  # the first --max-rows rows of every split (all of a shorter split)
        n = min(7, len(want[s]))
        assert len(dd[s]) == n and dd[s].to_list() == want[s].select(range(n)).to_list(), s
    assert len(data.load("lm_text", "auto")["test"]) > 0  # the mirror serves the course
