"""Memory: how much a model needs (pure arithmetic) and how much it used (measurement).

Measurement: `PeakMemory` records the CUDA peak on a GPU, and on a CPU the growth of the
process's peak resident set size (sampled in a background thread, because the kernel's own
high-water mark cannot be reset).
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass

MB = 2**20


def rss_bytes() -> int:
    """Current resident set size of this process, in bytes (Linux /proc; falls back to psutil)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss


class PeakMemory:
    """Context manager: peak memory used by the code inside it, above what was in use before.

        with PeakMemory() as pm:
            trainer.train()
        pm.peak_mb   # CUDA: max_memory_allocated growth; CPU: peak RSS growth
    """

    def __init__(self, device: str | None = None, interval: float = 0.005):
        if device is None:
            from . import env

            device = env.device()
        self.device = device
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        import gc

        gc.collect()
        self._started = time.perf_counter()
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
            self.peak = self.baseline
        else:
            self.baseline = rss_bytes()
            self.peak = self.baseline
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self.peak = max(self.peak, rss_bytes())
        self.seconds = time.perf_counter() - self._started

    @property
    def peak_mb(self) -> float:
        """Peak memory above the baseline, in MiB."""
        return (self.peak - self.baseline) / MB


def release_freed_memory() -> None:
    """Hand memory that Python and PyTorch have freed back to the operating system before measuring.

    On CPU, glibc keeps freed blocks in its heap, so a second measurement in the same process would
    reuse them and look smaller; malloc_trim returns them. On a GPU, empty PyTorch's cache.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows): nothing to trim
        pass
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def return_freed_memory(threshold: int = 64 * 1024) -> bool:
    """Make this process's resident memory follow its live tensors (glibc only; returns whether it could).

    From now on every allocation of at least `threshold` bytes gets its own pages from the OS and gives
    them back when freed, instead of glibc keeping freed blocks in its heap for reuse. A CPU peak-RSS
    measurement then counts what CUDA's max_memory_allocated counts on a GPU: live tensors. Call it
    before the process allocates large tensors (blocks already in the heap are still reused); it costs
    a little speed.
    """
    import ctypes

    _positive(threshold=threshold)
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows)
        return False
    release_freed_memory()
    return bool(mallopt(M_MMAP_THRESHOLD, int(threshold)))


# ---------------------------------------------------------------- hardware and prices (one place, dated)
PRICES_AS_OF = "2026-11"


class Hardware(dict):
    """memory_gb, usd_per_hour (typical on-demand cloud price; varies by provider and region),
    tflops (dense half-precision tensor throughput from the vendor's datasheet)."""


HARDWARE: dict[str, Hardware] = {
    "CPU machine 24 GB": Hardware(memory_gb=24, usd_per_hour=0.10, tflops=0.1),
    "Colab T4 16 GB": Hardware(memory_gb=16, usd_per_hour=0.35, tflops=65),
    "L4 24 GB": Hardware(memory_gb=24, usd_per_hour=0.70, tflops=121),
    "A100 40 GB": Hardware(memory_gb=40, usd_per_hour=1.30, tflops=312),
    "A100 80 GB": Hardware(memory_gb=80, usd_per_hour=1.80, tflops=312),
    "H100 80 GB": Hardware(memory_gb=80, usd_per_hour=2.50, tflops=989),
    "H200 141 GB": Hardware(memory_gb=141, usd_per_hour=3.50, tflops=989),
}

# The model number of each GPU row, as it appears in the device name torch reports ("Tesla T4", "NVIDIA L4",
# "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3", "NVIDIA H200"), matched as a whole word: "L4" is not "L40S".
CARD_MODELS = {"Colab T4 16 GB": "T4", "L4 24 GB": "L4", "A100 40 GB": "A100", "A100 80 GB": "A100",
               "H100 80 GB": "H100", "H200 141 GB": "H200"}


def hardware_row(device_name: str, memory_gib: float | None = None) -> str:
    """The HARDWARE row of a CUDA card, from the name torch reports (`torch.cuda.get_device_name`) and the
    memory it reports (`get_device_properties(i).total_memory / GIB`).

    The model number decides, as a whole word of the name, so every row of that model is a candidate; among
    them (A100 40 GB / 80 GB) the memory written in the name ("A100-SXM4-80GB") decides, else the nearest to
    `memory_gib`, else the first. A card whose model is in no row is priced as the GPU row with the nearest
    memory (the first of a tie): give `memory_gib` then, or it raises ValueError.
    """
    rows = [row for row, model in CARD_MODELS.items() if re.search(rf"(?<![A-Za-z0-9]){model}(?![A-Za-z0-9])",
                                                                    device_name, re.IGNORECASE)]
    written = re.search(r"(\d+)\s*GB", device_name, re.IGNORECASE)
    if rows and written:
        rows = [row for row in rows if HARDWARE[row]["memory_gb"] == int(written.group(1))] or rows
    if len(rows) == 1 or rows and memory_gib is None:
        return rows[0]
    if memory_gib is None:
        raise ValueError(f"{device_name!r} is not in memory.HARDWARE and no memory_gib was given to price it by.")
    return min(rows or CARD_MODELS, key=lambda row: abs(HARDWARE[row]["memory_gb"] - memory_gib))


# ---------------------------------------------------------------- memory math (pure functions)
GB = 1e9  # model sizes and GPU memory are quoted in decimal gigabytes (1B fp32 parameters = 4 GB)

# Bytes that one stored value takes. int8/nf4 are storage formats for frozen weights (bitsandbytes):
# LLM.int8 keeps one byte per weight; NF4 packs two weights per byte plus one absmax constant per
# block of 64 weights (quantized again with double quantization: about 0.127 extra bits per weight).
PRECISION_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "nf4": 0.5 + 0.127 / 8}
HALF = ("fp16", "bf16")
QUANTIZED = ("int8", "nf4")
METHODS = ("full", "lora", "prompt_tuning", "qlora")
STRATEGIES = ("ddp", "fsdp")  # data parallel (full copy per GPU) / fully sharded (ZeRO-3)
# Optimizer state per trainable parameter, in bytes: AdamW keeps two moments (m and v) in fp32;
# bitsandbytes' 8-bit AdamW keeps them in one byte each (block-wise quantized); plain SGD keeps none.
OPTIMIZER_STATE_BYTES = {"adamw": 8.0, "adamw_8bit": 2.0, "sgd": 0.0}


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"Unknown {name} {value!r}; choose one of: {', '.join(map(str, choices))}.")


