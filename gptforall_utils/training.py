"""Training: hardware-aware arguments, LoRA / prompt-tuning / full configurations, measured runs.

Precision follows the hardware (env.precision): bf16 on Ampere and newer, fp16 on a T4, fp32 on
CPU (GPTFORALL_PRECISION overrides it; fp16 on a CPU runs torch's real fp16 autocast and GradScaler, `enable_fp16`). This matters: TRL's SFTConfig defaults to bf16 and gradient checkpointing, which on a
laptop CPU turn a 3-second LoRA step into a 30-second one (or refuse to start).
Invalid settings raise ValueError before any training starts.

Mixed precision keeps fp32 trainable weights everywhere: full fine-tuning loads fp32 weights (the master
copy) and the Trainer's autocast computes in fp16/bf16; adapters are fp32 over a half-precision frozen base.
On a GPU, the micro-batch and activation checkpointing come from the memory estimate against the card
(`fit_arguments`), not from the profile. Every run is watched (`FiniteGuard`): a NaN/inf loss, gradient or
weight stops it with DivergedError, and a diverged run is never reported as a result.
Training batches are padded on the right (see `TRAINING_PADDING_SIDE`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

from . import env, memory
from .memory import PeakMemory

METHODS = ("full", "lora", "qlora", "prompt_tuning")
# Batch sizes per profile: (per-device batch, gradient accumulation). On a GPU, `fit_arguments` may trade
# one for the other (same product) to fit the card or to use it better.
PROFILE_BATCHES = {"smoke": (4, 1), "cpu": (8, 1), "gpu": (8, 4)}
# Training batches are padded on the right. Left padding makes the padded positions' attention rows fully
# masked (a causal query at a pad position may only see earlier positions, all of them padding); SDPA's CUDA
# kernels can return NaN gradients for such rows, which reach every adapter weight through the shared
# projections. Right-padded pad rows still see the real tokens before them. Inference (label scoring,
# generation) keeps left padding, where the answer position must be the last column.
TRAINING_PADDING_SIDE = "right"


class DivergedError(RuntimeError):
    """A training run produced a non-finite loss, gradient or weight: it is an error, never a result."""


# ---------------------------------------------------------------- arguments
def _has_int8_layers(model) -> bool:
    """True when the model holds bitsandbytes 8-bit linear layers (an LLM.int8 base)."""
    return model is not None and any(type(m).__name__ == "Linear8bitLt" for m in model.modules())


def _autocast_kwargs(precision: str, device: str, model=None) -> dict:
    """Trainer's mixed-precision switches for a precision. An 8-bit base computes in fp16 (bitsandbytes'
    int8 matmul quantizes fp16 inputs), so on a GPU its autocast is fp16 whatever the card prefers."""
    if precision == "bf16" and device == "cuda" and _has_int8_layers(model):
        precision = "fp16"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def _hardware_kwargs(run: env.Run, model=None) -> dict:
    return {"use_cpu": run.device == "cpu", **_autocast_kwargs(run.precision, run.device, model)}


def _common_kwargs(run: env.Run, output_dir, learning_rate, epochs, batch_size, grad_accum, max_steps,
                   logging_steps, warmup_steps, gradient_checkpointing, model=None) -> dict:
    """The hardware rules every config the course builds shares (TrainingArguments, SFTConfig, DPOConfig)."""
    default_batch, default_accum = PROFILE_BATCHES[run.profile]
    batch_size = default_batch if batch_size is None else batch_size
    grad_accum = default_accum if grad_accum is None else grad_accum
    if batch_size <= 0 or grad_accum <= 0:
        raise ValueError(f"batch_size ({batch_size}) and grad_accum ({grad_accum}) must be positive.")
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}.")
    # Recomputing activations costs ~30% more compute: off unless the step would not fit the card, which
    # fit_arguments (called by train) decides from the memory estimate once the model and data are known.
    gradient_checkpointing = bool(gradient_checkpointing)
    return dict(
        output_dir=str(output_dir or run.path("checkpoints")),
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        warmup_steps=warmup_steps,
        logging_steps=logging_steps,
        activation_checkpointing=gradient_checkpointing,
        # Non-reentrant checkpointing (the transformers default, stated here): gradients reach the adapters
        # of a frozen base without inputs that require grad, and autocast/RNG state is replayed.
        activation_checkpointing_kwargs={"use_reentrant": False},
        # The Trainer's default replaces a NaN/inf step loss by the running mean, which logs a diverged run as
        # loss 0.0. Off: a non-finite loss is logged as what it is, and FiniteGuard stops the run.
        logging_nan_inf_filter=False,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        seed=run.seed,
        data_seed=run.seed,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=run.profile == "smoke",
        **_hardware_kwargs(run, model),
    )


def training_arguments(run: env.Run, output_dir=None, *, learning_rate: float = 2e-4, epochs: float = 1,
                       batch_size: int | None = None, grad_accum: int | None = None, max_steps: int = -1,
                       logging_steps: int = 5, warmup_steps: int = 0,
                       gradient_checkpointing: bool | None = None, group_by_length: bool = True, model=None,
                       **overrides):
    """transformers TrainingArguments sized by profile, with precision chosen by the hardware.

    group_by_length batches examples of similar length together, so dynamic padding adds little.
    gradient_checkpointing None: off here; `train` turns it on only when the step would not fit the card.
    model (optional): lets the precision rule see an 8-bit base (fp16 autocast); `train` applies it anyway.
    """
    from transformers import TrainingArguments

    kwargs = _common_kwargs(run, output_dir, learning_rate, epochs, batch_size, grad_accum, max_steps,
                            logging_steps, warmup_steps, gradient_checkpointing, model)
    kwargs["remove_unused_columns"] = False
    kwargs["train_sampling_strategy"] = "group_by_length" if group_by_length else "random"
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


def sft_config(run: env.Run, output_dir=None, *, learning_rate: float = 2e-4, epochs: float = 1,
               batch_size: int | None = None, grad_accum: int | None = None, max_steps: int = -1,
               logging_steps: int = 5, warmup_steps: int = 0, max_length: int = 512,
               gradient_checkpointing: bool | None = None, model=None, **overrides):
    """TRL SFTConfig with the same hardware rules (TRL's own defaults assume a bf16 GPU and checkpointing).
    Before building the SFTTrainer, `fit_arguments(config, model, dataset)` sizes it for the card."""
    from trl import SFTConfig

    kwargs = _common_kwargs(run, output_dir, learning_rate, epochs, batch_size, grad_accum, max_steps,
                            logging_steps, warmup_steps, gradient_checkpointing, model)
    kwargs["max_length"] = max_length
    kwargs.update(overrides)
    return SFTConfig(**kwargs)


# ---------------------------------------------------------------- method configurations
def linear_module_names(model) -> set[str]:
    """Short names of the model's Linear layers (candidates for LoRA target_modules)."""
    import torch

    names = set()
    for full_name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear8bitLt", "Linear4bit"):
            names.add(full_name.split(".")[-1])
    return names


# The course's one LoRA target list: every linear layer of a Llama-style block (attention and MLP). memory's
# estimates default to the same set (lora_targets=None: every linear layer of the block).
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_config(model, r: int = 8, alpha: int = 16, dropout: float = 0.05,
                target_modules: tuple[str, ...] | list[str] = DEFAULT_LORA_TARGETS):
    """A PEFT LoraConfig for a causal LM, checked against the model's actual layers."""
    from peft import LoraConfig, TaskType

    if not isinstance(r, int) or r <= 0:
        raise ValueError(f"LoRA rank r must be a positive integer, got {r!r}.")
    if alpha <= 0:
        raise ValueError(f"LoRA alpha must be positive, got {alpha}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}.")
    available = linear_module_names(model)
    missing = [t for t in target_modules if t not in available]
    if missing:
        raise ValueError(f"target_modules {missing} do not exist in this model; its linear layers are "
                         f"{sorted(available)}.")
    return LoraConfig(task_type=TaskType.CAUSAL_LM, r=r, lora_alpha=alpha, lora_dropout=dropout,
                      target_modules=list(target_modules))


def prompt_tuning_config(model, tokenizer_path: str | None = None, num_virtual_tokens: int = 20,
                         init_text: str | None = None):
    """A PEFT PromptTuningConfig: `num_virtual_tokens` trainable embeddings prepended to every input,
    initialised from the embedding of `init_text` when given (usually trains faster than random)."""
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    if not isinstance(num_virtual_tokens, int) or num_virtual_tokens <= 0:
        raise ValueError(f"num_virtual_tokens must be a positive integer, got {num_virtual_tokens!r}.")
    if init_text:
        if tokenizer_path is None:
            tokenizer_path = model.config._name_or_path
        return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=num_virtual_tokens,
                                  prompt_tuning_init=PromptTuningInit.TEXT, prompt_tuning_init_text=init_text,
                                  tokenizer_name_or_path=tokenizer_path)
    return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=num_virtual_tokens,
                              prompt_tuning_init=PromptTuningInit.RANDOM)


