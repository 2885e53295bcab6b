"""DPO helpers in `training`: dpo_config's hardware rules, the hand-written loss equals TRL's on a fixed batch,
the implicit-reward scores (ties while policy == reference, a real run moves the held-out margin)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_run

from gptforall_utils import env, training
from gptforall_utils.data import preferences

PAIRS = [
    {"prompt": "How many legs does a spider have?", "chosen": "Eight.",
     "rejected": "Spiders are arachnids and they live in many places, for example gardens, houses and forests."},
    {"prompt": "Name a primary colour.", "chosen": "Red.", "rejected": "Colours are everywhere, and there are a lot."},
    {"prompt": "What is 2 + 2?", "chosen": "4.", "rejected": "Two plus two is a sum that people often compute."},
    {"prompt": "Give a synonym of 'big'.", "chosen": "Large.", "rejected": "Big is a word that means not small, so."},
]
CONV = [preferences.as_conversation(p) for p in PAIRS]


def _run(tmp_path, profile="cpu", device="cpu", precision="fp32"):
    return make_run(tmp_path, profile, device, precision, name="t_dpo")


def _trainer(tiny_model, tmp_path, random_adapter: bool, beta: float = 0.1, **config):
    """A DPOTrainer on the embedded model with a LoRA adapter; random_adapter=True makes policy != reference."""
    from datasets import Dataset
    from trl import DPOTrainer

    from gptforall_utils import models

    _, tok = tiny_model
    # A fresh copy per trainer: PEFT wraps the model in place and TRL patches its forward.
    model = models.load_model("smollm2-135m-instruct", verbose=False)
    lora = training.lora_config(model, r=4, alpha=8, dropout=0.0)
    if random_adapter:
        lora.init_lora_weights = False  # random A and B: the policy starts away from the reference
    args = training.dpo_config(_run(tmp_path), tmp_path / "dpo", beta=beta, batch_size=2, logging_steps=1,
                               max_length=128, **config)
    return DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(CONV), processing_class=tok,
                      peft_config=lora)


# ---------------------------------------------------------------- configuration
def test_dpo_config_on_cpu_is_fp32_without_checkpointing(tmp_path):
    args = training.dpo_config(_run(tmp_path), beta=0.25, max_length=200)
    assert args.use_cpu and not args.bf16 and not args.fp16
    assert not args.gradient_checkpointing and not args.activation_checkpointing
    assert args.beta == 0.25 and args.max_length == 200 and args.loss_type == ["sigmoid"]
    assert args.per_device_train_batch_size == training.PROFILE_BATCHES["cpu"][0]
    assert args.learning_rate == 5e-4  # an adapter's rate, not TRL's full fine-tuning 1e-6
    assert training.dpo_config(_run(tmp_path), loss_type=["ipo"]).loss_type == ["ipo"]


@pytest.mark.parametrize("capability", [(7, 5), (8, 0)])
def test_dpo_config_follows_the_same_hardware_rules_as_sft_config(tmp_path, monkeypatch, capability):
    # The card is mocked and the config classes replaced by recorders, so that no GPU check runs: what matters
    # is that DPO and SFT receive the same hardware-dependent arguments.
    import trl

    seen = {}
    monkeypatch.setattr(trl, "DPOConfig", lambda **kw: seen.setdefault("dpo", kw))
    monkeypatch.setattr(trl, "SFTConfig", lambda **kw: seen.setdefault("sft", kw))
    run = _run(tmp_path, profile="gpu", device="cuda", precision=env.precision("cuda", capability))
    dpo = training.dpo_config(run, "out", beta=0.1, learning_rate=1e-4, max_length=256)
    sft = training.sft_config(run, "out", learning_rate=1e-4, max_length=256)
    assert {k: v for k, v in dpo.items() if k != "beta"} == sft
    assert dpo["fp16"] == (capability < (8, 0)) and dpo["bf16"] == (capability >= (8, 0))
    # Checkpointing is off unless asked for (or, for SFT, unless fit_arguments finds the step would not fit).
    assert dpo["activation_checkpointing"] is False and dpo["use_cpu"] is False
    seen.clear()
    on = training.dpo_config(run, "out", beta=0.1, max_length=256, gradient_checkpointing=True)
    assert on["activation_checkpointing"] is True
    assert {k: v for k, v in on.items() if k != "beta"} == training.sft_config(
        run, "out", learning_rate=5e-4, max_length=256, gradient_checkpointing=True)


@pytest.mark.parametrize("beta", [0, -0.1, True, "0.1"])
def test_dpo_config_refuses_a_bad_beta(tmp_path, beta):
    with pytest.raises(ValueError, match="beta"):
        training.dpo_config(_run(tmp_path), beta=beta)


# ---------------------------------------------------------------- the loss
def test_dpo_loss_formula_on_numbers():
    pc, pr = torch.tensor([-10.0, -20.0]), torch.tensor([-12.0, -15.0])
    rc, rr = torch.tensor([-11.0, -19.0]), torch.tensor([-11.0, -16.0])
    loss, chosen, rejected = training.dpo_loss(pc, pr, rc, rr, beta=0.5)
    # pair 1: 0.5 * ((1) - (-1)) = 1.0 ; pair 2: 0.5 * ((-1) - (1)) = -1.0
    expected = (-math.log(1 / (1 + math.exp(-1.0))) - math.log(1 / (1 + math.exp(1.0)))) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert chosen.tolist() == [0.5, -0.5] and rejected.tolist() == [-0.5, 0.5]
    same = torch.tensor([-3.0, -4.0])
    assert training.dpo_loss(same, same, same, same, 0.1)[0].item() == pytest.approx(math.log(2))


def test_our_tokenization_is_trls(tiny_model, tmp_path):
    trainer = _trainer(tiny_model, tmp_path, random_adapter=False)
    ours = training.tokenize_pairs(trainer.processing_class, CONV)
    for mine, theirs in zip(ours, trainer.train_dataset):
        assert (mine["prompt_ids"], mine["chosen_ids"], mine["rejected_ids"]) == (
            theirs["prompt_ids"], theirs["chosen_ids"], theirs["rejected_ids"])


def test_hand_written_dpo_loss_equals_trls_on_a_fixed_batch(tiny_model, tmp_path):
    trainer = _trainer(tiny_model, tmp_path, random_adapter=True, beta=0.1)
    policy = trainer.model.eval()
    batch = training.preference_batches(trainer.processing_class, CONV, batch_size=4, max_length=128)[0]
    pc, pr = training.completion_logps(policy, batch)
    with policy.disable_adapter():
        rc, rr = training.completion_logps(policy, batch)
    ours, _, _ = training.dpo_loss(pc, pr, rc, rr, beta=0.1)
    with torch.no_grad():
        theirs = trainer.compute_loss(policy, batch)
    assert abs(ours.item() - math.log(2)) > 1e-3  # policy != reference: not the trivial tie
    assert abs(ours.item() - theirs.item()) < 1e-4


def test_a_fresh_adapter_ties_every_pair_and_has_no_kl(tiny_model, tmp_path):
    trainer = _trainer(tiny_model, tmp_path, random_adapter=False)
    scores = training.preference_scores(trainer.model, trainer.processing_class, CONV, batch_size=2)
    acc, wins, ties, n = scores.accuracy()
    assert (acc, wins, ties, n) == (0.5, 0, 4, 4)  # a tie counts as half: chance
    assert scores.margins(0.1) == [0.0] * 4 and scores.kl_per_token == pytest.approx(0.0, abs=1e-6)
    assert all(c > 0 and r > 0 for c, r in zip(scores.chosen_tokens, scores.rejected_tokens))
    # The reference's own likelihood prefers the short chosen answers here (fewer tokens to pay for).
    assert scores.likelihood_accuracy() > 0.5


def test_dpo_training_moves_the_margin_up_and_stays_finite(tiny_model, tmp_path):
    trainer = _trainer(tiny_model, tmp_path, random_adapter=False, max_steps=4, learning_rate=1e-3)
    result = training.run_trainer(trainer, "dpo")
    assert all(math.isfinite(loss) for _, loss in result.loss_history)
    assert result.first_loss == pytest.approx(math.log(2), abs=1e-3)  # step 1 starts from policy == reference
    scores = training.preference_scores(trainer.model, trainer.processing_class, CONV, batch_size=4)
    assert sum(scores.margins(0.1)) / len(scores) > 0 and scores.accuracy()[0] > 0.5
    assert scores.kl_per_token > 0
