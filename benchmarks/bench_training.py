"""Training throughput on this machine: the project's settings vs Trainer/TRL defaults, as a share of the
machine's own matmul peak, and the padding share of training batches.

Run by hand, serialised with the other heavy jobs (CPU), or on a GPU machine (device and precision come from
the environment: env.device(), env.precision(), so GPTFORALL_PRECISION / GPTFORALL_GPU_MEMORY_GB apply):
    flock /tmp/gptforall-cpu.lock python benchmarks/bench_training.py [--steps 6] [--examples 96]
    python benchmarks/bench_training.py --examples 512            # on a GPU: also the course's batch
Writes benchmarks/results/training_<device>.json and .md (--name changes the file stem).

--trimmed (what benchmarks/gpu_session.sh runs on a GPU): only TRL's defaults and the project's settings, LoRA and
full fine-tuning, at --batch and then at the course's batch, each reference row just before the project row it is
compared with; every row is appended to the .md and the .json is rewritten as soon as the row is measured, so a run
cut by a deadline keeps every row finished before the cut (the .md's last line says "finished" when nothing was cut).

The two training stacks (issue 14): `--task instructions --settings project,trl_course` compares, on the same
instruction data, the course's Trainer (answer-only logits) with TRL's SFTTrainer under the same hardware settings
(`training.sft_config`, completion-only loss); `--task sentiment` does the same on one-token answers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from gptforall_utils import data, env, memory, models, prompts, training
from gptforall_utils.recipes import sft

RESULTS = Path(__file__).resolve().parent / "results"
# Notebook 04's gpu profile asks for batch 16 x 4 accumulation: the effective batch the course plans with.
COURSE_GPU_BATCH = (16, 4)
PADDING_EXAMPLES = 480  # notebook 04's cpu-profile training set
TASKS = ("sentiment", "instructions")
# project: training.train's Trainer; trainer_defaults: stock Trainer; trl_defaults: SFTTrainer with SFTConfig's
# defaults; trl_course: SFTTrainer with the course's hardware settings (training.sft_config), as notebook 06 uses it.
SETTINGS = ("project", "trainer_defaults", "trl_defaults", "trl_course")


def matmul_peak_gflops(dev: str, n: int | None = None, repeats: int = 10) -> float:
    """fp32 (CPU) or bf16 (GPU) GEMM throughput of this machine, measured now: the ceiling to compare to."""
    n = n or (2048 if dev == "cpu" else 8192)  # a GPU needs a large matmul to approach its peak
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

    def __init__(self, device: str):
        self.device = device
        self.marks = []

    def callback(self):
        from transformers import TrainerCallback

        clock = self

        class _CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                if clock.device == "cuda":
                    torch.cuda.synchronize()
                clock.marks.append((time.perf_counter(), int(state.num_input_tokens_seen)))
        return _CB()

    def tokens_per_second(self) -> float:
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        return (n1 - n0) / (t1 - t0)

    def seconds_per_step(self) -> float:
        return (self.marks[-1][0] - self.marks[0][0]) / (len(self.marks) - 1)


def course_batch(run, method: str, ds, probe_model) -> int:
    """The micro-batch the course would pick here for notebook 04's gpu-profile batch (16 x 4): the memory plan
    against this card (training.memory_plan). On a CPU the course trains at the cpu profile's batch."""
    if run.device != "cuda":
        return training.PROFILE_BATCHES["cpu"][0]
    args = training.training_arguments(run, "/tmp/bench_training/plan", batch_size=COURSE_GPU_BATCH[0],
                                       grad_accum=COURSE_GPU_BATCH[1])
    plan = training.memory_plan(probe_model, ds, args)
    print(f"{method}: the course's plan on this card: {plan.describe()}")
    return plan.batch_size


TRIMMED_SETTINGS = ("trl_defaults", "project")
RATIOS = ("trl_defaults", "trainer_defaults", "trl_course")


def add_ratios(row: dict, rows: list[dict], batch8: int) -> dict:
    """The project row's tokens/s over each reference setting's at the same method and batch, and over TRL's
    defaults at --batch, from the rows measured so far (None where that row is not there)."""
    if row["setting"] != "project":
        return row

    def tps(method, batch, setting):
        return next((r["tokens_per_second"] for r in rows
                     if (r["method"], r["batch"], r["setting"]) == (method, batch, setting)), None)

    for other in RATIOS:
        same = tps(row["method"], row["batch"], other)
        row[f"vs_{other}"] = round(row["tokens_per_second"] / same, 2) if same else None
    at8 = tps(row["method"], batch8, "trl_defaults")
    row[f"vs_trl_defaults_at_batch_{batch8}"] = round(row["tokens_per_second"] / at8, 2) if at8 else None
    return row