def _positive(**values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}.")


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a decoder-only transformer: enough to count parameters and activations.

    gated_mlp: LLaMA-style SwiGLU MLP (gate, up, down) instead of the classic two-matrix MLP.
    params: the published parameter count where it differs from the count of this shape (biases,
    vocabulary padding); None means "count it from the shape".
    """

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = False
    gated_mlp: bool = True
    params: int | None = None

    def __post_init__(self):
        _positive(hidden=self.hidden, layers=self.layers, heads=self.heads, kv_heads=self.kv_heads,
                  intermediate=self.intermediate, vocab=self.vocab)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def kv_dim(self) -> int:
        """Width of the key (and of the value) projection: fewer heads than queries with grouped-query attention."""
        return self.kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear layer inside one transformer block."""
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        shapes = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h)}
        if self.gated_mlp:
            shapes.update(gate_proj=(h, i), up_proj=(h, i), down_proj=(i, h))
        else:
            shapes.update(up_proj=(h, i), down_proj=(i, h))
        return shapes

    @property
    def embedding_params(self) -> int:
        """Token embedding plus the output head when it is not tied to the embedding."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def linear_params(self) -> int:
        """Weights of the linear layers in all blocks: what bitsandbytes quantizes."""
        return self.layers * sum(a * b for a, b in self.linear_shapes().values())

    @property
    def counted_params(self) -> int:
        """Parameters counted from the shape: embeddings, linear layers, two norms per block and a final norm."""
        return self.embedding_params + self.linear_params + (2 * self.layers + 1) * self.hidden

    @property
    def num_params(self) -> int:
        return self.params if self.params is not None else self.counted_params

    @classmethod
    def from_hf(cls, config, name: str | None = None) -> ModelConfig:
        """Read the shape from a transformers config (LLaMA-style models such as SmolLM2)."""
        return cls(
            name=name or getattr(config, "_name_or_path", "") or config.model_type,
            hidden=config.hidden_size, layers=config.num_hidden_layers, heads=config.num_attention_heads,
            kv_heads=getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
            intermediate=config.intermediate_size, vocab=config.vocab_size,
            tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        )


# Shapes from each model's published config (Hugging Face config.json or the paper).
MODELS: dict[str, ModelConfig] = {m.name: m for m in (
    ModelConfig("SmolLM2-135M", 576, 30, 9, 3, 1536, 49152, tied_embeddings=True),
    ModelConfig("SmolLM2-360M", 960, 32, 15, 5, 2560, 49152, tied_embeddings=True),
    ModelConfig("SmolLM2-1.7B", 2048, 24, 32, 32, 8192, 49152, tied_embeddings=True),
    ModelConfig("LLaMA-7B", 4096, 32, 32, 32, 11008, 32000),
    ModelConfig("LLaMA-13B", 5120, 40, 40, 40, 13824, 32000),
    ModelConfig("Falcon-40B", 8192, 60, 128, 8, 32768, 65024, gated_mlp=False),
    ModelConfig("LLaMA-65B", 8192, 80, 64, 64, 22016, 32000),
    ModelConfig("Llama2-70B", 8192, 80, 64, 8, 28672, 32000),
    ModelConfig("GPT-3-175B", 12288, 96, 96, 96, 49152, 50257, tied_embeddings=True, gated_mlp=False,
                params=175_000_000_000),
)}


def model_config(model: str | ModelConfig) -> ModelConfig:
    """A ModelConfig from a name in MODELS, a ModelConfig, or a transformers config/model."""
    if isinstance(model, ModelConfig):
        return model
    if isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"Unknown model {model!r}; choose one of: {', '.join(MODELS)} (or pass a ModelConfig).")
        return MODELS[model]
    config = getattr(model, "config", model)
    if hasattr(config, "hidden_size"):
        return ModelConfig.from_hf(config)
    raise ValueError(f"Cannot read a model shape from {type(model).__name__}; pass a name from MODELS, "
                     "a ModelConfig or a transformers config.")


def lora_params(model: str | ModelConfig, r: int = 8, targets: tuple[str, ...] | None = None) -> int:
    """Trainable parameters of LoRA adapters: r * (in + out) for every targeted linear layer
    (targets=None: every linear layer of the block)."""
    cfg = model_config(model)
    _positive(r=r)
    shapes = cfg.linear_shapes()
    targets = tuple(shapes) if targets is None else tuple(targets)
    unknown = [t for t in targets if t not in shapes]
    if unknown or not targets:
        raise ValueError(f"Unknown LoRA target(s) {unknown}; choose from: {', '.join(shapes)}.")
    return cfg.layers * sum(r * (shapes[t][0] + shapes[t][1]) for t in targets)


def activation_values_per_token(model: str | ModelConfig, checkpointing: bool = False, method: str = "full",
                                lora_r: int = 8, lora_targets: tuple[str, ...] | None = None,
                                lora_dropout: float = 0.0) -> dict[str, float]:
    """Values that autograd keeps for the backward pass, per token (eager PyTorch, LLaMA-style block).

    The count matches what `torch.autograd.graph.saved_tensors_hooks` reports for SmolLM2 (notebook 01).
    Full fine-tuning keeps 8h + 2kv + 4i per block: the residual stream and the normalised values around
    the two RMSNorms (the norm weights need them for their gradients), the inputs of the linear layers, the
    rotated queries, the keys and values and the attention output, and in the MLP the gate, its activation,
    the up projection and their product (2i without a gate); plus one scale per norm and one log-sum-exp per
    head, and 3h around the final norm. A frozen base (LoRA, QLoRA, prompt tuning) keeps 2h less per block:
    frozen norms need no normalised copy, and a frozen linear layer needs only its weight to pass the
    gradient back. Each LoRA adapter keeps the output of its A matrix (r values); with lora_dropout > 0
    peft drops the input of every adapted layer separately, so each adapter also keeps its dropped input
    and the dropout mask (2 x in_features: an upper bound, about 15% high for SmolLM2, because autograd
    does not keep every mask). With gradient checkpointing only the residual stream entering
    each block is kept (plus one block being recomputed). The language-model head keeps the
    log-probabilities over the vocabulary; the backward pass adds their gradient and the logits' gradient,
    3V at its peak.
    """
    cfg = model_config(model)
    _choice("method", method, METHODS)
    if not 0 <= lora_dropout < 1:
        raise ValueError(f"lora_dropout must be in [0, 1), got {lora_dropout!r}.")
    h, kv, i = cfg.hidden, cfg.kv_dim, cfg.intermediate
    frozen = method != "full"
    block = (6 if frozen else 8) * h + 2 * kv + (4 if cfg.gated_mlp else 2) * i + 2 + cfg.heads
    top = 0 if frozen else 3 * h
    if method in ("lora", "qlora"):
        shapes = cfg.linear_shapes()
        targets = tuple(shapes) if lora_targets is None else tuple(lora_targets)
        block += lora_r * len(targets)
        if lora_dropout > 0:
            block += 2 * sum(shapes[t][0] for t in targets if t in shapes)
    blocks = (cfg.layers * h + block) if checkpointing else cfg.layers * block
    return {"blocks": float(blocks + top), "logits": 3.0 * cfg.vocab}


def activation_bytes(model: str | ModelConfig, batch_size: int, seq_len: int, precision: str = "fp32",
                     checkpointing: bool = False, method: str = "full", lora_r: int = 8,
                     lora_targets: tuple[str, ...] | None = None, lora_dropout: float = 0.0) -> float:
    """Bytes of activations kept for backward for one batch (batch_size x seq_len tokens).

    Logits stay fp32 whatever the precision (transformers upcasts them for the loss).
    """
    _positive(batch_size=batch_size, seq_len=seq_len)
    _choice("precision", precision, tuple(PRECISION_BYTES))
    compute = PRECISION_BYTES[precision] if precision in HALF else 4.0
    per_token = activation_values_per_token(model, checkpointing, method, lora_r, lora_targets, lora_dropout)
    return batch_size * seq_len * (per_token["blocks"] * compute + per_token["logits"] * 4.0)


@dataclass(frozen=True)
class Breakdown:
    """Memory of one training (or inference) setup, in bytes, by what it is for."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    trainable_params: int
    total_params: int
    label: str = ""

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations

    @property
    def above_weights(self) -> float:
        """What a training step needs on top of a model already loaded (what PeakMemory measures)."""
        return self.total - self.weights

    @property
    def peak_above_weights(self) -> float:
        """The training step's peak on top of the loaded model: the backward pass frees activations while it
        builds gradients, so the two are never all there at once; the peak holds the larger of them."""
        return self.optimizer + max(self.gradients, self.activations)

    def per_device(self, n_gpus: int = 1, strategy: str = "ddp") -> float:
        """Bytes on each of n_gpus GPUs. DDP gives every GPU a full copy; FSDP (ZeRO-3) shards weights,
        gradients and optimizer state across them, while each GPU still holds its own micro-batch's activations."""
        _choice("strategy", strategy, STRATEGIES)
        _positive(n_gpus=n_gpus)
        shards = n_gpus if strategy == "fsdp" else 1
        return (self.total - self.activations) / shards + self.activations

    def gb(self) -> dict[str, float]:
        """The parts and the total in GB (1e9 bytes)."""
        parts = {"weights": self.weights, "gradients": self.gradients, "optimizer": self.optimizer,
                 "activations": self.activations, "total": self.total}
        return {k: v / GB for k, v in parts.items()}

    def bytes_per_parameter(self) -> float:
        return self.total / self.total_params


