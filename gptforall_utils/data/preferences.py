"""Task `preferences`: a prompt with a preferred (`chosen`) and a dispreferred (`rejected`) answer, for DPO.

Schema: {"prompt", "chosen", "rejected"}, three plain strings: the user's request and two assistant answers.

Hub: HuggingFaceH4/ultrafeedback_binarized (MIT), splits `train_prefs` -> train and `test_prefs` -> test.
There `chosen` and `rejected` are message lists ([user turn, assistant turn]); the assistant's text is kept,
and pairs that carry no preference (equal scores or equal texts) are dropped.

Offline: the prompts and reference answers of the `instructions` task (data/instructions_offline.jsonl, with
its fixed train/test split) as `prompt` and `chosen`, and `rejected` left empty: it is the model's own
sampled answer to the same prompt (self-generated negatives), so it can only be written by the model being
aligned, with `self_generated`. A local file in the schema works the same way; a row whose `rejected` is
empty gets a generated one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from . import Task, hub_dataset, instructions, register

HUB_ID = "HuggingFaceH4/ultrafeedback_binarized"
HUB_SPLITS = {"train": "train_prefs", "test": "test_prefs"}  # ours -> the Hub's
COLUMNS = {"prompt": str, "chosen": str, "rejected": str}


# ---------------------------------------------------------------- Hub
def assistant_text(answer) -> str:
    """The assistant's text of an answer given as a string or as a message list (the last assistant turn)."""
    if isinstance(answer, str):
        return answer
    turns = [m for m in answer if m.get("role") == "assistant"]
    if not turns:
        raise ValueError(f"An answer given as messages has no assistant turn: {str(answer)[:120]}")
    return turns[-1]["content"]


def from_hub_row(row: dict) -> dict:
    """One UltraFeedback-binarized row in the task's schema."""
    return {"prompt": row["prompt"], "chosen": assistant_text(row["chosen"]),
            "rejected": assistant_text(row["rejected"])}


def carries_a_preference(row: dict) -> bool:
    """False for a pair whose two answers are equal, or were scored equal (a tie teaches nothing)."""
    if row.get("score_chosen") is not None and row.get("score_chosen") == row.get("score_rejected"):
        return False
    return assistant_text(row["chosen"]).strip() != assistant_text(row["rejected"]).strip()


def hub():
    """train_prefs / test_prefs of UltraFeedback binarized, in the schema. The Instruct SmolLM2 models were
    themselves tuned with DPO on this dataset's train split, so only `test` is truly unseen by them."""
    from datasets import DatasetDict

    parts = {}
    for ours, theirs in HUB_SPLITS.items():
        ds = hub_dataset(HUB_ID, split=theirs)
        ds = ds.filter(carries_a_preference)
        parts[ours] = ds.map(from_hub_row, remove_columns=ds.column_names)
    return DatasetDict(parts)


# ---------------------------------------------------------------- offline: prompts and references
def instruction_prompt(row: dict) -> str:
    """An `instructions` row as the user's message: the instruction, then its context when there is one."""
    return row["instruction"] if not row["context"].strip() else f"{row['instruction']}\n\n{row['context']}"


def offline(seed: int = 0):
    """The instructions' prompts with their reference answers as `chosen`; `rejected` is left empty for the
    model to write (see `self_generated`). The file's own split is kept, so the test prompts never change."""
    dd = instructions.offline(seed)
    for name in list(dd):
        dd[name] = dd[name].map(lambda r: {"prompt": instruction_prompt(r), "chosen": r["response"], "rejected": ""},
                                remove_columns=dd[name].column_names)
    return dd


# ---------------------------------------------------------------- offline: self-generated negatives
def missing_rejected(dataset) -> int:
    """How many rows still need a `rejected` answer (an empty string)."""
    return sum(1 for r in dataset["rejected"] if not r.strip())


