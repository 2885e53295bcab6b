"""The course's multiple-choice log-likelihoods equal lm-evaluation-harness's (where lm-eval is installed).

lm-eval is not a course dependency; this runs where it is (see benchmarks/lm_eval_agreement.py for the
throwaway venv) and is skipped elsewhere.
"""

from __future__ import annotations

import pytest

from gptforall_utils import metrics
from gptforall_utils.data import multiple_choice


def test_choice_logprobs_equal_the_harness_loglikelihoods(tiny_model):
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    model, tok = tiny_model
    rows = [multiple_choice.normalise(r) for r in multiple_choice.offline_rows().select(range(4))]
    contexts = [f"Question: {r['question']}\nAnswer:" for r in rows]
    choices = [[" " + c for c in r["choices"]] for r in rows]
    course = [s for q in metrics.choice_logprobs(model, tok, contexts, choices) for s, _ in q]
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=4)
    requests = [Instance(request_type="loglikelihood", doc={}, arguments=(ctx, ch), idx=i)
                for ctx, chs in zip(contexts, choices) for i, ch in enumerate(chs)]
    harness = [ll for ll, _ in lm.loglikelihood(requests)]
    assert course == pytest.approx(harness, abs=1e-3)