def weight_bytes(model: str | ModelConfig, precision: str) -> float:
    """Bytes to hold the weights. Quantized formats apply to the linear layers only (as in bitsandbytes);
    embeddings and norms stay in fp32 for int8/nf4 storage."""
    cfg = model_config(model)
    _choice("precision", precision, tuple(PRECISION_BYTES))
    if precision in QUANTIZED:
        other = cfg.num_params - cfg.linear_params
        return cfg.linear_params * PRECISION_BYTES[precision] + other * 4.0
    return cfg.num_params * PRECISION_BYTES[precision]


def estimate(model: str | ModelConfig, method: str = "full", precision: str = "fp32", optimizer: str = "adamw",
             batch_size: int = 1, seq_len: int = 512, lora_r: int = 8,
             lora_targets: tuple[str, ...] | None = None, num_virtual_tokens: int = 20,
             checkpointing: bool = False, lora_dropout: float = 0.0) -> Breakdown:
    """Training memory by part: weights, gradients, optimizer states, activations.

    method: "full" (every weight trains), "lora" (frozen base + adapters), "prompt_tuning" (frozen
    base + virtual-token embeddings), "qlora" (LoRA on an NF4 base). precision: "fp32"; "fp16"/"bf16"
    mixed precision (half-precision weights and gradients plus an fp32 master copy kept with the
    optimizer); "int8"/"nf4" store a frozen base (not with method="full"). Trainable parameters
    (adapters, prompts) are fp32 with fp32 gradients, as peft keeps them.

    Full fine-tuning in mixed precision costs 16 bytes per parameter with AdamW in either layout: the
    textbook one above (2 + 2 + 4 master + 8), or the one the course's training code uses, torch autocast
    over fp32 weights (`models.load_model(..., full_finetuning=True)`): the fp32 weights are the master copy
    (4), their gradients fp32 (4), AdamW 8. Autocast's half-precision copies of the weights, made during the
    step, come on top (2 bytes per parameter at most) and are not counted here.
    """
    cfg = model_config(model)
    _choice("method", method, METHODS)
    _choice("precision", precision, tuple(PRECISION_BYTES))
    _choice("optimizer", optimizer, tuple(OPTIMIZER_STATE_BYTES))
    _positive(batch_size=batch_size, seq_len=seq_len, lora_r=lora_r, num_virtual_tokens=num_virtual_tokens)
    n = cfg.num_params
    if method == "full" and precision in QUANTIZED:
        raise ValueError(f"method='full' cannot train {precision} weights (quantized weights are frozen); "
                         "use method='lora' or 'qlora', or precision fp32/fp16/bf16.")
    base_precision = "nf4" if method == "qlora" else precision
    compute = "fp32" if precision in QUANTIZED else precision
    weights = weight_bytes(cfg, base_precision)
    tokens = seq_len
    if method == "full":
        trainable = n
        grad_bytes = PRECISION_BYTES[precision]
        master = 4.0 if precision in HALF else 0.0  # fp32 copy the optimizer updates in mixed precision
        gradients = n * grad_bytes
        optimizer_bytes = n * (OPTIMIZER_STATE_BYTES[optimizer] + master)
    else:
        if method in ("lora", "qlora"):
            trainable = lora_params(cfg, lora_r, lora_targets)
        else:
            trainable = num_virtual_tokens * cfg.hidden
            tokens = seq_len + num_virtual_tokens
        gradients = trainable * 4.0
        optimizer_bytes = trainable * OPTIMIZER_STATE_BYTES[optimizer]
        weights += trainable * 4.0
    activations = activation_bytes(cfg, batch_size, tokens, compute, checkpointing, method, lora_r, lora_targets,
                                   lora_dropout)
    return Breakdown(weights, gradients, optimizer_bytes, activations, trainable, n + (0 if method == "full" else trainable),
                     label=f"{cfg.name} {method} {precision} {optimizer}")