def _weights_in(param) -> int:
    """How many model weights a parameter holds: a 4-bit (bitsandbytes) tensor packs two per byte,
    so its storage numel() is half the weight count; its quant_state keeps the real shape."""
    state = getattr(param, "quant_state", None)
    shape = getattr(state, "shape", None)
    if shape is not None:
        count = 1
        for size in shape:
            count *= int(size)
        return count
    return param.numel()


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit weights count as the weights they hold, not their bytes."""
    trainable = sum(_weights_in(p) for p in model.parameters() if p.requires_grad)
    total = sum(_weights_in(p) for p in model.parameters())
    return trainable, total


# ---------------------------------------------------------------- data
def prompt_completion_dataset(tokenizer, prompts: list[str], completions: list[str], max_length: int = 512,
                              add_eos: bool = True):
    """Tokenized causal-LM examples whose loss covers the completion only.

    input_ids = prompt + completion (+ eos); labels = -100 over the prompt, so the model learns to
    produce the answer, not to repeat the question. Over-long examples are cut from the left of the
    prompt so the completion is always kept.
    """
    from datasets import Dataset

    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions.")
    if not prompts:
        raise ValueError("No examples: the training set is empty.")
    rows = []
    for prompt, completion in zip(prompts, completions):
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if add_eos:
            c = c + [tokenizer.eos_token_id]
        if len(c) >= max_length:
            c = c[: max_length - 1]
        p = p[-(max_length - len(c)):]
        rows.append({"input_ids": p + c, "attention_mask": [1] * (len(p) + len(c)),
                     "labels": [-100] * len(p) + c})
    return Dataset.from_list(rows)


class PadCollator:
    """Pads each batch to its own longest example (dynamic padding): input_ids with the pad token,
    attention_mask with 0, labels with -100. Training uses padding_side="right" (TRAINING_PADDING_SIDE):
    with "left", the padded positions' attention rows are fully masked (see TRAINING_PADDING_SIDE)."""

    def __init__(self, pad_token_id: int, padding_side: str = "right"):
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        batch: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
        fill = {"input_ids": self.pad_token_id, "attention_mask": 0, "labels": -100}
        for f in features:
            n_pad = longest - len(f["input_ids"])
            for key in batch:
                values = list(f[key]) if key in f else [1] * len(f["input_ids"])
                pad = [fill[key]] * n_pad
                batch[key].append(pad + values if self.padding_side == "left" else values + pad)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


