"""LoRA instruction tuning as a script that runs unchanged on one CPU, one GPU, or many GPUs.

One process:
    python -m gptforall_utils.recipes.sft --max-steps 50 --output-dir outputs/sft
Two CPU processes (DDP over gloo; how CI tests it). In accelerate 1.15 `--cpu` starts several
processes only through mpirun, so start them with torchrun (--multi_gpu) and hide the GPUs:
    CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 -m gptforall_utils.recipes.sft --max-steps 4
Several GPUs (configs/accelerate/):
    accelerate launch --config_file configs/accelerate/ddp_multi_gpu.yaml -m gptforall_utils.recipes.sft ...
    accelerate launch --config_file configs/accelerate/fsdp_multi_gpu.yaml -m gptforall_utils.recipes.sft ...

It is notebook 06's recipe: Dolly-schema rows become prompt/completion chat messages (`to_chat`), TRL's
SFTTrainer renders them with the model's chat template and scores the response tokens only
(completion_only_loss), and a LoRA adapter (r=16, alpha=32, every linear layer of the course's target list)
trains with the course's hardware rules (`training.sft_config`: fp32 on CPU, fp16 on a T4, bf16 on Ampere
and newer; gradient checkpointing only on a GPU). The same code serves every process count because the
Trainer asks `accelerate` how many processes there are: each rank gets its own shard of every batch,
gradients are averaged across ranks, and only the main process writes the adapter.

Learning is checked, not assumed: the mean cross-entropy on the response tokens of held-out pairs (the
data's test split, the chosen categories) is measured before and after training.

Outputs in --output-dir: `adapter/` (the LoRA adapter and tokenizer, written once by rank 0),
`summary.json` (rank 0: losses, held-out losses, time, sizes) and `rank<k>.json` per rank (the sample ids
that rank trained on and its loss history), so a run's sharding can be checked afterwards.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

EVAL_MAX_TOKENS = 1024  # held-out pairs are scored whole, up to this many tokens


def to_chat(row: dict) -> dict:
    """A Dolly row (instruction, context, response) as a TRL prompt/completion pair of chat messages:
    the user message is the instruction, followed by the context after a blank line when there is one."""
    user = row["instruction"] if not row["context"] else f"{row['instruction']}\n\n{row['context']}"
    return {"prompt": [{"role": "user", "content": user}],
            "completion": [{"role": "assistant", "content": row["response"]}]}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gptforall_utils.recipes.sft", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="auto", help="'auto', a catalog name, a Hub id or a local folder")
    p.add_argument("--data", default="auto", help="'auto' | 'hub' | 'offline' | a local .jsonl/.csv (Dolly schema)")
    p.add_argument("--profile", default="auto", help="smoke | cpu | gpu | auto (sizes the default batch)")
    p.add_argument("--output-dir", default="outputs/recipe_sft")
    p.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (-1: --epochs over the data)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=None, help="per-device batch (default: by profile)")
    p.add_argument("--grad-accum", type=int, default=None, help="gradient accumulation (default: by profile)")
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--max-length", type=int, default=512,
                   help="tokens per training example (TRL keeps the start: an over-long response is cut)")
    p.add_argument("--max-examples", type=int, default=None, help="use only N training pairs (a seeded random subset)")
    p.add_argument("--eval-examples", type=int, default=32,
                   help="held-out pairs (test split, chosen categories) scored before and after training; 0: none")
    p.add_argument("--categories", default=None,
                   help="comma-separated categories to keep (e.g. one adapter per task family); those the "
                        "data lacks are skipped and the choice printed")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-targets", default=None,
                   help="comma-separated linear layer names (default: training.DEFAULT_LORA_TARGETS, every "
                        "attention and MLP projection)")
    p.add_argument("--logging-steps", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p


def check_args(args: argparse.Namespace) -> None:
    """Refuse bad settings before any model or data is loaded."""
    if args.max_steps == 0 or args.max_steps < -1:
        raise ValueError(f"--max-steps must be positive (or -1 for whole epochs), got {args.max_steps}.")
    if args.max_steps == -1 and args.epochs <= 0:
        raise ValueError(f"--epochs must be positive, got {args.epochs}.")
    if args.max_length < 16:
        raise ValueError(f"--max-length {args.max_length} is too short for a prompt and a response; use >= 16.")
    if args.max_examples is not None and args.max_examples <= 0:
        raise ValueError(f"--max-examples must be positive, got {args.max_examples}.")
    if args.eval_examples < 0:
        raise ValueError(f"--eval-examples must be 0 (no held-out check) or positive, got {args.eval_examples}.")
    if not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be positive, got {args.learning_rate}.")
    if args.warmup_steps < 0:
        raise ValueError(f"--warmup-steps must be >= 0, got {args.warmup_steps}.")
    for name in ("batch_size", "grad_accum", "lora_r", "lora_alpha", "logging_steps"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}.")
    if args.lora_targets is not None and not lora_targets(args.lora_targets):
        raise ValueError(f"--lora-targets {args.lora_targets!r} names no layer; leave it out for the course's list.")


def lora_targets(value: str | None) -> tuple[str, ...]:
    """The layer names of --lora-targets, or the course's list (training.DEFAULT_LORA_TARGETS) when not given."""
    if value is None:
        from .. import training

        return tuple(training.DEFAULT_LORA_TARGETS)
    return tuple(t.strip() for t in value.split(",") if t.strip())