def inference(model: str | ModelConfig, precision: str = "fp32", batch_size: int = 1, seq_len: int = 512) -> Breakdown:
    """Inference memory: the weights plus the key/value cache and the last position's logits."""
    cfg = model_config(model)
    _choice("precision", precision, tuple(PRECISION_BYTES))
    _positive(batch_size=batch_size, seq_len=seq_len)
    compute = PRECISION_BYTES[precision] if precision in HALF else 4.0
    kv_cache = 2 * cfg.layers * cfg.kv_dim * seq_len * batch_size * compute
    logits = batch_size * cfg.vocab * 4.0
    return Breakdown(weight_bytes(cfg, precision), 0.0, 0.0, kv_cache + logits, 0, cfg.num_params,
                     label=f"{cfg.name} inference {precision}")


# What each method means in the "will it fit" table: the usual way to run it on that budget.
FIT_SETUPS = {
    "inference fp16": dict(kind="inference", precision="fp16"),
    "inference nf4": dict(kind="inference", precision="nf4"),
    "full fp32": dict(method="full", precision="fp32", optimizer="adamw"),
    "full mixed": dict(method="full", precision="bf16", optimizer="adamw"),
    "lora fp16": dict(method="lora", precision="fp16", optimizer="adamw"),
    "qlora": dict(method="qlora", precision="bf16", optimizer="adamw"),
}