def cache_key(**parts) -> str:
    """A short, stable name for what produced a set of generated answers (model, seed, sizes, decoding)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def self_generated(dd, generate: Callable[[list[str]], list[str]], cache_dir: str | Path | None = None,
                   key: dict | None = None):
    """Fill every empty `rejected` with the model's own answer to the prompt: `generate(prompts) -> answers`.

    With `cache_dir`, the answers are kept in `<cache_dir>/self_generated_<hash of key>.json` and a later run
    with the same key (model, seed, sizes, decoding) reads them instead of generating again. A generated
    answer equal to `chosen` makes no pair (a tie), so that row is dropped. Returns (DatasetDict, info).
    """
    from datasets import DatasetDict

    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"self_generated_{cache_key(**(key or {}))}.json"
    stored = json.loads(cache.read_text(encoding="utf-8")) if cache is not None and cache.is_file() else {}
    out, info = {}, {"generated": 0, "from_cache": 0, "dropped_ties": 0, "cache": str(cache) if cache else ""}
    for name, ds in dd.items():
        todo = [i for i, r in enumerate(ds["rejected"]) if not r.strip()]
        prompts = [ds[i]["prompt"] for i in todo]
        previous = stored.get(name, {})
        if todo and previous.get("prompts") == prompts:
            answers = previous["answers"]
            info["from_cache"] += len(answers)
        elif todo:
            answers = [a.strip() for a in generate(prompts)]
            if len(answers) != len(prompts):
                raise ValueError(f"generate() returned {len(answers)} answers for {len(prompts)} prompts.")
            info["generated"] += len(answers)
            stored[name] = {"prompts": prompts, "answers": answers}
        else:
            answers = []
        filled = list(ds["rejected"])
        for i, answer in zip(todo, answers):
            filled[i] = answer
        ds = ds.remove_columns("rejected").add_column("rejected", filled)
        keep = [i for i, r in enumerate(ds) if r["rejected"].strip() and r["rejected"].strip() != r["chosen"].strip()]
        info["dropped_ties"] += len(ds) - len(keep)
        out[name] = ds.select(keep)
    if cache is not None and info["generated"]:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key or {}, **stored}, ensure_ascii=False, indent=1), encoding="utf-8")
    return DatasetDict(out), info


def check_pairs(dataset, origin: str = "preference pairs") -> None:
    """Refuse pairs DPO cannot learn from, before training: an empty `rejected` or `chosen` == `rejected`."""
    empty = missing_rejected(dataset)
    if empty:
        raise ValueError(f"{origin}: {empty} row(s) have an empty 'rejected'; fill them with "
                         "preferences.self_generated(...) (the model's own answers) first.")
    same = sum(1 for c, r in zip(dataset["chosen"], dataset["rejected"]) if c.strip() == r.strip())
    if same:
        raise ValueError(f"{origin}: {same} row(s) have chosen == rejected; such a pair carries no preference.")


def as_conversation(row: dict) -> dict:
    """A pair as TRL's conversational preference format: the prompt as a user turn, each answer as an
    assistant turn, so the trainer renders them with the model's chat template."""
    return {"prompt": [{"role": "user", "content": row["prompt"]}],
            "chosen": [{"role": "assistant", "content": row["chosen"]}],
            "rejected": [{"role": "assistant", "content": row["rejected"]}]}


def lengths_in_words(texts: Sequence[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def check_file(dataset, origin: str = "data") -> None:
    """A local file: a pair whose rejected answer equals the chosen one carries no preference (refused at load, before
    any model; an empty `rejected` is left for the model to write, see self_generated)."""
    same = [i for i, (c, r) in enumerate(zip(dataset["chosen"], dataset["rejected"]))
            if r and r.strip() and c.strip() == r.strip()]
    if same:
        rows = ", ".join(str(i) for i in same[:8]) + (f", ... ({len(same)} rows)" if len(same) > 8 else "")
        raise ValueError(f"{origin}: row(s) {rows} have `rejected` equal to `chosen` (rows count from 0): such a pair "
                         f"carries no preference. Give a worse answer, or leave `rejected` empty for the model to "
                         f"write its own.")


TASK = register(Task(
    name="preferences",
    columns=COLUMNS,
    hub=hub,
    offline=offline,
    test_size=0.1,
    description="Prompt with a chosen and a rejected answer (DPO)",
    may_be_empty=("rejected",),
    check=check_file,
    hub_datasets=((HUB_ID, None),),
    hub_source=f"{HUB_ID} (train_prefs / test_prefs; assistant turns of chosen/rejected)",
    offline_source=f"{instructions.TASK.offline_source}: prompt + reference answer; rejected = the model's own answer",
))
