"""Task `preferences`: the schema, the offline pairs (prompts and references from `instructions`, rejected answers
self-generated and cached), the Hub rows normalised from a fixture in UltraFeedback-binarized's exact schema."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gptforall_utils import data
from gptforall_utils.data import instructions, preferences

FIXTURE = Path(__file__).parent / "hub_fixtures" / "HuggingFaceH4__ultrafeedback_binarized"


def fake_generator(seed: int):
    """A stand-in for the model: a seeded, sampled answer per prompt (like do_sample with a fixed seed)."""

    def generate(prompts):
        rng = random.Random(seed)
        words = ["perhaps", "the", "answer", "is", "long", "and", "wanders", "off", "topic"]
        return [f"{p.split()[0]} " + " ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for p in prompts]

    return generate


def test_offline_pairs_take_prompts_and_references_from_the_instructions_split():
    dd = data.load("preferences", "offline", seed=0)
    inst = data.load("instructions", "offline", seed=0)
    assert set(dd) == {"train", "test"} and len(dd["test"]) == len(inst["test"]) and len(dd["train"]) == len(inst["train"])
    assert dd["test"]["chosen"] == inst["test"]["response"]
    assert dd["test"]["prompt"] == [preferences.instruction_prompt(r) for r in inst["test"]]
    assert preferences.missing_rejected(dd["train"]) == len(dd["train"])  # the model writes them
    with_context = next(r for r in inst["test"] if r["context"].strip())
    assert preferences.instruction_prompt(with_context).endswith(with_context["context"])
    # The file's own split fixes the held-out prompts, whatever the seed.
    assert data.load("preferences", "offline", seed=7)["test"]["prompt"] == dd["test"]["prompt"]
    assert not set(dd["test"]["prompt"]) & set(dd["train"]["prompt"])


def test_self_generated_pairs_are_deterministic_for_a_seed_and_cached(tmp_path):
    dd = data.load("preferences", "offline", seed=0)
    small = {"train": dd["train"].select(range(6)), "test": dd["test"].select(range(3))}
    key = {"model": "fake", "seed": 3, "n_train": 6, "n_test": 3}
    first, info = preferences.self_generated(small, fake_generator(3), tmp_path, key)
    assert info["generated"] == 9 and info["from_cache"] == 0
    again, _ = preferences.self_generated(small, fake_generator(3), tmp_path / "elsewhere", key)
    assert again["train"]["rejected"] == first["train"]["rejected"]  # same seed, same pairs
    assert preferences.missing_rejected(first["train"]) == 0
    assert first["test"]["chosen"] == small["test"]["chosen"]

    def must_not_run(prompts):
        raise AssertionError("a cached run must not generate again")

    cached, info = preferences.self_generated(small, must_not_run, tmp_path, key)
    assert info["from_cache"] == 9 and info["generated"] == 0
    assert cached["test"]["rejected"] == first["test"]["rejected"]
    other, info = preferences.self_generated(small, fake_generator(4), tmp_path, {**key, "seed": 4})
    assert info["generated"] == 9 and other["train"]["rejected"] != first["train"]["rejected"]


def test_a_generated_answer_equal_to_the_reference_is_dropped_as_a_tie():
    dd = data.load("preferences", "offline", seed=0)
    rows = {"train": dd["train"].select(range(4))}
    copy_first = dict(zip(rows["train"]["prompt"][:1], rows["train"]["chosen"][:1]))
    pairs, info = preferences.self_generated(rows, lambda ps: [copy_first.get(p, "something else") for p in ps])
    assert info["dropped_ties"] == 1 and len(pairs["train"]) == 3
    preferences.check_pairs(pairs["train"])


def test_check_pairs_refuses_what_dpo_cannot_learn_from():
    from datasets import Dataset

    with pytest.raises(ValueError, match="empty 'rejected'"):
        preferences.check_pairs(Dataset.from_list([{"prompt": "p", "chosen": "a", "rejected": " "}]))
    with pytest.raises(ValueError, match="chosen == rejected"):
        preferences.check_pairs(Dataset.from_list([{"prompt": "p", "chosen": "a", "rejected": "a"}]))


def test_local_file_in_the_schema_and_with_rejected_left_to_the_model(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"Question {i}?", "chosen": f"Short answer {i}.", "rejected": "" if i % 2 else f"Rambling {i}"}
            for i in range(20)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    dd = data.load("preferences", str(path), seed=0)
    assert len(dd["train"]) + len(dd["test"]) == 20
    assert preferences.missing_rejected(dd["train"]) + preferences.missing_rejected(dd["test"]) == 10
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(ValueError, match="rejected"):
        data.load("preferences", str(bad), seed=0)


def test_fixture_is_in_the_hub_schema_its_card_states():
    schema = json.loads((FIXTURE / "schema.json").read_text(encoding="utf-8"))
    assert schema["hub_id"] == preferences.HUB_ID and schema["config"] is None
    assert list(schema["splits"]) == ["train_prefs", "train_sft", "test_prefs", "test_sft", "train_gen", "test_gen"]
    assert schema["column_order"] == ["prompt", "prompt_id", "chosen", "rejected", "messages", "score_chosen",
                                      "score_rejected"]
    assert schema["sources"] and schema["licence"] == "mit"
    dd = data.read_mirror_folder(FIXTURE)
    for split in dd.values():
        assert split.column_names == schema["column_order"]
        for row in split:
            assert [m["role"] for m in row["chosen"]] == ["user", "assistant"] == [m["role"] for m in row["rejected"]]
            assert row["chosen"][0]["content"] == row["prompt"] == row["rejected"][0]["content"]


def test_hub_rows_are_normalised_to_the_schema(use_hub_mirror):
    assert data.mirror_name(*preferences.TASK.hub_datasets[0]) == FIXTURE.name  # the CI mirror links the fixture
    dd = preferences.hub()  # through data.hub_dataset, served by the mirror
    raw = data.hub_dataset(preferences.HUB_ID, split="test_prefs")
    assert set(dd) == {"train", "test"} and len(dd["test"]) == len(raw)
    assert dd["test"].column_names == ["prompt", "chosen", "rejected"]
    assert dd["test"][0]["chosen"] == raw[0]["chosen"][-1]["content"]
    assert dd["test"][0]["rejected"] == raw[0]["rejected"][-1]["content"]
    for name in dd:
        data.validate(dd[name], data.get_task("preferences"))
        preferences.check_pairs(dd[name])


def test_pairs_without_a_preference_are_dropped_and_answers_may_be_strings():
    user = {"role": "user", "content": "q"}
    tie = {"prompt": "q", "chosen": [user, {"role": "assistant", "content": "a"}],
           "rejected": [user, {"role": "assistant", "content": "b"}], "score_chosen": 7.0, "score_rejected": 7.0}
    assert not preferences.carries_a_preference(tie)
    assert preferences.carries_a_preference({**tie, "score_rejected": 5.0})
    assert not preferences.carries_a_preference({"prompt": "q", "chosen": "same", "rejected": "same"})
    assert preferences.from_hub_row({"prompt": "q", "chosen": "a", "rejected": "b"})["chosen"] == "a"
    with pytest.raises(ValueError, match="no assistant turn"):
        preferences.assistant_text([user])


def test_the_task_is_in_the_catalog_with_its_sources():
    task = data.get_task("preferences")
    assert set(task.columns) == {"prompt", "chosen", "rejected"}
    assert preferences.HUB_ID in task.hub_source and instructions.TASK.offline_source in task.offline_source
    conv = preferences.as_conversation({"prompt": "p", "chosen": "a", "rejected": "b"})
    assert conv["prompt"][0]["role"] == "user" and conv["chosen"][0] == {"role": "assistant", "content": "a"}