def choose_categories(present, wanted: str | None) -> list[str] | None:
    """The categories of `wanted` (comma-separated) that the data has, in the order asked; None: all.

    Different data have different categories (Dolly's eight, Alpaca's single "alpaca", a local file's
    own), so asked-for categories the data lacks are skipped, and the choice is printed. Raises
    ValueError when none of them is in the data, naming the categories it has.
    """
    if not wanted:
        return None
    asked = list(dict.fromkeys(c.strip() for c in wanted.split(",") if c.strip()))
    have = sorted(set(present))
    use = [c for c in asked if c in have]
    if not use:
        raise ValueError(f"--categories {asked}: none is in the data; its categories: {have}.")
    skipped = [c for c in asked if c not in have]
    print(f"categories: {', '.join(use)}" + (f" (not in this data: {', '.join(skipped)})" if skipped else ""),
          flush=True)
    return use


def category_groups(present, groups: dict[str, list[str] | tuple[str, ...]]) -> dict[str, str]:
    """For each named group of categories, the comma-separated ones the data has (for --categories).

    A group none of whose categories is in the data (Alpaca has the single category "alpaca") gets every
    category the data has. Prints the choice, so a run says what each adapter trained on.
    """
    have = sorted(set(present))
    out = {}
    for name, cats in groups.items():
        use = [c for c in cats if c in have]
        out[name] = ",".join(use or have)
        note = "" if use else f" (none of {', '.join(cats)} in this data: all of its categories)"
        print(f"{name}: {out[name]}{note}")
    return out


def select(train, categories: str | None, max_examples: int | None, seed: int = 0):
    """Filter the training split by category and size; every row keeps its original index as sample_id.

    max_examples takes a seeded random subset, not the first rows: a file sorted by category would otherwise
    leave whole categories out.
    """
    train = train.add_column("sample_id", list(range(len(train))))
    use = choose_categories(train["category"], categories)
    if use is not None:
        wanted = set(use)
        train = train.filter(lambda r: r["category"] in wanted)
    if max_examples is not None:
        train = train.shuffle(seed=seed).select(range(min(max_examples, len(train))))
    return train


def heldout(test, categories, n: int):
    """Up to n rows of the test split in `categories` (the ones training used), in split order, and a note.

    When the test split holds none of them (a tiny sample of the Hub data, say), every test row is used and
    the note says so; the held-out loss then measures the adapter on other categories.
    """
    if n == 0 or len(test) == 0:
        return test.select([]), "no held-out pairs"
    wanted = set(categories)
    rows = test.filter(lambda r: r["category"] in wanted)
    note = f"{', '.join(sorted(wanted))}"
    if len(rows) == 0:
        rows, note = test, f"the test split has none of {', '.join(sorted(wanted))}: all its categories"
    return rows.select(range(min(n, len(rows)))), note