def will_it_fit(model: str | ModelConfig, hardware: str, setup: str = "full mixed", batch_size: int = 1,
                seq_len: int = 512, headroom: float = 0.9) -> tuple[bool, float, str]:
    """(fits, needed GB, one-line verdict) for a model on a machine from HARDWARE.

    A setup fits when it needs at most `headroom` of the memory: the CUDA context, the allocator's
    cache and fragmentation take the rest.
    """
    _choice("hardware", hardware, tuple(HARDWARE))
    _choice("setup", setup, tuple(FIT_SETUPS))
    if not 0 < headroom <= 1:
        raise ValueError(f"headroom must be in (0, 1], got {headroom!r}.")
    spec = dict(FIT_SETUPS[setup])
    if spec.pop("kind", None) == "inference":
        b = inference(model, batch_size=batch_size, seq_len=seq_len, **spec)
    else:
        b = estimate(model, batch_size=batch_size, seq_len=seq_len, checkpointing=True, **spec)
    need, have = b.total / GB, HARDWARE[hardware]["memory_gb"]
    usable = headroom * have
    if need <= usable:
        verdict = f"fits: {need:,.1f} of {have} GB"
    elif need <= have:
        verdict = f"tight: {need:,.1f} of {have} GB leaves no room for the runtime"
    else:
        verdict = f"no: needs {need:,.1f} GB, {need / have:,.1f}x the {have} GB"
    return need <= usable, need, verdict


