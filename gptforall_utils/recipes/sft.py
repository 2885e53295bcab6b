"""LoRA instruction tuning as a script that runs unchanged on one CPU, one GPU, or many GPUs.

One process:
    python -m gptforall_utils.recipes.sft --max-steps 50 --output-dir outputs/sft
Two CPU processes (DDP over gloo; how CI tests it). In accelerate 1.15 `--cpu` starts several
processes only through mpirun, so start them with torchrun (--multi_gpu) and hide the GPUs:
    CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 -m gptforall_utils.recipes.sft --max-steps 4
Several GPUs (configs/accelerate/):
    accelerate launch --config_file configs/accelerate/ddp_multi_gpu.yaml -m gptforall_utils.recipes.sft ...
    accelerate launch --config_file configs/accelerate/fsdp_multi_gpu.yaml -m gptforall_utils.recipes.sft ...

The same code serves every case because transformers' Trainer asks `accelerate` how many
processes there are: each rank gets its own shard of every batch, gradients are averaged across
ranks, and only the main process writes the adapter. Data: the `instructions` task (Dolly schema),
prompts in the Alpaca template, loss on the response tokens only. Precision follows the hardware
(fp32 on CPU, fp16 on a T4, bf16 on Ampere and newer).

Outputs in --output-dir: `adapter/` (the LoRA adapter and tokenizer, written once by rank 0),
`summary.json` (rank 0: losses, time, sizes) and `rank<k>.json` per rank (the sample ids that rank
trained on and its loss history), so a run's sharding can be checked afterwards.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

DEFAULT_TARGETS = "q_proj,k_proj,v_proj,o_proj"


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
    p.add_argument("--max-length", type=int, default=256, help="tokens per example (prompt cut from the left)")
    p.add_argument("--max-examples", type=int, default=None, help="use only the first N training pairs")
    p.add_argument("--categories", default=None,
                   help="comma-separated categories to keep (e.g. one adapter per task family); those the "
                        "data lacks are skipped and the choice printed")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=int, default=16)
    p.add_argument("--lora-targets", default=DEFAULT_TARGETS, help="comma-separated linear layer names")
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
    for name in ("batch_size", "grad_accum"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}.")


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


def select(train, categories: str | None, max_examples: int | None):
    """Filter the training split by category and size; every row keeps its original index as sample_id."""
    train = train.add_column("sample_id", list(range(len(train))))
    use = choose_categories(train["category"], categories)
    if use is not None:
        wanted = set(use)
        train = train.filter(lambda r: r["category"] in wanted)
    if max_examples is not None:
        train = train.select(range(min(max_examples, len(train))))
    return train


def tokenize(tok, rows, max_length: int):
    """Alpaca prompt + response, loss on the response only (training.prompt_completion_dataset)."""
    from .. import prompts, training

    texts = [prompts.alpaca_prompt(r["instruction"], r["context"]) for r in rows]
    ds = training.prompt_completion_dataset(tok, texts, [r["response"] for r in rows], max_length=max_length)
    return ds.add_column("sample_id", [r["sample_id"] for r in rows])


class RecordingCollator:
    """Pads a batch and records which sample ids this rank trained on (then drops them)."""

    def __init__(self, tokenizer):
        from .. import training

        self.pad = training.collator(tokenizer)
        self.batches: list[list[int]] = []

    def __call__(self, features):
        ids = [int(f.pop("sample_id")) for f in features]
        self.batches.append(ids)
        return self.pad(features)


def main(argv: list[str] | None = None) -> dict:
    """Train a LoRA adapter; returns the summary (on every rank; only rank 0 writes files besides rank<k>.json)."""
    args = build_parser().parse_args(argv)
    check_args(args)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch
    from peft import get_peft_model
    from transformers import Trainer

    from .. import data, env, models, training

    out = Path(args.output_dir)
    profile = env.resolve_profile(args.profile)
    dev = env.device()
    run = env.Run(notebook="recipe_sft", profile=profile, model=args.model, data=args.data, seed=args.seed,
                  output_dir=out, device=dev, precision=env.precision(dev))
    env.seed_everything(args.seed)

    dd = data.load("instructions", source=args.data, seed=args.seed)
    train_rows = select(dd["train"], args.categories, args.max_examples)
    tok = models.load_tokenizer(args.model, profile=profile)
    train_ds = tokenize(tok, train_rows, args.max_length)

    # fp32 master weights on the CPU; the Trainer moves them to this rank's device and runs
    # mixed precision (fp16/bf16) there when the hardware has it.
    model = models.load_model(args.model, profile=profile, device="cpu", dtype=torch.float32, verbose=False)
    targets = [t.strip() for t in args.lora_targets.split(",") if t.strip()]
    model = get_peft_model(model, training.lora_config(model, r=args.lora_r, alpha=args.lora_alpha,
                                                       target_modules=targets))
    targs = training.training_arguments(
        run, out / "checkpoints", learning_rate=args.learning_rate, epochs=args.epochs,
        batch_size=args.batch_size, grad_accum=args.grad_accum, max_steps=args.max_steps,
        logging_steps=args.logging_steps, ddp_find_unused_parameters=False,
    )
    collate = RecordingCollator(tok)
    trainer = Trainer(model=model, args=targs, train_dataset=train_ds, data_collator=collate)
    rank, world = targs.process_index, targs.world_size
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        print(f"recipe sft | {world} process(es) | device {targs.device} | precision {run.precision} | "
              f"{len(train_ds)} training pairs | global batch "
              f"{targs.per_device_train_batch_size * targs.gradient_accumulation_steps * world}", flush=True)

    result = training.run_trainer(trainer, "lora")
    losses = [loss for _, loss in result.loss_history]
    if not losses or not all(math.isfinite(v) for v in losses):
        raise RuntimeError(f"rank {rank}: training produced non-finite or no losses: {losses}")

    adapter_dir = out / "adapter"
    trainer.save_model(str(adapter_dir))  # collective under FSDP; writes on the main process only
    wrote = bool(targs.should_save)
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
        "device": str(targs.device.type),
        "precision": run.precision,
        "train_examples": len(train_ds),
        "per_device_batch": targs.per_device_train_batch_size,
        "global_batch": targs.per_device_train_batch_size * targs.gradient_accumulation_steps * world,
        "steps": trainer.state.global_step,
        "first_loss": result.first_loss,
        "final_loss": result.final_loss,
        "train_seconds": round(result.train_seconds, 2),
        "tokens_seen": result.tokens_seen,
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "adapter_dir": str(adapter_dir),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary, indent=2), flush=True)
    return summary


if __name__ == "__main__":
    main()