def response_loss(model, tokenizer, chats) -> float:
    """Mean cross-entropy per response token (the assistant turn and its end-of-turn token) of prompt/completion
    chat pairs, the prompt rendered with the chat template's generation prompt and not scored; as TRL scores it."""
    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    for chat in chats:
        prompt = tokenizer.apply_chat_template(chat["prompt"], add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
        full = tokenizer.apply_chat_template(chat["prompt"] + chat["completion"], tokenize=True,
                                             return_dict=True)["input_ids"][:EVAL_MAX_TOKENS]
        ids = torch.tensor([full], device=device)
        labels = ids.clone()
        labels[:, :len(prompt)] = -100
        n = int((labels[:, 1:] != -100).sum())
        if n == 0:
            continue
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss
        total, count = total + float(loss) * n, count + n
    model.train(was_training)
    return total / count if count else float("nan")


class RecordingCollator:
    """Wraps TRL's collator: records which sample ids this rank trained on, and hands it the token columns only."""

    KEEP = ("input_ids", "labels", "seq_lengths")

    def __init__(self, collate):
        self.collate = collate
        self.batches: list[list[int]] = []

    def __call__(self, features):
        self.batches.append([int(f["sample_id"]) for f in features])
        return self.collate([{k: f[k] for k in self.KEEP if k in f} for f in features])


def main(argv: list[str] | None = None) -> dict:
    """Train a LoRA adapter; returns the summary (on every rank; only rank 0 writes files besides rank<k>.json)."""
    args = build_parser().parse_args(argv)
    check_args(args)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch
    from trl import SFTTrainer

    from .. import data, env, models, training

    out = Path(args.output_dir)
    profile = env.resolve_profile(args.profile)
    dev = env.device()
    run = env.Run(notebook="recipe_sft", profile=profile, model=args.model, data=args.data, seed=args.seed,
                  output_dir=out, device=dev, precision=env.precision(dev))
    env.seed_everything(args.seed)

    dd = data.load("instructions", source=args.data, seed=args.seed)
    train_rows = select(dd["train"], args.categories, args.max_examples, args.seed)
    if len(train_rows) == 0:
        raise ValueError("No training pairs left after --categories / --max-examples.")
    eval_rows, eval_note = heldout(dd["test"], sorted(set(train_rows["category"])), args.eval_examples)
    train_chat = train_rows.map(to_chat, remove_columns=[c for c in train_rows.column_names if c != "sample_id"])
    eval_chat = [to_chat(r) for r in eval_rows]
    tok = models.load_tokenizer(args.model, profile=profile)

    # fp32 master weights on the CPU; the Trainer moves them to this rank's device and runs
    # mixed precision (fp16/bf16) there when the hardware has it.
    model = models.load_model(args.model, profile=profile, device="cpu", dtype=torch.float32, verbose=False)
    config = training.sft_config(
        run, out / "checkpoints", learning_rate=args.learning_rate, epochs=args.epochs,
        batch_size=args.batch_size, grad_accum=args.grad_accum, max_steps=args.max_steps,
        logging_steps=args.logging_steps, warmup_steps=args.warmup_steps, max_length=args.max_length,
        completion_only_loss=True,        # loss on the response tokens only
        remove_unused_columns=False,      # keep sample_id for RecordingCollator (it passes on the token columns)
        ddp_find_unused_parameters=False,
    )
    lora = training.lora_config(model, r=args.lora_r, alpha=args.lora_alpha, target_modules=lora_targets(args.lora_targets))
    # The micro-batch and activation checkpointing follow this rank's card (same effective batch); a CPU: unchanged.
    config = training.fit_arguments(config, model, train_chat, verbose=False, tokenizer=tok, peft_config=lora)
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_chat, processing_class=tok, peft_config=lora)
    kept = len(trainer.train_dataset)
    if kept == 0:
        raise ValueError(f"--max-length {args.max_length}: each of the {len(train_chat)} training pairs has a prompt "
                         "(chat template, instruction and context) at least that long, so no response token is left "
                         "to train on (TRL drops such pairs); raise --max-length.")
    if kept < len(train_chat) and config.process_index == 0:
        print(f"{len(train_chat) - kept} of {len(train_chat)} pairs dropped: their prompt fills --max-length "
              f"{args.max_length}", flush=True)
    collate = RecordingCollator(trainer.data_collator)
    trainer.data_collator = collate
    rank, world = config.process_index, config.world_size
    global_batch = config.per_device_train_batch_size * config.gradient_accumulation_steps * world
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        print(f"recipe sft | {world} process(es) | device {config.device} | precision {run.precision} | "
              f"{len(trainer.train_dataset)} training pairs | global batch {global_batch} | "
              f"{len(eval_chat)} held-out pairs ({eval_note})", flush=True)

    # Every rank scores the held-out pairs (under FSDP a forward pass needs all ranks). LoRA's B matrices start
    # at zero, so the adapter model is the base model until the first step: its loss is the base model's.
    loss_before = response_loss(trainer.model, tok, eval_chat) if eval_chat else None
    result = training.run_trainer(trainer, "lora")
    losses = [loss for _, loss in result.loss_history]
    if not losses or not all(math.isfinite(v) for v in losses):
        raise RuntimeError(f"rank {rank}: training produced non-finite or no losses: {losses}")
    loss_after = response_loss(trainer.model, tok, eval_chat) if eval_chat else None

    adapter_dir = out / "adapter"
    trainer.save_model(str(adapter_dir))  # collective under FSDP; writes on the main process only
    wrote = bool(config.should_save)
    if wrote:
        tok.save_pretrained(adapter_dir)
    trainer.accelerator.wait_for_everyone()

    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.json").write_text(json.dumps({
        "rank": rank, "world_size": world, "batches": collate.batches, "loss_history": result.loss_history,
        "wrote_adapter": wrote,
    }) + "\n")
    summary = {
        "world_size": world,
        "device": str(config.device.type),
        "precision": run.precision,
        "train_examples": len(trainer.train_dataset),
        "categories": ",".join(sorted(set(train_rows["category"]))),
        "per_device_batch": config.per_device_train_batch_size,
        "global_batch": global_batch,
        "steps": trainer.state.global_step,
        "first_loss": result.first_loss,
        "final_loss": result.final_loss,
        "heldout_pairs": len(eval_chat),
        "heldout_categories": eval_note,
        "heldout_loss_before": loss_before,
        "heldout_loss_after": loss_after,
        "train_seconds": round(result.train_seconds, 2),
        "tokens_seen": result.tokens_seen,
        "tokens_per_second": round(result.tokens_per_second, 2),
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "lora_targets": list(lora_targets(args.lora_targets)),
        "adapter_dir": str(adapter_dir),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary, indent=2), flush=True)
    return summary


if __name__ == "__main__":
    main()