def fit_table(models: list[str] | None = None, hardware: list[str] | None = None,
              setups: list[str] | None = None, **kwargs) -> list[dict]:
    """Rows of (model, hardware, setup, fits, GB needed, verdict) for the "will it fit" table."""
    rows = []
    for m in models or list(MODELS):
        for hw in hardware or list(HARDWARE):
            for s in setups or list(FIT_SETUPS):
                fits, need, verdict = will_it_fit(m, hw, s, **kwargs)
                rows.append({"model": m, "hardware": hw, "setup": s, "fits": fits, "gb": need, "verdict": verdict})
    return rows


# ---------------------------------------------------------------- planning a training step on a card
GIB = 2**30  # card memory is reported in GiB (torch, nvidia-smi, GPTFORALL_GPU_MEMORY_GB)
MIN_MICRO_BATCH = 4  # below this, recomputing activations usually costs less than tiny, inefficient batches


@dataclass(frozen=True)
class StepPlan:
    """How a training step runs on a card: micro-batch x accumulation (their product is the batch the
    notebook asked for), whether activations are recomputed (checkpointing), and the estimate behind it."""

    batch_size: int
    grad_accum: int
    checkpointing: bool
    need_bytes: float
    usable_bytes: float | None  # None: no card to plan for (CPU): nothing changes
    fits: bool

    def describe(self) -> str:
        where = "" if self.usable_bytes is None else f" of {self.usable_bytes / GIB:,.1f} GiB usable"
        return (f"micro-batch {self.batch_size} x {self.grad_accum} accumulation, activation checkpointing "
                f"{'on' if self.checkpointing else 'off'}: estimated {self.need_bytes / GIB:,.1f} GiB{where}"
                + ("" if self.fits else " (does not fit even so: expect an out-of-memory error; shorten the "
                   "sequences, use LoRA/QLoRA or a smaller model)"))