def collator(tokenizer, padding_side: str = "right"):
    """Pads input_ids/attention_mask with the pad token and labels with -100, per batch (dynamic padding)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return PadCollator(pad_id, padding_side)


def padding_share(dataset, batch_size: int, group_by_length: bool = False, seed: int = 0) -> float:
    """Share of padding tokens in the batches a dataset makes under dynamic padding: random batches,
    or batches of similar length (what train_sampling_strategy="group_by_length" does)."""
    import random

    lengths = [len(x) for x in dataset["input_ids"]]
    if not lengths:
        raise ValueError("The dataset is empty.")
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    if group_by_length:
        # Like transformers' LengthGroupedSampler: sort within mega-batches of 50 batches.
        mega = 50 * batch_size
        order = [i for s in range(0, len(order), mega)
                 for i in sorted(order[s:s + mega], key=lambda i: -lengths[i])]
    padded = real = 0
    for s in range(0, len(order), batch_size):
        chunk = [lengths[i] for i in order[s:s + batch_size]]
        padded += max(chunk) * len(chunk)
        real += sum(chunk)
    return 1 - real / padded


def check_training_setup(dataset, batch_size: int) -> None:
    """Refuse an empty dataset or a batch larger than the data, before training starts."""
    n = len(dataset)
    if n == 0:
        raise ValueError("The training dataset is empty.")
    if batch_size > n:
        raise ValueError(f"Batch size {batch_size} is larger than the dataset ({n} examples); lower it.")


# ---------------------------------------------------------------- measured runs
@dataclass
class TrainResult:
    """What a training run cost and did."""

    method: str
    trainable_params: int
    total_params: int
    train_seconds: float
    peak_memory_mb: float
    tokens_seen: int
    loss_history: list[tuple[int, float]] = field(default_factory=list)

    def __post_init__(self):
        bad = [(step, loss) for step, loss in self.loss_history if not math.isfinite(loss)]
        if bad:
            raise DivergedError(f"{self.method}: the loss history holds non-finite losses {bad[:3]}: the run "
                                "diverged, and a diverged run is not a result.")

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_seen / self.train_seconds if self.train_seconds > 0 else float("nan")

    @property
    def trainable_share(self) -> float:
        return self.trainable_params / self.total_params

    @property
    def first_loss(self) -> float:
        return self.loss_history[0][1] if self.loss_history else float("nan")

    @property
    def final_loss(self) -> float:
        return self.loss_history[-1][1] if self.loss_history else float("nan")

    def summary(self) -> dict[str, float | int | str]:
        return {
            "method": self.method,
            "trainable_params": self.trainable_params,
            "trainable_%": round(100 * self.trainable_share, 3),
            "train_seconds": round(self.train_seconds, 1),
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "first_loss": round(self.first_loss, 4),
            "final_loss": round(self.final_loss, 4),
        }


def _remove_if_empty(folder) -> None:
    """Trainer creates its output_dir even when it saves nothing (save_strategy="no"); an empty
    folder left behind only confuses a student looking for a checkpoint. Anything inside is kept."""
    from pathlib import Path

    path = Path(folder)
    try:
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    except OSError:  # under DDP every rank tries: another rank removed it first, or one is writing into it
        pass


# ---------------------------------------------------------------- precision and divergence checks
def _dtype_name(dtype) -> str:
    """The course's name for a float dtype (env.precision_name); torch's own for any other (int8, packed uint8)."""
    try:
        return env.precision_name(dtype)
    except ValueError:
        return str(dtype).replace("torch.", "")


def active_autocast(accelerator) -> tuple[str | None, bool]:
    """(autocast precision or None, GradScaler on?) that `accelerator` really applies, read from its state (not from
    the arguments' bf16/fp16 switches, which ask for it: accelerate 1.15 turns fp16 on only off the CPU)."""
    if accelerator is None or not getattr(accelerator, "native_amp", False):
        return None, False
    mixed = str(getattr(accelerator, "mixed_precision", "no"))
    name = {"fp16": "fp16", "bf16": "bf16", "fp8": "fp8"}.get(mixed)
    scaler = getattr(accelerator, "scaler", None)
    return name, bool(scaler is not None and scaler.is_enabled())


def precision_summary(model, args, accelerator=None) -> str:
    """One line: the autocast really active (read from the Trainer's `accelerator`) and the dtypes of the trainable
    and frozen weights. Without an accelerator the line can only say what the arguments request."""
    if accelerator is not None:
        autocast, scaled = active_autocast(accelerator)
        label = (f"{autocast} autocast" + (" with a GradScaler" if scaled else "")) if autocast else "no autocast"
        requested = "bf16" if args.bf16 else "fp16" if args.fp16 else None
        if requested and requested != autocast:
            label += f" ({requested} requested, not active on {accelerator.device.type})"
    else:
        label = ("bf16 autocast requested" if args.bf16 else "fp16 autocast with a GradScaler requested" if args.fp16
                 else "no autocast")
    trainable = sorted({_dtype_name(p.dtype) for p in model.parameters() if p.requires_grad})
    frozen = sorted({_dtype_name(p.dtype) for p in model.parameters() if not p.requires_grad})
    return (f"{label}; trainable weights {'/'.join(trainable) or 'none'}"
            + (f", frozen weights {'/'.join(frozen)}" if frozen else ""))


# The fp16 GradScaler's first loss scale. torch's default, 2**16, overflows the embedded SmolLM2-135M's fp16 backward
# pass: on one batch of two short examples under fp16 autocast with an fp16 base (CPU, torch 2.13), layer 0's v_proj
# LoRA gradients were inf at scales 8192 and above and finite at 256 and 1. From 2**16 the scaler needs 4 skipped
# steps to get below that (a smoke run of 3 steps then updates nothing: FiniteGuard stops it); starting at 2**8 it
# skips none. The scale still backs off on an overflow and grows after growth_interval clean steps.
FP16_INITIAL_SCALE = 2.0 ** 8


def enable_fp16(trainer) -> bool:
    """fp16=True as the course runs it: torch's fp16 autocast and a GradScaler starting at FP16_INITIAL_SCALE, on a
    card and on the CPU. Returns True when it set up a scaler; call it after building the trainer and before
    `trainer.train()` (`run_trainer` does).

    On the CPU this is what makes fp16 real: accelerate 1.15 enables fp16 mixed precision only off the CPU
    (Accelerator.__init__: `mixed_precision == "fp16" and device.type != "cpu"`), so a stock Trainer with fp16=True
    on a CPU trains in fp32 with no scaler. torch 2.13 has both halves on the CPU (torch.autocast("cpu",
    dtype=torch.float16), torch.amp.GradScaler("cpu")); setting the accelerator's scaler and native_amp before
    training makes accelerate wrap the model's forward in that autocast and the optimizer in that scaler (scale the
    loss, unscale before clipping, skip a step on overflow): the code path a T4 takes. It is slow on a CPU without
    native fp16 arithmetic (measured here: about 25 s per step of 2 short examples on the embedded model, shared CPU).
    """
    import torch

    acc = getattr(trainer, "accelerator", None)
    if acc is None or str(acc.mixed_precision) != "fp16":
        return False
    if getattr(trainer, "optimizer", None) is not None and hasattr(trainer.optimizer, "scaler"):
        return False  # the optimizer was prepared already: too late to change its scaler
    if acc.device.type == "cpu" and not acc.native_amp and acc.scaler is None:
        acc.native_amp = True
    elif not (acc.native_amp and type(acc.scaler) is torch.amp.GradScaler and acc.scaler.get_scale() == 2.0 ** 16):
        return False  # no scaler (DeepSpeed and the like manage their own), a sharded one or one set up already
    kwargs = acc.scaler_handler.to_kwargs() if getattr(acc, "scaler_handler", None) is not None else {}
    kwargs.setdefault("init_scale", FP16_INITIAL_SCALE)
    acc.scaler = torch.amp.GradScaler(acc.device.type, **kwargs)
    return True


def _half_precision_trainable(model) -> list:
    """The trainable fp16/bf16 parameters: what the course keeps in fp32 (fp32_trainable casts them, and
    check_trainable_dtypes refuses them)."""
    import torch

    return [p for p in model.parameters() if p.requires_grad and p.dtype in (torch.float16, torch.bfloat16)]


def fp32_trainable(model) -> int:
    """Cast every trainable fp16/bf16 parameter to fp32, in place; returns how many were cast.

    TRL's SFTTrainer stores a quantized (QLoRA) model's adapters in bf16, following the QLoRA paper. The course
    keeps what trains in fp32 and lets autocast compute in half precision (`check_trainable_dtypes`), so call this
    after building such a trainer and before training: the optimizer is created at `train()`, from these weights.
    """
    half = _half_precision_trainable(model)
    for p in half:
        p.data = p.data.float()
    return len(half)


def check_trainable_dtypes(model, args) -> None:
    """Refuse half-precision trainable weights: mixed precision keeps an fp32 master copy of what trains.

    fp16 weights with fp16=True cannot train at all (torch's GradScaler refuses: "Attempting to unscale FP16
    gradients"); bf16 weights would train as pure-bf16 AdamW, whose small updates round away.
    """
    half = sorted({_dtype_name(p.dtype) for p in _half_precision_trainable(model)})
    if not half:
        return
    why = ("torch's GradScaler cannot unscale fp16 gradients ('Attempting to unscale FP16 gradients')"
           if args.fp16 and "fp16" in half else "the optimizer would update half-precision weights with no fp32 "
           "master copy, so small updates round away")
    raise ValueError(f"The model has {'/'.join(half)} trainable weights: {why}. Keep what trains in fp32 and let "
                     "the Trainer's autocast (bf16=True / fp16=True) compute in half precision: for full "
                     "fine-tuning load the model with models.load_model(..., full_finetuning=True); PEFT adapters "
                     "are fp32 already unless autocast_adapter_dtype=False.")


class FiniteGuard:
    """Stops a run at the first non-finite loss, gradient or weight, and a run whose GradScaler skips its optimizer
    steps, with DivergedError naming the step, the precision and what to try.

    It sees each micro-batch's raw loss (before the Trainer's logging_nan_inf_filter could replace it), the
    gradients before every optimizer step, and the trainable weights every `weights_every` steps and at the end.
    The Trainer always clips (or measures) the gradient norm before `on_pre_optimizer_step`, and accelerate's
    clip_grad_norm_ unscales first, so under a GradScaler the guard sees unscaled gradients (their finiteness is the
    same scaled or not: the scale is a finite positive number).

    Under a GradScaler (fp16) a non-finite gradient is expected now and then: the scaler skips that step and halves
    its scale. The guard counts the skipped steps (accelerate's `optimizer_step_was_skipped`) and stops the run when
      - a step overflows at a loss scale of 1 or less: nothing amplified the gradients, so they are truly not finite;
      - MAX_SKIPPED_IN_A_ROW consecutive steps were skipped: from the course's first scale (FP16_INITIAL_SCALE, 2**8)
        8 halvings reach 1 and from torch's default 2**16, 16 do, so 24 skips in a row means the scale fell well
        below 1 (a safety net for scalers with a gentler backoff, where the scale rule above comes late);
      - at the end, every optimizer step of the run was skipped: no weight was ever updated, the run learned nothing.
    `run_trainer` attaches one to every run.
    """

    MAX_SKIPPED_IN_A_ROW = 24

    def __init__(self, weights_every: int = 10):
        self.weights_every = weights_every
        self.trainer = None
        self._losses: list = []
        self.steps_taken = 0
        self.steps_skipped = 0
        self.skipped_in_a_row = 0
        self._scale_before: float | None = None

    # -- wiring
    def attach(self, trainer) -> FiniteGuard:
        """Watch `trainer`: wrap its training_step (to see raw losses) and add the callback."""
        self.trainer = trainer
        original = trainer.training_step
        guard = self

        def training_step(*args, **kwargs):
            loss = original(*args, **kwargs)
            guard._losses.append(loss.detach())
            return loss

        trainer.training_step = training_step
        trainer.add_callback(self.callback())
        return self

    def callback(self):
        from transformers import TrainerCallback

        guard = self

        class _Guard(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, **kw):
                guard.check_step(state.global_step + 1)

            def on_optimizer_step(self, args, state, control, **kw):
                guard.after_step(state.global_step + 1)

            def on_step_end(self, args, state, control, **kw):
                if guard.weights_every and state.global_step % guard.weights_every == 0:
                    guard.check_weights(state.global_step)

            def on_train_end(self, args, state, control, **kw):
                guard.check_weights(state.global_step, at_end=True)
                guard.check_some_step_taken(state.global_step)

        return _Guard()

    # -- checks
    def _trainable(self):
        return [p for p in self.trainer.model.parameters() if p.requires_grad]

    def scaler(self):
        """The GradScaler the trainer's accelerator really uses (None without one, or when it is disabled)."""
        scaler = getattr(getattr(self.trainer, "accelerator", None), "scaler", None)
        return scaler if scaler is not None and scaler.is_enabled() else None

    def check_step(self, step: int) -> None:
        """Before the optimizer step: this step's micro-batch losses and its (unscaled) gradients."""
        import torch

        losses, self._losses = self._losses, []
        scaler = self.scaler()
        self._scale_before = float(scaler.get_scale()) if scaler is not None else None
        grads = [p.grad for p in self._trainable() if p.grad is not None]
        checks = [torch.isfinite(torch.stack([x.float().reshape(()) for x in losses])).all()] if losses else []
        if grads:
            checks.append(torch.isfinite(torch.nn.utils.get_total_norm(grads, foreach=None)).reshape(()))
        if not checks:
            return
        if bool(torch.stack([c.to(checks[0].device) for c in checks]).all()):
            return
        values = [float(x) for x in losses]
        if not all(math.isfinite(v) for v in values):
            self.fail(step, f"the loss was {next(v for v in values if not math.isfinite(v))}")
        if scaler is not None:
            scale = self._scale_before
            if scale > 1:
                return  # an fp16 overflow of the scaled gradients: the scaler skips this step (counted in after_step)
            self.fail(step, f"the gradients were not finite at a loss scale of {scale:g} (nothing amplified them) while "
                            f"the loss was finite ({values[-1]:.4g}): the backward pass produced them (the optimizer "
                            "step was not taken)")
        self.fail(step, f"the gradients were not finite while the loss was finite ({values[-1]:.4g}): the backward "
                        "pass produced them (the optimizer step was not taken)")

    def after_step(self, step: int) -> None:
        """After the optimizer step: count the steps a GradScaler skipped.

        accelerate's `optimizer_step_was_skipped` alone misses them with a fused optimizer (transformers 5's default
        adamw_torch_fused): torch's GradScaler then always calls the optimizer's step with `found_inf` and the fused
        kernel skips the update itself, so accelerate sees a step taken. The scaler's own record is reliable:
        `update()` lowers the scale exactly when the step found inf/NaN gradients (it grows only after
        growth_interval clean steps), so a scale lower than before the step means the step was skipped.
        """
        scaler = self.scaler()
        if scaler is None:
            return
        accelerator = self.trainer.accelerator
        skipped = bool(accelerator.optimizer_step_was_skipped) or (
            self._scale_before is not None and float(scaler.get_scale()) < self._scale_before)
        if not skipped:
            self.steps_taken += 1
            self.skipped_in_a_row = 0
            return
        self.steps_skipped += 1
        self.skipped_in_a_row += 1
        if self.skipped_in_a_row >= self.MAX_SKIPPED_IN_A_ROW:
            self.fail(step, f"the GradScaler skipped the last {self.skipped_in_a_row} optimizer steps in a row (the "
                            f"fp16 gradients overflowed each time; loss scale now {float(self.scaler().get_scale()):g})")

    def check_some_step_taken(self, step: int) -> None:
        """At the end: a run whose every optimizer step was skipped updated no weight, and is not a result."""
        if self.steps_skipped and not self.steps_taken:
            scale = float(self.scaler().get_scale()) if self.scaler() is not None else float("nan")
            self.fail(step, f"the GradScaler skipped every optimizer step ({self.steps_skipped} of "
                            f"{self.steps_skipped}): the fp16 gradients overflowed each time (loss scale now {scale:g}), "
                            "so no weight was updated and the run learned nothing")

    def check_weights(self, step: int, at_end: bool = False) -> None:
        import torch

        params = self._trainable()
        if params and not bool(torch.stack([torch.isfinite(p).all().to(params[0].device) for p in params]).all()):
            self.fail(step, "some trainable weights are not finite" + (" at the end of training" if at_end else ""))

    def fail(self, step: int, what: str) -> None:
        trainer = self.trainer
        args = trainer.args
        side = getattr(trainer.data_collator, "padding_side", "unknown")
        total = trainer.state.max_steps or "?"
        raise DivergedError(
            f"Training diverged at optimizer step {step} of {total}: {what}.\n"
            f"Precision: {precision_summary(trainer.model, args, getattr(trainer, 'accelerator', None))}; learning rate {args.learning_rate:g}; "
            f"training batches padded on the {side}; activation checkpointing "
            f"{'on' if args.activation_checkpointing else 'off'}.\n"
            "What to try: a lower learning rate; fp32 (GPTFORALL_PRECISION=fp32) to tell a precision problem from "
            "a data or learning-rate one; right padding for training batches (training.collator(tok, 'right'): "
            "with left padding the padded positions attend to nothing, and some CUDA attention kernels return NaN "
            "gradients for such rows); check that every example has a non-empty answer.")


# ---------------------------------------------------------------- fitting the arguments to the model and card
def _training_method(model) -> str:
    """memory.estimate's method for a model about to train: full, lora, qlora or prompt_tuning."""
    if _virtual_tokens(model):
        return "prompt_tuning"
    trainable, total = parameter_counts(model)
    if trainable == total:
        return "full"
    if any(type(m).__name__ == "Linear4bit" for m in model.modules()):
        return "qlora"
    return "lora"


def _render_lengths(dataset, tokenizer) -> list[int]:
    """Token counts of each training sequence of an untokenized TRL dataset: text, messages, prompt + completion
    or prompt + chosen / rejected (strings or chat messages, rendered with the tokenizer's chat template)."""
    def count(prompt, answer=None) -> int:
        if isinstance(prompt, list):                               # conversational: lists of chat messages
            messages = prompt + (answer or [])
            return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        return len(tokenizer((prompt or "") + (answer or ""), add_special_tokens=True)["input_ids"])

    cols = set(dataset.column_names)
    if {"chosen", "rejected"} <= cols:
        prompts = dataset["prompt"] if "prompt" in cols else [[] if isinstance(c, list) else "" for c in dataset["chosen"]]
        return [max(count(p, c), count(p, r)) for p, c, r in zip(prompts, dataset["chosen"], dataset["rejected"])]
    if {"prompt", "completion"} <= cols:
        return [count(p, c) for p, c in zip(dataset["prompt"], dataset["completion"])]
    for col in ("messages", "text"):
        if col in cols:
            return [count(x) for x in dataset[col]]
    raise ValueError(f"Cannot tell the sequence lengths of a dataset with columns {sorted(cols)}: expected input_ids, "
                     "text, messages, prompt/completion or prompt/chosen/rejected.")


def training_sequence(dataset, args, tokenizer=None) -> tuple[int, int]:
    """(longest training sequence in tokens, sequences per example) of a dataset about to train with `args`.

    Tokenized data (input_ids, or DPO's prompt_ids/chosen_ids/rejected_ids) is measured as it is; untokenized TRL
    data (text, messages, prompt/completion, prompt/chosen/rejected) with the tokenizer, or, without one, taken at
    the config's max_length. TRL truncates to args.max_length, so it caps the result. A preference pair trains as
    two sequences (chosen and rejected, in one batch).
    """
    cols = set(dataset.column_names)
    cap = getattr(args, "max_length", None)
    pairs = {"chosen", "rejected"} <= cols or {"chosen_ids", "rejected_ids"} <= cols
    if "input_ids" in cols:
        lengths = [len(x) for x in dataset["input_ids"]]
    elif {"chosen_ids", "rejected_ids"} <= cols:
        prompts = dataset["prompt_ids"] if "prompt_ids" in cols else [[]] * len(dataset)
        lengths = [len(p) + max(len(c), len(r)) for p, c, r in zip(prompts, dataset["chosen_ids"], dataset["rejected_ids"])]
    elif tokenizer is not None:
        lengths = _render_lengths(dataset, tokenizer)
    elif cap:
        lengths = [cap]
    else:
        raise ValueError("An untokenized dataset and no max_length: pass the tokenizer to measure its sequences.")
    if not lengths:
        raise ValueError("The training dataset is empty.")
    longest = max(lengths)
    return (min(longest, cap) if cap else longest), (2 if pairs else 1)


def _method_of(model, peft_config=None) -> str:
    """The training method, from the model (an adapter already attached) or from the peft_config a TRL trainer will
    attach to it (SFTTrainer/DPOTrainer(peft_config=...): the model is still the bare base then)."""
    if peft_config is None:
        return _training_method(model)
    if getattr(peft_config, "is_prompt_learning", False):
        return "prompt_tuning"
    return "qlora" if any(type(m).__name__ == "Linear4bit" for m in model.modules()) else "lora"


def memory_plan(model, dataset, args, usable_gb: float | None = None, *, tokenizer=None,
                peft_config=None) -> memory.StepPlan:
    """The step plan for training `model` on `dataset` with `args` (see memory.plan_step) on a card of
    `usable_gb` GiB: by default this machine's usable card memory (env.gpu_memory_gb, which
    GPTFORALL_GPU_MEMORY_GB caps); on a CPU (no card) it keeps the arguments as they are, unless usable_gb is given
    (which is how a CPU can plan for a card).

    args: TrainingArguments, SFTConfig or DPOConfig. dataset: tokenized (input_ids; DPO's *_ids) or TRL's
    untokenized forms, measured with `tokenizer` (see `training_sequence`); a preference pair counts as one example
    of twice the length (its chosen and rejected sequences share the batch; activations grow about linearly with
    tokens). peft_config: the adapter a TRL trainer will attach to the bare `model`."""
    if usable_gb is None and args.device.type == "cuda":
        usable_gb = env.gpu_memory_gb()
    method = _method_of(model, peft_config)
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    if method == "lora" and _has_int8_layers(model):
        precision = "int8"
    config = peft_config if peft_config is not None else getattr(model, "active_peft_config", None)
    seq_len, sequences = training_sequence(dataset, args, tokenizer)
    virtual = int(getattr(config, "num_virtual_tokens", 0) or 0) if method == "prompt_tuning" else 0
    return memory.plan_step(memory.model_config(model), method, precision, args.per_device_train_batch_size,
                            args.gradient_accumulation_steps, seq_len * sequences, usable_gb,
                            lora_r=int(getattr(config, "r", 8) or 8),
                            num_virtual_tokens=virtual or _virtual_tokens(model) or 20, max_batch=len(dataset))


def fit_arguments(args, model, dataset, verbose: bool = True, *, usable_gb: float | None = None, tokenizer=None,
                  peft_config=None):
    """Arguments fitted to the model and the card, same effective batch: fp16 autocast for an 8-bit base on a GPU,
    and on a GPU the micro-batch and activation checkpointing from the memory estimate (memory.plan_step).
    Works for TrainingArguments (`train`), SFTConfig and DPOConfig: call it before building the TRL trainer, with
    the tokenizer for untokenized data and the peft_config the trainer will attach (see `memory_plan`).
    usable_gb plans for a card of that size (also from a CPU). Returns `args` itself when nothing changes (always on
    a CPU without usable_gb), else a copy."""
    changes = {}
    if args.device.type == "cuda":
        autocast = _autocast_kwargs("bf16" if args.bf16 else "fp16" if args.fp16 else "fp32", "cuda", model)
        if autocast["fp16"] and args.bf16:
            changes.update(autocast)
            if verbose:
                print("8-bit base: training with fp16 autocast (bitsandbytes' int8 matmul computes in fp16)")
    if args.device.type == "cuda" or usable_gb is not None:
        plan = memory_plan(model, dataset, args, usable_gb, tokenizer=tokenizer, peft_config=peft_config)
        if verbose:
            print(f"memory plan: {plan.describe()}")
        if (plan.batch_size, plan.grad_accum, plan.checkpointing) != (
                args.per_device_train_batch_size, args.gradient_accumulation_steps, bool(args.activation_checkpointing)):
            changes.update(per_device_train_batch_size=plan.batch_size, per_device_eval_batch_size=plan.batch_size,
                           gradient_accumulation_steps=plan.grad_accum, activation_checkpointing=plan.checkpointing,
                           gradient_checkpointing=plan.checkpointing)
    return dataclasses.replace(args, **changes) if changes else args


def remove_autocast_wrapper(model) -> bool:
    """Give the model back its own forward after training; returns True when there was a wrapper to remove.

    With mixed precision, accelerate wraps the model's `forward` in its autocast (bf16/fp16) for training and leaves
    the wrapper there (it keeps the original as `model._original_forward`). Evaluated after training, such a model
    would compute under half-precision autocast while the same model before training, or a merged copy of it,
    would not: a before/after or merged/unmerged comparison would measure the autocast, not the training (notebook
    11's merge check in bf16 did). accelerate's own `extract_model_from_parallel(keep_fp32_wrapper=False)` undoes it
    the same way."""
    original = model.__dict__.pop("_original_forward", None)
    if original is None:
        return False
    model.forward = original
    return True


def run_trainer(trainer, method: str) -> TrainResult:
    """Train with an already-built Trainer/SFTTrainer and measure time, peak memory, tokens and losses.

    Refuses half-precision trainable weights before training, and stops a diverging run (FiniteGuard).
    """
    check_training_setup(trainer.train_dataset, trainer.args.per_device_train_batch_size)
    trainable, total = parameter_counts(trainer.model)
    if trainable == 0:
        raise ValueError("The model has no trainable parameters; attach an adapter or unfreeze layers.")
    check_trainable_dtypes(trainer.model, trainer.args)
    enable_fp16(trainer)
    FiniteGuard().attach(trainer)
    print(f"training {method}: {precision_summary(trainer.model, trainer.args, trainer.accelerator)}")
    device = "cuda" if trainer.args.device.type == "cuda" else "cpu"
    started = time.perf_counter()
    with PeakMemory(device) as pm:
        output = trainer.train()
    seconds = time.perf_counter() - started
    _remove_if_empty(trainer.args.output_dir)
    remove_autocast_wrapper(trainer.model)
    history = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    if not history:
        # Fewer steps than logging_steps (a smoke run): keep the run's mean loss as its one point.
        history = [(output.global_step, output.training_loss)]
    trainer.model.eval()
    return TrainResult(method=method, trainable_params=trainable, total_params=total, train_seconds=seconds,
                       peak_memory_mb=pm.peak_mb, tokens_seen=int(trainer.state.num_input_tokens_seen),
                       loss_history=history)


def _virtual_tokens(model) -> int:
    """How many soft-prompt positions PEFT prepends (prompt tuning), else 0."""
    config = getattr(model, "active_peft_config", None)
    if config is not None and getattr(config, "is_prompt_learning", False):
        return int(config.num_virtual_tokens)
    return 0


def answer_only_loss(model, inputs: dict, num_items_in_batch=None):
    """Causal-LM loss that computes logits only where a label exists.

    The output layer (vocab x hidden: 49,152 x 576 for SmolLM2) would otherwise make logits for every
    prompt token, although only the answer tokens enter the loss. Same value as the usual loss, with either
    padding side: a 2-D boolean logits_to_keep selects hidden states row by row (transformers'
    slice_logits_to_keep: hidden_states[keep] -> (n_answer_tokens, hidden)), in the same row-major order as
    targets[targets != -100]. Returns (loss, outputs).
    """
    import torch
    import torch.nn.functional as F

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    targets = labels[:, 1:]                                   # position t predicts token t+1
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != -100                            # (b, seq): positions whose next token is an answer
    n_virtual = _virtual_tokens(model)
    if n_virtual:                                             # soft prompt sits before the text
        keep = torch.cat([keep.new_zeros(keep.shape[0], n_virtual), keep], dim=1)
    outputs = model(**inputs, logits_to_keep=keep)
    logits = outputs.logits.reshape(-1, outputs.logits.shape[-1])  # (n_answer_tokens, vocab)
    loss = F.cross_entropy(logits.float(), targets[targets != -100], reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (targets != -100).sum().clamp(min=1)
    return loss / count, outputs


def _trainer_class():
    from transformers import Trainer

    class AnswerOnlyTrainer(Trainer):
        """Trainer whose loss computes logits only at the answer positions (see answer_only_loss)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            loss, outputs = answer_only_loss(model, inputs, num_items_in_batch)
            return (loss, outputs) if return_outputs else loss

    return AnswerOnlyTrainer


def train(model, train_dataset, args, tokenizer, method: str = "lora", callbacks=None,
          answer_only: bool = True, fit: bool = True) -> TrainResult:
    """Train `model` on a tokenized prompt/completion dataset with transformers' Trainer, measured.

    answer_only=True computes logits only at answer positions (same loss, less work); False uses the stock
    Trainer loss. Batches are padded on the right either way (TRAINING_PADDING_SIDE). fit=True first fits
    the arguments to the model and the card (`fit_arguments`; nothing changes on a CPU).
    """
    from transformers import Trainer

    check_training_setup(train_dataset, args.per_device_train_batch_size)
    if "input_ids" not in train_dataset.column_names or "labels" not in train_dataset.column_names:
        raise ValueError("train() needs a tokenized dataset with input_ids and labels; build it with "
                         "training.prompt_completion_dataset().")
    if fit:
        args = fit_arguments(args, model, train_dataset)
    cls = _trainer_class() if answer_only else Trainer
    trainer = cls(model=model, args=args, train_dataset=train_dataset,
                  data_collator=collator(tokenizer, TRAINING_PADDING_SIDE), callbacks=callbacks)
    return run_trainer(trainer, method)


# ---------------------------------------------------------------- preference tuning (DPO)
def dpo_config(run: env.Run, output_dir=None, *, beta: float = 0.1, learning_rate: float = 5e-4, epochs: float = 1,
               batch_size: int | None = None, grad_accum: int | None = None, max_steps: int = -1,
               logging_steps: int = 5, warmup_steps: int = 0, max_length: int = 512,
               gradient_checkpointing: bool | None = None, **overrides):
    """TRL DPOConfig with the same hardware rules as sft_config (TRL's own defaults assume a bf16 GPU).

    beta scales the implicit reward beta * log(pi / pi_ref): a larger beta keeps the policy closer to the
    reference. The default learning rate suits a LoRA adapter (TRL's 1e-6 is for full fine-tuning).
    A batch of `batch_size` pairs holds 2 x batch_size sequences (each pair's chosen and rejected answer).
    """
    from trl import DPOConfig

    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a positive number, got {beta!r}.")
    kwargs = _common_kwargs(run, output_dir, learning_rate, epochs, batch_size, grad_accum, max_steps,
                            logging_steps, warmup_steps, gradient_checkpointing)
    kwargs["beta"] = float(beta)
    kwargs["max_length"] = max_length
    kwargs.update(overrides)
    return DPOConfig(**kwargs)


def tokenize_pairs(tokenizer, rows) -> list[dict]:
    """Conversational preference pairs as token ids, split the way TRL's DPOTrainer splits them: prompt_ids
    (chat template with the generation prompt), then chosen_ids and rejected_ids (the rest of each rendered
    conversation: the answer and its end-of-turn tokens)."""

    def ids(messages, **kwargs):
        return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"])

    out = []
    for row in rows:
        prompt = ids(row["prompt"], add_generation_prompt=True)
        chosen, rejected = ids(row["prompt"] + row["chosen"]), ids(row["prompt"] + row["rejected"])
        n = min(_common_prefix(prompt, chosen), _common_prefix(prompt, rejected))
        out.append({"prompt_ids": prompt[:n], "chosen_ids": chosen[n:], "rejected_ids": rejected[n:]})
    return out


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def preference_batches(tokenizer, rows, batch_size: int = 4, max_length: int | None = None):
    """Batches of conversational pairs built by TRL's own collator (chosen rows first, then rejected rows,
    right-padded, with a completion_mask), so log-probabilities match the trainer's."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collate = DataCollatorForPreference(pad_token_id=pad_id, max_length=max_length)
    examples = tokenize_pairs(tokenizer, rows)
    return [collate(examples[i:i + batch_size]) for i in range(0, len(examples), batch_size)]


def completion_logps(model, batch) -> tuple:
    """log pi(answer | prompt) for each sequence of a preference batch: the sum of its completion tokens'
    log-probabilities. Returns (chosen, rejected), each of shape (pairs,). No gradients."""
    import torch

    device = next(model.parameters()).device
    input_ids = batch["input_ids"].to(device)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=batch["attention_mask"].to(device)).logits
    logp = logits[:, :-1].float().log_softmax(-1)                          # position t predicts token t+1
    token_logp = logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (2 * pairs, seq - 1)
    mask = batch["completion_mask"][:, 1:].to(device).bool()
    return (token_logp * mask).sum(-1).cpu().chunk(2)


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float):
    """The DPO loss, -log sigmoid(beta * [(log pi - log pi_ref)(chosen) - (log pi - log pi_ref)(rejected)]),
    averaged over pairs. Returns (loss, chosen_rewards, rejected_rewards), the rewards being beta * log-ratios."""
    import torch.nn.functional as F

    chosen_rewards = beta * (policy_chosen - ref_chosen)
    rejected_rewards = beta * (policy_rejected - ref_rejected)
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean(), chosen_rewards, rejected_rewards


@dataclass
class PreferenceScores:
    """Per pair: log-probabilities of both answers under the policy and the reference, answer lengths in
    tokens, and the policy's mean per-token KL to the reference over the answers' tokens."""

    policy_chosen: list[float]
    policy_rejected: list[float]
    ref_chosen: list[float]
    ref_rejected: list[float]
    chosen_tokens: list[int]
    rejected_tokens: list[int]
    kl_per_token: float

    def __len__(self) -> int:
        return len(self.policy_chosen)

    def margins(self, beta: float) -> list[float]:
        """Implicit reward margin of each pair: beta * [(log pi - log pi_ref)(chosen) - (...)(rejected)]."""
        return [beta * ((pc - rc) - (pr - rr)) for pc, pr, rc, rr in
                zip(self.policy_chosen, self.policy_rejected, self.ref_chosen, self.ref_rejected)]

    def rewards(self, beta: float) -> tuple[list[float], list[float]]:
        chosen = [beta * (p - r) for p, r in zip(self.policy_chosen, self.ref_chosen)]
        rejected = [beta * (p - r) for p, r in zip(self.policy_rejected, self.ref_rejected)]
        return chosen, rejected

    def accuracy(self) -> tuple[float, int, int, int]:
        """(accuracy, wins, ties, n): the share of pairs whose implicit reward ranks chosen above rejected, a
        tie (margin exactly 0, as for every pair while policy == reference) counting as half a win: chance."""
        margins = self.margins(1.0)
        wins = sum(m > 0 for m in margins)
        ties = sum(m == 0 for m in margins)
        return (wins + 0.5 * ties) / len(margins), wins, ties, len(margins)

    def likelihood_accuracy(self, per_token: bool = False) -> float:
        """Share of pairs the *reference* model itself ranks chosen first by likelihood (log pi_ref), summed
        or per token: the ranking DPO does not use, because it mostly measures length and familiarity."""
        def score(total, n):
            return total / max(n, 1) if per_token else total
        return sum(score(c, nc) > score(r, nr) for c, r, nc, nr in zip(
            self.ref_chosen, self.ref_rejected, self.chosen_tokens, self.rejected_tokens)) / len(self)


def preference_scores(model, tokenizer, rows, batch_size: int = 4, max_length: int | None = None) -> PreferenceScores:
    """Score conversational pairs with a PEFT policy and its reference (the same weights, adapter disabled).

    KL(pi || pi_ref) is averaged over the answer tokens of both answers, with the text fixed (teacher forcing).
    """
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts = {k: [] for k in ("pc", "pr", "rc", "rr", "nc", "nr")}
    kl_sum, kl_tokens = 0.0, 0
    for batch in preference_batches(tokenizer, rows, batch_size, max_length):
        ids, attn = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        mask = batch["completion_mask"][:, 1:].to(device).bool()
        with torch.no_grad():
            policy = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float().log_softmax(-1)
            with model.disable_adapter():
                ref = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float().log_softmax(-1)
        targets = ids[:, 1:].unsqueeze(-1)
        pol_seq = (policy.gather(-1, targets).squeeze(-1) * mask).sum(-1).cpu()
        ref_seq = (ref.gather(-1, targets).squeeze(-1) * mask).sum(-1).cpu()
        kl = (policy.exp() * (policy - ref)).sum(-1)                      # (2 * pairs, seq - 1)
        kl_sum += float((kl * mask).sum())
        kl_tokens += int(mask.sum())
        n_tokens = mask.sum(-1).cpu()
        for key, values in zip(("pc", "pr"), pol_seq.chunk(2)):
            parts[key] += values.tolist()
        for key, values in zip(("rc", "rr"), ref_seq.chunk(2)):
            parts[key] += values.tolist()
        for key, values in zip(("nc", "nr"), n_tokens.chunk(2)):
            parts[key] += [int(v) for v in values]
    model.train(was_training)
    return PreferenceScores(parts["pc"], parts["pr"], parts["rc"], parts["rr"], parts["nc"], parts["nr"],
                            kl_sum / max(kl_tokens, 1))