def row_line(r: dict, batch8: int) -> str:
    ratios = [r.get("vs_trl_defaults"), r.get("vs_trainer_defaults"), r.get("vs_trl_course"),
              r.get(f"vs_trl_defaults_at_batch_{batch8}")]
    cells = " | ".join("" if x is None else f"{x:.2f}x" for x in ratios)
    return (f"| {r['method']} | {r['batch']} | {r['setting']} | {r['precision']} | "
            f"{r['gradient_checkpointing']} | {r['tokens_per_second']:,.1f} | {r['seconds_per_step']} | "
            f"{r['share_of_matmul_peak']:.1%} | {r['peak_memory_mb']:,.1f} | {cells} |")


def write_json(path: Path, result: dict) -> None:
    """Replace the file in one step (a reader, or a cut, never sees half a file)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--examples", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--name", default=None, help="results file stem (default training_<device>)")
    ap.add_argument("--task", default="sentiment", choices=TASKS,
                    help="sentiment: one-token answers (notebook 04); instructions: long answers (notebook 06)")
    ap.add_argument("--settings", default=None,
                    help=f"comma-separated subset of {SETTINGS} (default: all; with --trimmed: trl_defaults,project)")
    ap.add_argument("--methods", default="lora,full", help="comma-separated subset of lora,full")
    ap.add_argument("--trimmed", action="store_true",
                    help="rows in priority order (--batch first, each reference just before its project row), "
                         "each appended to the .md and .json as soon as it is measured")
    ap.add_argument("--results-dir", default=str(RESULTS), help="where the .md and .json go (default benchmarks/results)")
    a = ap.parse_args(argv)
    if a.steps < 2 or a.batch < 1 or a.examples < a.batch:
        raise ValueError("Need --steps >= 2, --batch >= 1 and --examples >= --batch.")
    settings_arg = a.settings or ",".join(TRIMMED_SETTINGS if a.trimmed else SETTINGS)
    settings = [x.strip() for x in settings_arg.split(",") if x.strip()]
    methods = [x.strip() for x in a.methods.split(",") if x.strip()]
    unknown = [x for x in settings if x not in SETTINGS] + [x for x in methods if x not in ("lora", "full")]
    if unknown or not settings or not methods:
        raise ValueError(f"Unknown or empty --settings/--methods {unknown}: settings are {SETTINGS}, "
                         "methods lora and full.")
    if a.trimmed:  # the references first, so each project row is written with its ratios
        settings = sorted(settings, key=lambda x: x == "project")

    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments
    from trl import SFTConfig, SFTTrainer

    run = env.start("bench_training", "cpu" if env.device() == "cpu" else "gpu", output_dir="/tmp/bench_training")
    tok = models.load_tokenizer("auto")
    P = prompts.SENTIMENT
    if a.task == "sentiment":
        dd = data.load("sentiment", "offline", seed=0)
        # --examples takes that many distinct training snippets from the offline pool (7,673); beyond the pool the
        # examples repeat in the same order (the benchmark measures speed, not learning).
        pool = data.sample(dd["train"], min(len(dd["train"]), max(PADDING_EXAMPLES, a.examples)), seed=0)
        order = [i % len(pool) for i in range(a.examples)]
        rendered = [P.render(tok, pool["text"][i]) for i in order]
        targets = [P.target(pool["label"][i]) for i in order]
    else:  # notebook 06's data and chat format: the user turn (instruction + context) and the answer
        pool = data.load("instructions", "offline", seed=0)["train"].shuffle(seed=0)
        order = [i % len(pool) for i in range(a.examples)]
        chats = [sft.to_chat(pool[i]) for i in order]  # notebook 06's mapping, as its recipe exports it
        rendered = [tok.apply_chat_template(c["prompt"], add_generation_prompt=True, tokenize=False) for c in chats]
        targets = [pool[i]["response"] for i in order]
    ds = training.prompt_completion_dataset(tok, rendered, targets)
    sft_ds = ds.__class__.from_dict({"prompt": rendered, "completion": [t + tok.eos_token for t in targets]})
    peak = matmul_peak_gflops(run.device)
    print(f"matmul peak {peak:.1f} GFLOP/s ({'fp32' if run.device == 'cpu' else 'bf16'})")
    mean_len = sum(len(x) for x in ds["input_ids"]) / len(ds)
    answer_share = sum(sum(y != -100 for y in x) for x in ds["labels"]) / sum(len(x) for x in ds["labels"])

    def load(method):
        model = models.load_model("auto", full_finetuning=method == "full", verbose=False)
        n_body = body_linear_params(model)
        if method == "lora":
            model = get_peft_model(model, training.lora_config(model))
        return model, n_body

    def measure(method: str, batch: int, setting: str) -> dict:
        """One row: `setting` training `method` at micro-batch `batch` for --steps steps, timed after the first."""
        # The previous row's model is gone (it was local to the last call); hand its freed heap back to the OS:
        # otherwise glibc keeps it, the next row reuses it without growing RSS, and every row after the first
        # looks smaller.
        memory.release_freed_memory()
        model, n_body = load(method)
        clock = StepClock(run.device)
        out = f"/tmp/bench_training/{method}_{setting}_{batch}"
        common = dict(output_dir=out, max_steps=a.steps, per_device_train_batch_size=batch,
                      learning_rate=1e-4, report_to="none", save_strategy="no", logging_steps=1,
                      include_num_input_tokens_seen="non_padding")
        if setting == "project":
            # What training.train does: the course's arguments fitted to the card, answer-only logits,
            # right padding, length grouping.
            args = training.training_arguments(run, out, batch_size=batch, grad_accum=1, max_steps=a.steps,
                                               learning_rate=1e-4, logging_steps=1)
            args = training.fit_arguments(args, model, ds)
            trainer = training._trainer_class()(model=model, args=args, train_dataset=ds,
                                                data_collator=training.collator(tok, training.TRAINING_PADDING_SIDE),
                                                callbacks=[clock.callback()])
        elif setting == "trainer_defaults":
            args = TrainingArguments(use_cpu=run.device == "cpu", remove_unused_columns=False, **common)
            trainer = Trainer(model=model, args=args, train_dataset=ds,
                              data_collator=training.collator(tok, "right"), callbacks=[clock.callback()])
        elif setting == "trl_course":
            # TRL's SFTTrainer under the course's hardware rules (notebook 06): same precision, no
            # checkpointing unless needed, loss on the completion only. What differs from "project" is TRL.
            args = training.sft_config(run, out, batch_size=batch, grad_accum=1, max_steps=a.steps,
                                       learning_rate=1e-4, logging_steps=1, completion_only_loss=True,
                                       save_strategy="no", include_num_input_tokens_seen="non_padding")
            args = training.fit_arguments(args, model, ds)
            trainer = SFTTrainer(model=model, args=args, train_dataset=sft_ds, processing_class=tok,
                                 callbacks=[clock.callback()])
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
        return {
            "method": method, "batch": args.per_device_train_batch_size, "setting": setting,
            "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
            "gradient_checkpointing": bool(getattr(args, "activation_checkpointing", False)),
            "tokens_per_second": round(tps, 1), "seconds_per_step": round(clock.seconds_per_step(), 3),
            "share_of_matmul_peak": round(tps * flops_per_token / (peak * 1e9), 4),
            "peak_memory_mb": round(res.peak_memory_mb, 1), "final_loss": round(res.final_loss, 4),
        }

    def course_batch_for(method: str) -> int:
        probe, _ = load(method)
        return course_batch(run, method, ds, probe)

    if a.task == "sentiment":
        padding_ds = training.prompt_completion_dataset(
            tok, [P.render(tok, t) for t in pool["text"][:PADDING_EXAMPLES]],
            [P.target(y) for y in pool["label"][:PADDING_EXAMPLES]])
    else:
        padding_ds = ds.select(range(min(len(ds), PADDING_EXAMPLES)))
    padding = {f"batch {a.batch}, {name}": round(training.padding_share(padding_ds, a.batch, group_by_length=g), 4)
               for name, g in (("random batches", False), ("length-grouped", True))}
    info = env.environment()
    machine = info.get("gpu") or platform.processor() or platform.machine()
    overrides = {k: info[k] for k in (env.PRECISION_ENV, env.GPU_MEMORY_ENV) if info.get(k, "unset") != "unset"}
    rows: list[dict] = []
    result = {"machine": machine, "device": run.device, "precision": run.precision, "overrides": overrides,
              "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "matmul_peak_gflops": round(peak, 1), "steps": a.steps, "examples": a.examples,
              "distinct_examples": min(a.examples, len(pool)), "mean_tokens_per_example": round(mean_len, 1),
              "task": a.task, "answer_token_share": round(answer_share, 4),
              "runs": rows, "padding_share": padding, "date": time.strftime("%Y-%m-%d %H:%M %Z")}
    if a.trimmed:
        result.update(trimmed=True, complete=False)
    results_dir = Path(a.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = a.name or f"training_{run.device}"
    md, js = results_dir / f"{stem}.md", results_dir / f"{stem}.json"
    peak_kind = "fp32" if run.device == "cpu" else "bf16"
    where = f"{machine}" + (f", {info['gpu_memory_gb']} GiB" if "gpu_memory_gb" in info else "")
    lines = [f"# Training throughput ({run.device}: {where}; {result['date']})", "",
             f"Measured by `benchmarks/bench_training.py{' --trimmed' if a.trimmed else ''}` (torch {torch.__version__}, "
             f"{result['torch_threads']} CPU threads{', overrides ' + str(overrides) if overrides else ''}). {peak_kind} "
             f"matmul peak measured in the same run: {peak:,.1f} GFLOP/s. {a.task.capitalize()} prompts, {mean_len:.0f} "
             f"tokens per example on average, {a.examples} examples ({result['distinct_examples']} distinct), "
             f"{a.steps} steps per row (the first is warm-up and not timed). Tokens that carry loss (the answer and its "
             f"end token): {answer_share:.1%}.", ""]
    padding_lines = [f"Padding share of training batches ({min(len(padding_ds), PADDING_EXAMPLES)} examples):", ""]
    padding_lines += [f"- {k}: {v:.1%}" for k, v in padding.items()]
    table = ["| method | batch | setting | precision | grad. ckpt | tokens/s | s/step | share of matmul peak | "
             "peak MB | project vs TRL defaults (same batch) | vs Trainer defaults (same batch) | vs TRL, course settings | "
             f"vs TRL defaults at batch {a.batch} |",
             "| --- | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    if a.trimmed:
        # Written before the first row, then one line per measured row: a cut run keeps what it measured.
        lines[2] += (" Trimmed run: each row was appended when it was measured; the last line says 'finished' when "
                     "no row was cut.")
        md.write_text("\n".join(lines + padding_lines + [""] + table) + "\n")
        write_json(js, result)
        print("\n".join(lines + padding_lines + [""] + table), flush=True)
        plan = [(m, a.batch, s) for m in methods for s in settings]
        plan += [(m, None, s) for m in methods for s in settings]  # None: the course's batch, found when reached
        course_batches: dict[str, int] = {}
        for method, batch, setting in plan:
            if batch is None:
                if method not in course_batches:
                    course_batches[method] = course_batch_for(method)
                batch = course_batches[method]
                if batch == a.batch:
                    continue
            if batch * 2 > len(ds):
                print(f"skipping batch {batch}: --examples {a.examples} holds fewer than two batches")
                continue
            rows.append(add_ratios(measure(method, batch, setting), rows, a.batch))
            with md.open("a") as f:
                f.write(row_line(rows[-1], a.batch) + "\n")
            write_json(js, result)
            print(row_line(rows[-1], a.batch), flush=True)
        result["complete"] = True
        write_json(js, result)
        with md.open("a") as f:
            f.write(f"\nfinished: {len(rows)} rows, {time.strftime('%H:%M:%S %Z')}\n")
        return 0

    for method in methods:
        batches = sorted({a.batch, course_batch_for(method)})
        for batch in batches:
            if batch * 2 > len(ds):
                print(f"skipping batch {batch}: --examples {a.examples} holds fewer than two batches")
                continue
            for setting in settings:
                rows.append(measure(method, batch, setting))
                print(rows[-1], flush=True)
    for r in rows:
        add_ratios(r, rows, a.batch)
    write_json(js, result)
    lines += table + [row_line(r, a.batch) for r in rows] + [""] + padding_lines
    md.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
