"""Training throughput on this machine: the project's settings vs Trainer/TRL defaults, as a share of the
machine's own matmul peak, and the padding share of training batches.

Run by hand, serialised with the other heavy jobs:
    flock /tmp/gptforall-cpu.lock python benchmarks/bench_training.py [--steps 6] [--examples 96]
Writes benchmarks/results/training_<device>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from gptforall_utils import data, env, memory, models, prompts, training

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """fp32 (CPU) or bf16 (GPU) GEMM throughput of this machine, measured now: the ceiling to compare to."""
    dev = env.device()
    dtype = torch.float32 if dev == "cpu" else torch.bfloat16
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        torch.matmul(a, b)
        if dev == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def body_linear_params(model) -> int:
    """Parameters in the transformer blocks' Linear layers (the matmuls every token goes through)."""
    return sum(m.weight.numel() for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and "lm_head" not in name)


class StepClock:
    """Trainer callback: wall time and tokens seen at each optimizer step (the first step is warm-up)."""

    def __init__(self):
        self.marks = []

    def callback(self):
        from transformers import TrainerCallback

        clock = self

        class _CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                clock.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))
        return _CB()

    def tokens_per_second(self) -> float:
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        return (n1 - n0) / (t1 - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--examples", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    a = ap.parse_args(argv)
    if a.steps < 2 or a.batch < 1 or a.examples < a.batch:
        raise ValueError("Need --steps >= 2, --batch >= 1 and --examples >= --batch.")

    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments
    from trl import SFTConfig, SFTTrainer

    run = env.start("bench_training", "cpu" if env.device() == "cpu" else "gpu", output_dir="/tmp/bench_training")
    tok = models.load_tokenizer("auto")
    dd = data.load("sentiment", "offline", seed=0)
    P = prompts.SENTIMENT
    train = data.sample(dd["train"], 480, seed=0)
    rendered = [P.render(tok, t) for t in train["text"]]
    targets = [P.target(y) for y in train["label"]]
    full_ds = training.prompt_completion_dataset(tok, rendered, targets)
    ds = full_ds.select(range(a.examples))
    sft_ds = ds.__class__.from_dict({"prompt": rendered[:a.examples],
                                     "completion": [t + tok.eos_token for t in targets[:a.examples]]})
    peak = matmul_peak_gflops()
    print(f"matmul peak {peak:.1f} GFLOP/s")
    mean_len = sum(len(x) for x in ds["input_ids"]) / len(ds)

    rows = []
    for method in ("lora", "full"):
        for setting in ("project", "trainer_defaults", "trl_defaults"):
            # Drop the previous row's model and hand its freed heap back to the OS: otherwise glibc keeps it,
            # the next row reuses it without growing RSS, and every row after the first looks smaller.
            model = trainer = None
            memory.release_freed_memory()
            model = models.load_model("auto", verbose=False)
            n_body = body_linear_params(model)
            if method == "lora":
                model = get_peft_model(model, training.lora_config(model))
            clock = StepClock()
            out = f"/tmp/bench_training/{method}_{setting}"
            common = dict(output_dir=out, max_steps=a.steps, per_device_train_batch_size=a.batch,
                          learning_rate=1e-4, report_to="none", save_strategy="no", logging_steps=1,
                          include_num_input_tokens_seen="non_padding")
            if setting == "project":
                args = training.training_arguments(run, out, batch_size=a.batch, max_steps=a.steps,
                                                   learning_rate=1e-4, logging_steps=1)
                trainer = training._trainer_class()(model=model, args=args, train_dataset=ds,
                                                    data_collator=training.collator(tok, "left"),
                                                    callbacks=[clock.callback()])
            elif setting == "trainer_defaults":
                args = TrainingArguments(use_cpu=run.device == "cpu", remove_unused_columns=False, **common)
                trainer = Trainer(model=model, args=args, train_dataset=ds,
                                  data_collator=training.collator(tok, "right"), callbacks=[clock.callback()])
            else:  # TRL's SFTConfig defaults: bf16 and gradient checkpointing on (use_cpu is needed on a CPU)
                args = SFTConfig(use_cpu=run.device == "cpu", **common)
                trainer = SFTTrainer(model=model, args=args, train_dataset=sft_ds, processing_class=tok,
                                     callbacks=[clock.callback()])
            res = training.run_trainer(trainer, method)
            tps = clock.tokens_per_second()
            # Useful matmul work per real token: forward 2N; backward 2N for activations, + 2N for weight
            # gradients in full fine-tuning (LoRA's small matrices add < 2%). The LM head is left out:
            # only answer tokens need it.
            flops_per_token = (6 if method == "full" else 4) * n_body
            rows.append({
                "method": method, "setting": setting, "bf16": bool(args.bf16),
                "gradient_checkpointing": bool(getattr(args, "activation_checkpointing", False)),
                "tokens_per_second": round(tps, 1),
                "seconds_per_step": round((clock.marks[-1][0] - clock.marks[0][0]) / (len(clock.marks) - 1), 2),
                "share_of_matmul_peak": round(tps * flops_per_token / (peak * 1e9), 3),
                "peak_memory_mb": round(res.peak_memory_mb, 1), "final_loss": round(res.final_loss, 4),
            })
            print(rows[-1], flush=True)

    padding = {f"batch {a.batch}, {name}": round(training.padding_share(full_ds, a.batch, group_by_length=g), 4)
               for name, g in (("random batches", False), ("length-grouped", True))}
    result = {"machine": platform.processor() or platform.machine(), "device": run.device,
              "torch_threads": torch.get_num_threads(), "matmul_peak_gflops": round(peak, 1),
              "steps": a.steps, "batch": a.batch, "examples": a.examples, "mean_tokens_per_example": round(mean_len, 1),
              "runs": rows, "padding_share": padding, "date": time.strftime("%Y-%m-%d")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"training_{run.device}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Training throughput ({run.device}, {result['torch_threads']} threads, {result['date']})", "",
             f"fp32 matmul peak measured in the same run: {peak:.1f} GFLOP/s. Sentiment prompts, "
             f"{mean_len:.0f} tokens per example on average, batch {a.batch}, {a.steps} steps (first is warm-up).",
             "", "| method | setting | bf16 | grad. ckpt | tokens/s | s/step | share of matmul peak | peak MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['setting']} | {r['bf16']} | {r['gradient_checkpointing']} | "
                     f"{r['tokens_per_second']} | {r['seconds_per_step']} | {r['share_of_matmul_peak']:.1%} | "
                     f"{r['peak_memory_mb']} |")
    lines += ["", "Padding share of training batches (480 examples):", ""]
    lines += [f"- {k}: {v:.1%}" for k, v in padding.items()]
    (RESULTS / f"training_{run.device}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
