"""Task `multiple_choice` (ARC-Easy) and its scoring by log-likelihood."""

from __future__ import annotations

import pytest
import torch

from gptforall_utils import data, metrics
from gptforall_utils.data import multiple_choice as mc


@pytest.fixture(scope="module")
def questions():
    return data.load("multiple_choice", "offline")["test"]


def test_offline_is_the_real_arc_easy_validation_split(questions):
    assert len(questions) == 570
    assert set(questions.column_names) == {"id", "question", "choices", "answer"}
    assert len(set(questions["id"])) == 570
    assert all(3 <= len(c) <= 5 for c in questions["choices"])
    assert all(0 <= a < len(c) for a, c in zip(questions["answer"], questions["choices"]))
    # The answer key is not always the first choice: a real benchmark spreads it.
    counts = [list(questions["answer"]).count(i) for i in range(4)]
    assert min(counts) > 570 / 8, counts
    assert 0.24 < mc.chance_accuracy(questions) < 0.26


def test_normalise_maps_letter_and_digit_labels_to_indices():
    letters = {"id": "q1", "question": "Which is a gas?", "answerKey": "C",
               "choices": {"text": ["ice", "water", "steam", "rock"], "label": ["A", "B", "C", "D"]}}
    digits = {"id": "q2", "question": "Which is a mammal?", "answerKey": "2",
              "choices": {"text": ["trout", "whale", "frog"], "label": ["1", "2", "3"]}}
    assert mc.normalise(letters) == {"id": "q1", "question": "Which is a gas?",
                                     "choices": ["ice", "water", "steam", "rock"], "answer": 2}
    assert mc.normalise(digits)["answer"] == 1
    with pytest.raises(ValueError, match="answer key"):
        mc.normalise({**letters, "answerKey": "E"})
    with pytest.raises(ValueError, match="empty choice"):
        mc.normalise({**digits, "choices": {"text": ["a", " ", "c"], "label": ["1", "2", "3"]}})


def test_the_raw_rows_carry_digit_labels_too():
    raw = mc.offline_rows()
    labels = {lab for row in raw["choices"] for lab in row["label"]}
    assert {"A", "B", "C", "D"} <= labels and labels & {"1", "2", "3", "4"}


def test_hub_source_through_a_mirror_built_from_the_asset(tmp_path, monkeypatch):
    from hub_mirror_arc import FOLDER, build_arc_mirror

    build_arc_mirror(tmp_path)
    monkeypatch.setenv("GPTFORALL_HUB_MIRROR", str(tmp_path))
    assert mc.TASK.hub_datasets == (("allenai/ai2_arc", "ARC-Easy"),)
    assert data.mirror_name(*mc.TASK.hub_datasets[0]) == FOLDER  # the folder hub_dataset reads
    dd = mc.hub()
    assert list(dd) == ["test"]
    assert dd["test"][:5] == mc.offline(0)["test"][:5]
    (tmp_path / FOLDER / "schema.json").unlink()
    with pytest.raises(FileNotFoundError, match="allenai/ai2_arc"):  # never the real Hub instead
        mc.hub()


def hand_written_score(model, tok, context, choice):
    # What the notebook writes out: tokenize context + choice once, keep the choice's tokens,
    # add up their log-probabilities (position t predicts token t + 1).
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    ids = tok(context + choice, add_special_tokens=False)["input_ids"]
    n = len(ids) - len(ctx)
    x = torch.tensor([ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=x).logits[0, :-1].float(), dim=-1)
    return logp[-n:].gather(1, x[0, -n:, None]).sum().item(), n


def test_hand_written_score_equals_the_batched_helper(tiny_model):
    model, tok = tiny_model
    context = "Question: Which of these is the closest star to Earth?\nAnswer:"
    choices = [" the Sun", " Sirius", " the North Star, also called Polaris", " Alpha Centauri"]
    by_hand = [hand_written_score(model, tok, context, c) for c in choices]
    (helper,) = metrics.choice_logprobs(model, tok, [context], [choices], batch_size=3)  # padding in play
    for (s_hand, n_hand), (s_help, n_help) in zip(by_hand, helper):
        assert n_hand == n_help
        assert s_hand == pytest.approx(s_help, abs=1e-3)
    assert all(s < 0 for s, _ in helper)


def test_summed_and_normalised_scores_pick_differently_on_purpose():
    # Two choices: the long one has a better score per character, the short one a better sum.
    logprobs = [[(-4.0, 2), (-6.0, 6)]]
    choices = [["ab", "abcdefghij"]]
    assert metrics.choice_predictions(logprobs, choices, "none") == [0]
    assert metrics.choice_predictions(logprobs, choices, "chars") == [1]
    assert metrics.choice_predictions(logprobs, choices, "tokens") == [1]
    with pytest.raises(ValueError):
        metrics.choice_predictions(logprobs, choices, "words")


def test_encode_pair_moves_trailing_spaces_to_the_continuation(tiny_model):
    _, tok = tiny_model
    ctx, cont = metrics.encode_pair(tok, "Answer: ", "blue")
    assert tok.decode(ctx) == "Answer:" and tok.decode(cont) == " blue"


def test_a_local_file_in_either_schema_is_all_test_and_keeps_every_row(tmp_path):
    raw = mc.offline_rows().select(range(30))
    native = tmp_path / "arc_native.jsonl"
    raw.to_json(str(native))
    course = tmp_path / "arc_course.jsonl"
    mc.offline(0)["test"].select(range(30)).to_json(str(course))
    for path in (native, course):
        dd = data.load("multiple_choice", str(path))
        assert list(dd) == ["test"] and len(dd["test"]) == 30  # nothing held back as "train", nothing dropped
        assert dd["test"][:30] == mc.offline(0)["test"][:30]


def test_a_native_file_with_an_unknown_answer_key_is_refused_with_its_row(tmp_path):
    rows = mc.offline_rows().select(range(3)).to_list()
    rows[2]["answerKey"] = "Z"
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(__import__("json").dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match="row 2.*answer key 'Z'"):
        data.load("multiple_choice", str(path))
