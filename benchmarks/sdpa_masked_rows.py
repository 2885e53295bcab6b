"""Does this machine's attention turn fully masked query rows (left padding) into NaN, forward or backward?

The diagnosis of issue 11's GPU collapse, checked where it can be: a left-padded batch gives every pad position a
query row that attends to nothing (causal mask + padding mask). This script asks, on this machine:
  1. each SDPA backend (the one torch picks, math, flash, memory-efficient, cuDNN), in fp32/fp16/bf16: are the
     fully masked rows' outputs finite (with and without grad), and are the gradients of q, k, v finite when the
     loss uses only the real rows?
  2. one LoRA step of the embedded model on real sentiment prompts, the way the course trains (answer-only loss,
     the run's precision and autocast), with left and with right padding, with and without activation
     checkpointing: is the loss finite, and are the adapters' gradients finite?
  3. a short LoRA training run the way notebook 04 trains (training.run_trainer, so training.FiniteGuard watches
     it; its learning rate 3e-4 and batch 16), with left and with right padding, with and without activation
     checkpointing: the first optimizer step the guard flags (a DivergedError), or none in --guard-steps steps.
Seconds on a GPU, about a minute on a CPU. Writes benchmarks/results/sdpa_masked_rows_<device>.{json,md}.
    python benchmarks/sdpa_masked_rows.py [--name STEM] [--guard-steps 20] [--skip-kernels] [--skip-training]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F

RESULTS = Path(__file__).resolve().parent / "results"


def kernel_check(device: str, dtype, backend, batch: int = 16, heads: int = 9, seq: int = 96, dim: int = 64,
                 pads: int = 7, seed: int = 0) -> dict:
    """SDPA with a causal + left-padding boolean mask under one backend; the loss sums the real rows only."""
    from torch.nn.attention import sdpa_kernel

    gen = torch.Generator(device="cpu").manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, seq, dim, generator=gen).to(device, dtype).requires_grad_() for _ in range(3))
    real = torch.ones(batch, seq, dtype=torch.bool)
    real[::2, :pads] = False                                   # every other row left-padded
    real = real.to(device)
    causal = torch.tril(torch.ones(seq, seq, dtype=torch.bool, device=device))
    mask = causal[None] & real[:, None, :]                     # (b, q, k); pad query rows are all False
    import contextlib

    chosen = contextlib.nullcontext if backend is None else (lambda: sdpa_kernel([backend]))  # None: torch picks
    try:
        with chosen():
            with torch.no_grad():                              # inference (label scoring, generation)
                plain = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])
            (out * real[:, None, :, None]).float().sum().backward()
    except RuntimeError as e:                                  # backend not available for these inputs here
        return {"ran": False, "why": str(e).splitlines()[0][:120]}
    pad_rows = ~real[:, None, :, None].expand_as(out)
    return {"ran": True,
            "nan_output_pad_rows_no_grad": bool(plain[pad_rows].isnan().any()),
            "nan_output_pad_rows": bool(out[pad_rows].isnan().any()),
            "nan_output_real_rows": bool(out[~pad_rows].isnan().any()),
            "nan_grad_q": bool(q.grad.isnan().any()), "nan_grad_k": bool(k.grad.isnan().any()),
            "nan_grad_v": bool(v.grad.isnan().any())}


def training_check(side: str, checkpointing: bool, n: int = 16) -> dict:
    """One forward/backward of the course's LoRA setup on real prompts: finite loss and adapter gradients?"""
    from peft import get_peft_model

    from gptforall_utils import data, env, models, prompts, training

    dev, prec = env.device(), env.precision()
    torch.manual_seed(0)
    tok = models.load_tokenizer("auto")
    model = models.load_model("auto", verbose=False)
    model = get_peft_model(model, training.lora_config(model, dropout=0.0))
    with torch.no_grad():                                      # a trained adapter, not a zero update
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    model.train()
    if checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    pool = data.sample(data.load("sentiment", "offline", seed=0)["train"], n, seed=0)
    P = prompts.SENTIMENT
    ds = training.prompt_completion_dataset(tok, [P.render(tok, t) for t in pool["text"]],
                                            [P.target(y) for y in pool["label"]])
    batch = {k: v.to(dev) for k, v in training.collator(tok, side)(list(ds)).items()}
    import contextlib

    autocast = contextlib.nullcontext() if prec == "fp32" else torch.autocast(dev, dtype=env.torch_dtype(prec))
    with autocast:
        loss, _ = training.answer_only_loss(model, batch)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    bad = sum(int(not torch.isfinite(g).all()) for g in grads)
    return {"padding": side, "checkpointing": checkpointing, "precision": prec, "loss": float(loss),
            "adapter_tensors": len(grads), "adapter_tensors_with_nan_or_inf_grad": bad,
            "padded_positions": int((batch["attention_mask"] == 0).sum())}


