"""prompts: templates and label-word scoring on the real embedded model."""

from __future__ import annotations

import pytest
import torch

from gptforall_utils import prompts


def test_alpaca_prompt_with_and_without_input():
    with_input = prompts.alpaca_prompt("Summarise the text.", "A long text.")
    assert "### Input:\nA long text." in with_input and with_input.endswith("### Response:\n")
    assert "### Input" not in prompts.alpaca_prompt("Name a colour.", "  ")


def test_chat_prompt_ends_at_the_assistant_turn(tiny_model):
    _, tok = tiny_model
    text = prompts.chat(tok, "Hi", system="Be brief.")
    assert text.rstrip().endswith("<|im_start|>assistant")
    assert "Be brief." in text and "Hi" in text


def test_label_words_must_start_with_different_tokens(tiny_model):
    _, tok = tiny_model
    assert len(set(prompts.label_token_ids(tok, ("negative", "positive")))) == 2
    with pytest.raises(ValueError, match="share their first token"):
        prompts.label_token_ids(tok, ("good", "goodness"))


def test_scores_do_not_depend_on_padding(tiny_model):
    model, tok = tiny_model
    texts = ["A tedious, lifeless mess.", "One of the warmest, funniest films of the year, a pure delight to watch."]
    rendered = [prompts.SENTIMENT.render(tok, t) for t in texts]
    together = prompts.score_labels(model, tok, rendered, prompts.SENTIMENT.label_words, batch_size=2)
    alone = torch.cat([prompts.score_labels(model, tok, [r], prompts.SENTIMENT.label_words) for r in rendered])
    assert torch.allclose(together, alone, atol=1e-3)


def test_zero_shot_gets_clear_cases_right(tiny_model):
    model, tok = tiny_model
    texts = ["An utterly boring, badly acted waste of two hours.",
             "A moving, beautifully made film that I loved from start to finish."]
    assert prompts.classify(model, tok, prompts.SENTIMENT, texts) == [0, 1]


def test_scores_from_nan_logits_are_refused(tiny_model):
    """A diverged model's NaN logits would argmax to the first label for every prompt ("negative", confidence
    nan): label scoring refuses them, so no accuracy is computed from them."""
    model, tok = tiny_model
    rendered = [prompts.SENTIMENT.render(tok, t) for t in ("Great fun.", "Dull.", "A mess.")]
    handle = model.get_output_embeddings().register_forward_hook(lambda m, i, out: out * float("nan"))
    try:
        with pytest.raises(ValueError, match="3 of 3 prompts got non-finite label scores"):
            prompts.classify(model, tok, prompts.SENTIMENT, ["Great fun.", "Dull.", "A mess."])
        with pytest.raises(ValueError, match="non-finite"):
            prompts.score_labels(model, tok, rendered, prompts.SENTIMENT.label_words)
    finally:
        handle.remove()
    prompts.check_finite_scores(torch.zeros(2, 2))