def plan_step(model: str | ModelConfig, method: str, precision: str, batch_size: int, grad_accum: int,
              seq_len: int, usable_gb: float | None, *, lora_r: int = 8,
              lora_targets: tuple[str, ...] | None = None, num_virtual_tokens: int = 20,
              optimizer: str = "adamw", headroom: float = 0.9, min_batch: int = MIN_MICRO_BATCH,
              max_batch: int | None = None) -> StepPlan:
    """Choose micro-batch, accumulation and activation checkpointing from the memory estimate.

    Keeps the effective batch (batch_size x grad_accum). Without a card (usable_gb None, a CPU) nothing
    changes and activations are kept. On a card: the largest micro-batch (a divisor of the effective batch,
    at least min(batch_size, min_batch)) whose step fits in `headroom` of the usable memory without
    checkpointing; only when none fits, checkpointing with the largest micro-batch that then fits.
    precision is the compute precision (fp32/fp16/bf16) or the frozen base's storage (int8, nf4).
    max_batch (e.g. the number of training examples) caps the micro-batch.
    """
    _positive(batch_size=batch_size, grad_accum=grad_accum, seq_len=seq_len)
    if not 0 < headroom <= 1:
        raise ValueError(f"headroom must be in (0, 1], got {headroom!r}.")

    def need(b: int, ckpt: bool) -> float:
        return estimate(model, method, precision, optimizer, batch_size=b, seq_len=seq_len, lora_r=lora_r,
                        lora_targets=lora_targets, num_virtual_tokens=num_virtual_tokens,
                        checkpointing=ckpt).total

    if usable_gb is None:
        return StepPlan(batch_size, grad_accum, False, need(batch_size, False), None, True)
    _positive(usable_gb=usable_gb)
    budget = headroom * usable_gb * GIB
    effective = batch_size * grad_accum
    largest = effective if max_batch is None else max(1, min(effective, max_batch))
    sizes = [b for b in range(largest, 0, -1) if effective % b == 0]
    floor = min(batch_size, min_batch)
    for b in (b for b in sizes if b >= floor):
        if need(b, False) <= budget:
            return StepPlan(b, effective // b, False, need(b, False), usable_gb * GIB, True)
    for b in sizes:
        if need(b, True) <= budget:
            return StepPlan(b, effective // b, True, need(b, True), usable_gb * GIB, True)
    return StepPlan(1, effective, True, need(1, True), usable_gb * GIB, False)


# ---------------------------------------------------------------- scaling laws and cost
TOKENS_PER_PARAMETER = 20  # compute-optimal ratio (Hoffmann et al., 2022, "Chinchilla")
BYTES_PER_TOKEN = 4.6e12 / 1.4e12  # LLaMA: 1.4T tokens from about 4.6 TB of text


@dataclass(frozen=True)
class TrainedModel:
    name: str
    year: int
    params: float  # N
    tokens: float  # D, training tokens


# Published sizes and training-token counts (GPT-2's is an estimate: WebText, ~40 GB, a few epochs).
SCALING_MODELS = (
    TrainedModel("GPT-2", 2019, 1.5e9, 1.0e10),
    TrainedModel("GPT-3", 2020, 175e9, 300e9),
    TrainedModel("Gopher", 2021, 280e9, 300e9),
    TrainedModel("Chinchilla", 2022, 70e9, 1.4e12),
    TrainedModel("LLaMA-7B", 2023, 6.7e9, 1.0e12),
    TrainedModel("LLaMA-13B", 2023, 13e9, 1.0e12),
    TrainedModel("LLaMA-33B", 2023, 32.5e9, 1.4e12),
    TrainedModel("LLaMA-65B", 2023, 65.2e9, 1.4e12),
    TrainedModel("Llama2-70B", 2023, 69e9, 2.0e12),
    TrainedModel("SmolLM2-1.7B", 2024, 1.7e9, 11e12),
)


def training_flops(params: float, tokens: float, method: str = "full") -> float:
    """C ≈ 6·N·D: per token, 2N for the forward pass and 4N for the backward pass.

    With a frozen base (LoRA, QLoRA, prompt tuning) the weight gradients are skipped, about 4·N·D.
    """
    _positive(params=params, tokens=tokens)
    _choice("method", method, METHODS)
    return (6.0 if method == "full" else 4.0) * params * tokens


def compute_optimal_tokens(params: float) -> float:
    """Tokens a model of this size should see for the best loss per unit of compute (about 20 per parameter)."""
    _positive(params=params)
    return TOKENS_PER_PARAMETER * params


# The course's one utilisation assumption (notebooks 01 and 09): the share of a device's datasheet peak that a
# well-tuned training run of a large model reaches (model FLOPs utilisation). PaLM reported 46% on TPU v4 and
# most large GPU runs report 30-50%. Small models on small batches reach far less: measure them (notebook 09).
UTILIZATION = 0.4


def gpu_hours(flops: float, hardware: str, utilization: float = UTILIZATION) -> float:
    """Hours on one device of HARDWARE at a share `utilization` of its peak throughput (UTILIZATION by default)."""
    _positive(flops=flops)
    _choice("hardware", hardware, tuple(HARDWARE))
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization must be in (0, 1], got {utilization!r}.")
    return flops / (HARDWARE[hardware]["tflops"] * 1e12 * utilization) / 3600


def cost_usd(flops: float, hardware: str, utilization: float = UTILIZATION) -> float:
    """Dollars at the HARDWARE table's hourly price (as of PRICES_AS_OF)."""
    return gpu_hours(flops, hardware, utilization) * HARDWARE[hardware]["usd_per_hour"]