def guard_check(side: str, checkpointing: bool, steps: int, batch: int = 16, learning_rate: float = 3e-4) -> dict:
    """`steps` optimizer steps of notebook 04's LoRA (r=8, alpha=16, lr 3e-4, answer-only loss) through
    training.run_trainer, which attaches training.FiniteGuard, with `side` padding: the first step it flags."""
    from peft import get_peft_model

    from gptforall_utils import data, env, models, prompts, training

    run = env.start("sdpa_masked_rows", "cpu" if env.device() == "cpu" else "gpu",
                    output_dir="/tmp/sdpa_masked_rows", verbose=False)
    tok = models.load_tokenizer("auto")
    model = models.load_model("auto", verbose=False)
    model = get_peft_model(model, training.lora_config(model, r=8, alpha=16, dropout=0.05))
    pool = data.sample(data.load("sentiment", "offline", seed=0)["train"], steps * batch, seed=1)
    P = prompts.SENTIMENT
    ds = training.prompt_completion_dataset(tok, [P.render(tok, t) for t in pool["text"]],
                                            [P.target(y) for y in pool["label"]])
    args = training.training_arguments(run, f"/tmp/sdpa_masked_rows/guard_{os.getpid()}_{side}_{int(checkpointing)}",
                                       learning_rate=learning_rate, batch_size=batch, grad_accum=1, max_steps=steps,
                                       logging_steps=1, gradient_checkpointing=checkpointing)
    trainer = training._trainer_class()(model=model, args=args, train_dataset=ds,
                                        data_collator=training.collator(tok, side))
    row = {"padding": side, "checkpointing": checkpointing, "precision": run.precision, "steps": steps,
           "batch": batch, "learning_rate": learning_rate}
    try:
        res = training.run_trainer(trainer, "lora")
    except training.DivergedError as e:
        found = re.search(r"optimizer step (\d+) of", str(e))
        return {**row, "first_flagged_step": int(found.group(1)) if found else None,
                "flagged": str(e).splitlines()[0][:200], "losses": []}
    return {**row, "first_flagged_step": None, "flagged": "",
            "losses": [round(float(loss), 4) for _, loss in res.loss_history]}


