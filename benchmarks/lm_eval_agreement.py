"""Does the course's multiple-choice score agree with lm-evaluation-harness's, on the same questions?

lm-eval is not a course dependency. Run this in a throwaway venv that has it (and can import the
course package), with the embedded model and the offline ARC-Easy rows; nothing reaches the Hub:

    python3.11 -m venv /tmp/lmeval && echo $PWD/.venv/lib/python3.11/site-packages \
        > /tmp/lmeval/lib/python3.11/site-packages/course.pth && /tmp/lmeval/bin/pip install lm-eval
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 flock /tmp/gptforall-cpu.lock \
        /tmp/lmeval/bin/python benchmarks/lm_eval_agreement.py --questions 40

Two checks: (1) per (question, choice), the course's `metrics.choice_logprobs` against lm-eval's
`HFLM.loglikelihood` on the same model object; (2) the whole lm-eval pipeline (`simple_evaluate` with an
ARC-Easy task defined on a local JSONL file of the same rows in the Hub's schema) against the course's
`acc` (summed) and `acc_norm` (per character) on the same questions. Writes results/lm_eval_agreement.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

RESULTS = Path(__file__).resolve().parent / "results"

TASK_YAML = """\
task: arc_easy_local
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {data_file}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{choices.label.index(answerKey)}}}}"
doc_to_choice: "{{{{choices.text}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import lm_eval
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from gptforall_utils import metrics, models
    from gptforall_utils.data import multiple_choice

    model = models.load_model("smollm2-135m-instruct", verbose=False)
    tok = models.load_tokenizer("smollm2-135m-instruct")
    raw = multiple_choice.offline_rows().shuffle(seed=args.seed).select(range(args.questions))
    rows = [multiple_choice.normalise(r) for r in raw]
    contexts = [f"Question: {r['question']}\nAnswer:" for r in rows]
    choices = [[" " + c for c in r["choices"]] for r in rows]

    # (1) per-choice log-likelihoods, same model object
    started = time.perf_counter()
    course = metrics.choice_logprobs(model, tok, contexts, choices)
    course_s = time.perf_counter() - started
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=8)
    requests = [Instance(request_type="loglikelihood", doc={}, arguments=(ctx, ch), idx=i)
                for q, ctx in enumerate(contexts) for i, ch in enumerate(choices[q])]
    started = time.perf_counter()
    harness = [ll for ll, _ in lm.loglikelihood(requests)]
    harness_s = time.perf_counter() - started
    flat = [s for q in course for s, _ in q]
    diffs = [abs(a - b) for a, b in zip(flat, harness)]

    # (2) the whole pipeline on a local copy of the same rows in the Hub's schema
    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "arc_easy.jsonl"
        data_file.write_text("".join(json.dumps(dict(r)) + "\n" for r in raw), encoding="utf-8")
        (Path(tmp) / "arc_easy_local.yaml").write_text(TASK_YAML.format(data_file=data_file), encoding="utf-8")
        manager = TaskManager(include_path=tmp)
        out = lm_eval.simple_evaluate(model=lm, tasks=["arc_easy_local"], task_manager=manager, log_samples=True,
                                      num_fewshot=0, bootstrap_iters=0)
    res = out["results"]["arc_easy_local"]
    samples = out["samples"]["arc_easy_local"]
    pipeline_ll = {s["doc"]["id"]: [r[0][0] for r in s["resps"]] for s in samples}
    pipeline_diffs = [abs(a - b) for r, q in zip(rows, course) for a, (b, _) in zip(pipeline_ll[r["id"]], q)]
    texts = [r["choices"] for r in rows]
    answers = [r["answer"] for r in rows]
    acc = metrics.accuracy(metrics.choice_predictions(course, texts, "none"), answers)
    acc_norm = metrics.accuracy(metrics.choice_predictions(course, texts, "chars"), answers)
    summary = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "lm_eval": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "unknown",
        "model": "SmolLM2-135M-Instruct (embedded, fp32)",
        "questions": args.questions,
        "choices_scored": len(flat),
        "max_abs_diff_loglikelihood": max(diffs),
        "mean_abs_diff_loglikelihood": sum(diffs) / len(diffs),
        "pipeline_max_abs_diff_loglikelihood": max(pipeline_diffs),
        "course_acc": acc, "harness_acc": res.get("acc,none"),
        "course_acc_norm": acc_norm, "harness_acc_norm": res.get("acc_norm,none"),
        "course_seconds": round(course_s, 1), "harness_seconds": round(harness_s, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lm_eval_agreement.json").write_text(json.dumps(summary, indent=2) + "\n")
    md = ["# lm-evaluation-harness vs the course's multiple-choice score", "",
          "Written by `benchmarks/lm_eval_agreement.py`; see benchmarks/README.md for the command.", "",
          "| measure | value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in summary.items()]
    (RESULTS / "lm_eval_agreement.md").write_text("\n".join(md) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