def main(argv=None) -> int:
    from torch.nn.attention import SDPBackend

    from gptforall_utils import env

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default=None, help="results file stem (default sdpa_masked_rows_<device>)")
    ap.add_argument("--results-dir", default=str(RESULTS), help="where the .md and .json go (default benchmarks/results)")
    ap.add_argument("--skip-kernels", action="store_true", help="leave out part 1 (the SDPA kernels)")
    ap.add_argument("--skip-training", action="store_true", help="leave out part 2 (one LoRA step)")
    ap.add_argument("--guard-steps", type=int, default=20,
                    help="optimizer steps of part 3 (the first step FiniteGuard flags); 0 leaves it out")
    ap.add_argument("--guard-runs", default="left-off,left-on,right-off,right-on",
                    help="part 3's runs: padding side and activation checkpointing, e.g. left-off,right-off")
    ap.add_argument("--guard-batch", type=int, default=16, help="part 3's batch (notebook 04's gpu profile: 16)")
    a = ap.parse_args(argv)
    dev = env.device()
    kernels = []
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    backends = {"auto": None, "math": SDPBackend.MATH, "flash": SDPBackend.FLASH_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}
    for dname, dtype in ({} if a.skip_kernels else dtypes).items():
        if dev == "cpu" and dname == "fp16":
            continue
        for bname, backend in backends.items():
            row = {"dtype": dname, "backend": bname, **kernel_check(dev, dtype, backend)}
            kernels.append(row)
            print(row, flush=True)
    trains = []
    if not a.skip_training:
        for side in ("left", "right"):
            for ckpt in (False, True):
                trains.append(training_check(side, ckpt))
                print(trains[-1], flush=True)
    guards = []
    runs = [r.strip().split("-") for r in a.guard_runs.split(",") if r.strip()]
    if any(len(r) != 2 or r[0] not in ("left", "right") or r[1] not in ("off", "on") for r in runs):
        raise ValueError(f"--guard-runs takes left-off, left-on, right-off, right-on; got {a.guard_runs!r}")
    for side, ckpt in runs if a.guard_steps > 0 else []:
        guards.append(guard_check(side, ckpt == "on", a.guard_steps, batch=a.guard_batch))
        print(guards[-1], flush=True)
    info = env.environment()
    machine = info.get("gpu") or "CPU"
    result = {"device": dev, "machine": machine, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M %Z"),
              "kernels": kernels, "training": trains, "guard": guards}
    stem = a.name or f"sdpa_masked_rows_{dev}"
    results = Path(a.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Fully masked attention rows on {machine} ({dev}, torch {torch.__version__}, {result['date']})", "",
             "Measured by `benchmarks/sdpa_masked_rows.py`. Kernels: batch 16 x 9 heads x 96 positions, every other "
             "row left-padded by 7 (a causal pad query row attends to nothing); the loss sums the real rows only.", "",
             "| dtype | backend | ran | NaN output, pad rows, no grad | NaN output, pad rows | NaN output, real rows | "
             "NaN grad q / k / v |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in kernels:
        if r["ran"]:
            lines.append(f"| {r['dtype']} | {r['backend']} | yes | {r['nan_output_pad_rows_no_grad']} | "
                         f"{r['nan_output_pad_rows']} | {r['nan_output_real_rows']} | "
                         f"{r['nan_grad_q']} / {r['nan_grad_k']} / {r['nan_grad_v']} |")
        else:
            lines.append(f"| {r['dtype']} | {r['backend']} | no: {r['why']} | | | | |")
    if trains:
        lines += ["", "One LoRA step of the embedded model on 16 sentiment prompts (answer-only loss, this run's "
                  "precision and autocast, adapters' B initialised at N(0, 0.01)):", "",
                  "| padding | activation checkpointing | precision | loss | adapter tensors with NaN/inf gradient | "
                  "padded positions |", "| --- | --- | --- | ---: | ---: | ---: |"]
        for t in trains:
            lines.append(f"| {t['padding']} | {t['checkpointing']} | {t['precision']} | {t['loss']:.4f} | "
                         f"{t['adapter_tensors_with_nan_or_inf_grad']} of {t['adapter_tensors']} | "
                         f"{t['padded_positions']} |")
    if guards:
        lines += ["", f"Training as notebook 04 does (LoRA r=8, learning rate {guards[0]['learning_rate']:g}, batch "
                  f"{guards[0]['batch']}, training.run_trainer with training.FiniteGuard) for {guards[0]['steps']} "
                  "optimizer steps: the first step the guard flags.", "",
                  "| padding | activation checkpointing | precision | first step flagged | loss, first -> last logged |",
                  "| --- | --- | --- | ---: | --- |"]
        for g in guards:
            losses = f"{g['losses'][0]} -> {g['losses'][-1]}" if g["losses"] else g["flagged"]
            lines.append(f"| {g['padding']} | {g['checkpointing']} | {g['precision']} | "
                         f"{'none' if not g['flagged'] else g['first_flagged_step'] or '?'} | {losses} |")
    (results / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
