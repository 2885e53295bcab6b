"""Where is this notebook running, and what can the hardware do?

Device, precision that follows the hardware, Colab and Hub detection, seeding, a printed
environment summary, and `start()`: the run context every notebook opens with (validated
parameters, profile sizes, output folder, metrics.json).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import socket
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

PROFILES = ("smoke", "cpu", "gpu")
PRECISIONS = ("fp32", "fp16", "bf16")
# Overrides (docs/DESIGN.md, the helper package): a T4 on any card, half precision on a CPU.
PRECISION_ENV = "GPTFORALL_PRECISION"        # fp32 | fp16 | bf16: replaces what the hardware would choose
GPU_MEMORY_ENV = "GPTFORALL_GPU_MEMORY_GB"   # GiB of the card this process may use (torch's memory fraction)
COURSE_PACKAGES = (
    "torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets",
    "evaluate", "rouge-score", "papermill", "matplotlib",
)
HUB_HOST = "huggingface.co"
HUB_MIRROR_ENV = "GPTFORALL_HUB_MIRROR"  # a local folder that serves Hub datasets and models


# ---------------------------------------------------------------- hardware
def device() -> str:
    """The best available torch device: "cuda", "mps" or "cpu"."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cuda_capability() -> tuple[int, int] | None:
    """Compute capability of CUDA device 0, e.g. (7, 5) for a T4, (8, 0) for an A100; None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    return tuple(torch.cuda.get_device_capability(0))


def hardware_precision(dev: str | None = None, capability: tuple[int, int] | None = None) -> str:
    """Training precision the hardware supports well, ignoring GPTFORALL_PRECISION.

    bf16 needs native support (Ampere, sm_80, and newer); a T4 (sm_75) has fast fp16 but no bf16;
    CPUs and Apple GPUs train in fp32 here, because emulated half precision is many times slower.
    """
    dev = dev or device()
    if dev != "cuda":
        return "fp32"
    if capability is None:
        capability = cuda_capability()
    if capability is not None and capability >= (8, 0):
        return "bf16"
    return "fp16"


def precision_override() -> str | None:
    """The precision GPTFORALL_PRECISION asks for (None when unset); ValueError for anything else."""
    value = os.environ.get(PRECISION_ENV, "").strip().lower()
    if not value:
        return None
    if value not in PRECISIONS:
        raise ValueError(f"{PRECISION_ENV}={os.environ[PRECISION_ENV]!r} is not a precision; set it to one of "
                         f"{', '.join(PRECISIONS)}, or unset it to let the hardware choose.")
    return value


def precision(dev: str | None = None, capability: tuple[int, int] | None = None) -> str:
    """Training precision: GPTFORALL_PRECISION when set (also half precision on a CPU, slowly, to test
    that path; fp16 on a bf16 card to emulate a T4), else what the hardware supports well
    (`hardware_precision`: bf16 on Ampere and newer, fp16 on a T4, fp32 on CPU)."""
    return precision_override() or hardware_precision(dev, capability)


def torch_dtype(prec: str):
    """torch dtype for a precision name ("fp32", "fp16", "bf16")."""
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if prec not in table:
        raise ValueError(f"Unknown precision {prec!r}; choose one of {', '.join(PRECISIONS)}.")
    return table[prec]


def precision_name(dtype) -> str:
    """The course's name ("fp32", "fp16", "bf16") for a torch floating dtype: labels that follow the model
    (`precision_name(model.dtype)`) instead of assuming fp32. ValueError for any other dtype."""
    import torch

    table = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    if dtype not in table:
        raise ValueError(f"{dtype} is not one of the course's precisions ({', '.join(PRECISIONS)}).")
    return table[dtype]


# How closely two computations of the same numbers agree when they differ only in rounding (batched vs one by
# one, a merged adapter vs the unmerged one, a helper vs the same sum by hand), per precision, as (rtol, atol) in
# torch.allclose's sense: |a - b| <= atol + rtol * |b|. The one place such tolerances live: notebooks and tests
# call `rounding_tolerance`/`agree` instead of writing their own numbers. fp32 rounds at about 6e-8 relative,
# bf16 at 2**-8 (about 4e-3) and fp16 at 2**-11 per operation, and a forward pass accumulates many operations.
# Measured basis (notebook 08's check: summed log-probabilities of ARC-Easy answer choices, one by one vs batched with
# padding, embedded SmolLM2-135M, CPU, torch 2.13, 8 questions / 32 choices, sums up to 32 in size), largest absolute
# and relative difference: fp32 2.1e-5 and 1.1e-6; fp16 0.037 and 0.26%; bf16 0.45 and 1.53% (issue 21's review saw
# about 0.25 in the notebook). bf16's rtol 3e-2 is about twice its largest relative difference, fp16's 1e-2 about
# four times, and each atol covers differences on sums near 0; fp32 keeps notebook 08's former bound (1e-3 absolute).
ROUNDING_TOLERANCE = {"fp32": (1e-5, 1e-3), "fp16": (1e-2, 5e-2), "bf16": (3e-2, 2e-1)}
# A mean loss (one number averaged over many tokens and pairs) rounds far less than the logits and log-probability
# sums above, so it has its own row: notebook 10's hand-written DPO loss against TRL's on the same batch. Basis: fp32
# measured 9.7e-7 apart in the cpu profile; the half-precision bound is the one that check has used since it was written.
LOSS_TOLERANCE = {"fp32": (0.0, 1e-4), "fp16": (0.0, 2e-2), "bf16": (0.0, 2e-2)}
QUANTITIES = {"logits": ROUNDING_TOLERANCE, "loss": LOSS_TOLERANCE}


def rounding_tolerance(precision: str, quantity: str = "logits") -> tuple[float, float]:
    """(rtol, atol) for comparing two computations that differ only in rounding, at this precision name
    ("fp32", "fp16", "bf16") for this kind of number: "logits" (logits, log-probabilities and their sums;
    ROUNDING_TOLERANCE) or "loss" (a mean loss; LOSS_TOLERANCE)."""
    if quantity not in QUANTITIES:
        raise ValueError(f"Unknown quantity {quantity!r}; choose one of {', '.join(QUANTITIES)}.")
    if precision not in ROUNDING_TOLERANCE:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    return QUANTITIES[quantity][precision]


def agree(a, b, precision: str, quantity: str = "logits") -> bool:
    """True when every element of `a` is within the rounding tolerance of `b` at `precision` for this kind of
    number (see `rounding_tolerance`; numbers, lists, NumPy arrays or tensors; compared in float64 on the CPU)."""
    import numpy as np

    rtol, atol = rounding_tolerance(precision, quantity)
    a = to_numpy(a) if hasattr(a, "detach") else np.asarray(a, dtype=np.float64)
    b = to_numpy(b) if hasattr(b, "detach") else np.asarray(b, dtype=np.float64)
    return bool(np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=rtol, atol=atol))


def to_numpy(tensor):
    """A tensor as a NumPy array, wherever it lives and whatever its dtype: detached from autograd, copied to the
    CPU, and cast to float32 when it is a half-precision float (NumPy has no bfloat16). The one way notebooks and
    helpers hand tensors to NumPy/matplotlib: `.numpy()` on a card tensor raises on a GPU only."""
    import torch

    t = tensor.detach()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.cpu().numpy()


def gpu_memory_cap_gb() -> float | None:
    """GiB that GPTFORALL_GPU_MEMORY_GB allows this process on the card (None when unset)."""
    raw = os.environ.get(GPU_MEMORY_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{GPU_MEMORY_ENV}={raw!r} is not a positive number of GiB; set it to e.g. 15 "
                         "(what a Colab T4 offers), or unset it to use the whole card.")
    return value


def gpu_total_gb() -> float | None:
    """Memory of CUDA device 0 in GiB (None without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / 2**30


def gpu_memory_gb() -> float | None:
    """GiB of card memory this process may use: the card's, or less when GPTFORALL_GPU_MEMORY_GB caps it.
    None without CUDA. This is what `training` plans batch size and activation checkpointing with."""
    cap = gpu_memory_cap_gb()
    total = gpu_total_gb()
    if total is None:
        return None
    return min(total, cap) if cap is not None else total


_applied_cap: float | None = None


def apply_gpu_memory_cap() -> float | None:
    """Make torch refuse allocations beyond GPTFORALL_GPU_MEMORY_GB (once per process; a later call with the
    same cap is a no-op). Returns the fraction of the card applied, None when nothing was capped."""
    global _applied_cap
    cap = gpu_memory_cap_gb()
    total = gpu_total_gb()
    if cap is None or total is None:
        return None
    fraction = min(1.0, cap / total)
    if _applied_cap != fraction:
        import torch

        torch.cuda.set_per_process_memory_fraction(fraction, 0)
        _applied_cap = fraction
    return fraction


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=1)
def _hub_answers(timeout: float) -> bool:
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable(timeout: float = 2.0) -> bool:
    """Can we reach the real Hugging Face Hub? False at once when HF_HUB_OFFLINE is set; else a short TCP probe."""
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
        return False
    return _hub_answers(timeout)


def hub_mirror() -> Path | None:
    """The local Hub mirror folder named by GPTFORALL_HUB_MIRROR, or None when the variable is unset or empty.

    A mirror serves Hub datasets and models from disk in the Hub's own layout (see data/README.md);
    a variable that names no folder is an error, so a typo never silently falls back to other data.
    """
    value = os.environ.get(HUB_MIRROR_ENV, "").strip()
    if not value:
        return None
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{HUB_MIRROR_ENV}={value} is not a folder; point it at a Hub mirror "
                                f"(see data/README.md) or unset it.")
    return folder


def hub_available(timeout: float = 2.0) -> bool:
    """Does the Hub path work here? True when a Hub mirror is set (GPTFORALL_HUB_MIRROR), else when the real Hub answers.

    The one rule behind DATA="auto"/"hub" and MODEL="auto": a mirror stands in for the Hub.
    """
    if hub_mirror() is not None:
        return True
    return hub_reachable(timeout)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def total_ram_gb() -> float:
    """Physical memory of this machine in GiB."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


def package_versions(names: tuple[str, ...] = COURSE_PACKAGES) -> dict[str, str]:
    """Installed versions of the course's packages ("missing" where not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def environment() -> dict[str, Any]:
    """A summary of this machine: Python, packages, device, precision, RAM, GPU memory, Hub, Colab."""
    import torch

    dev = device()
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu_threads": torch.get_num_threads(),
        "ram_gb": round(total_ram_gb(), 1),
        "device": dev,
        "precision": precision(dev),
        "hardware_precision": hardware_precision(dev),
        "colab": in_colab(),
        "hub": hub_available(),
    }
    if dev == "cuda":
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = props.name
        info["gpu_memory_gb"] = round(props.total_memory / 2**30, 1)
        info["gpu_memory_usable_gb"] = round(gpu_memory_gb(), 1)
        major, minor = cuda_capability()
        info["cuda_capability"] = f"{major}.{minor}"
    info[PRECISION_ENV] = os.environ.get(PRECISION_ENV, "") or "unset"
    info[GPU_MEMORY_ENV] = os.environ.get(GPU_MEMORY_ENV, "") or "unset"
    info.update(package_versions())
    return info


def print_environment() -> dict[str, Any]:
    """Print the environment summary (what students paste into a bug report) and return it.

    Shows the two overrides (GPTFORALL_PRECISION, GPTFORALL_GPU_MEMORY_GB) and what they make effective.
    """
    info = environment()
    notes = {"precision": f"(hardware: {info['hardware_precision']}; {PRECISION_ENV} {info[PRECISION_ENV]})"}
    if "gpu_memory_usable_gb" in info:
        notes["gpu_memory_usable_gb"] = f"(card: {info['gpu_memory_gb']} GiB; {GPU_MEMORY_ENV} {info[GPU_MEMORY_ENV]})"
    elif info[GPU_MEMORY_ENV] != "unset":
        notes[GPU_MEMORY_ENV] = "(no CUDA device: nothing to cap)"
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}" + (f"  {notes[key]}" if key in notes else ""))
    return info


# ---------------------------------------------------------------- the notebook run context
def resolve_profile(profile: str = "auto") -> str:
    """"auto" -> "gpu" when CUDA is available, else "cpu"; other names are checked."""
    if profile == "auto":
        return "gpu" if device() == "cuda" else "cpu"
    if profile not in PROFILES:
        raise ValueError(f"PROFILE={profile!r} is not a profile; use 'auto' or one of {', '.join(PROFILES)}.")
    return profile


@dataclass
class Run:
    """What a notebook needs to know about this run: resolved parameters and where to write results."""

    notebook: str
    profile: str
    model: str
    data: str
    seed: int
    output_dir: Path
    device: str
    precision: str
    metrics: dict[str, float | int | str] = field(default_factory=dict)

    def pick(self, smoke: Any, cpu: Any, gpu: Any) -> Any:
        """The value for this run's profile: sizes differ per profile, the code path never does."""
        return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[self.profile]

    @property
    def dtype(self):
        """torch dtype for loading a model for inference on this hardware."""
        return torch_dtype(self.precision)

    def path(self, name: str) -> Path:
        """A file inside this notebook's output folder."""
        return self.output_dir / name

    def savefig(self, fig, name: str) -> Path:
        """Save a matplotlib figure as <output>/<name>.png (the report links it)."""
        out = self.path(f"{name}.png")
        fig.savefig(out, dpi=110, bbox_inches="tight")
        return out

    def record(self, **metrics: float | int | str) -> Path:
        """Write this notebook's key figures to <OUTPUT_DIR>/<notebook>/metrics.json (flat: names to numbers or strings)."""
        for key, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                if hasattr(value, "item"):  # numpy / torch scalars
                    value = value.item()
                else:
                    raise ValueError(f"metric {key!r} must be a number or a string, got {type(value).__name__}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"metric {key!r} is {value}; a recorded figure must be finite")
            self.metrics[key] = value
        self.metrics.setdefault("profile", self.profile)
        out = self.path("metrics.json")
        out.write_text(json.dumps(self.metrics, indent=2, sort_keys=True) + "\n")
        return out


def start(
    notebook: str,
    profile: str = "auto",
    model: str = "auto",
    data: str = "auto",
    output_dir: str | os.PathLike = "outputs",
    seed: int = 0,
    verbose: bool = True,
) -> Run:
    """Open a notebook run: validate the `parameters` cell, seed everything, create the output folder.

    Raises ValueError on a bad parameter before any heavy work happens.
    """
    resolved = resolve_profile(profile)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"SEED must be an integer, got {seed!r}.")
    if not isinstance(model, str) or not model:
        raise ValueError("MODEL must be 'auto', a catalog name, a Hugging Face Hub id or a local path.")
    if not isinstance(data, str) or not data:
        raise ValueError("DATA must be 'auto', 'hub', 'offline' or a local .jsonl/.csv file.")
    dev = device()
    prec = precision(dev)  # ValueError for a bad GPTFORALL_PRECISION, before any heavy work
    apply_gpu_memory_cap()  # likewise for GPTFORALL_GPU_MEMORY_GB; caps the card once
    if resolved == "gpu" and dev != "cuda":
        print("PROFILE='gpu' but no CUDA device was found: the gpu sizes will run slowly on", dev)
    out = Path(output_dir) / notebook
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    run = Run(notebook=notebook, profile=resolved, model=model, data=data, seed=seed,
              output_dir=out, device=dev, precision=prec)
    if verbose:
        override = f" ({PRECISION_ENV})" if precision_override() else ""
        cap = gpu_memory_gb() if gpu_memory_cap_gb() is not None else None
        memory_note = f" | card memory capped at {cap:.1f} GiB ({GPU_MEMORY_ENV})" if cap is not None else ""
        print(f"notebook {notebook} | profile {resolved} | device {dev} | precision {run.precision}{override} | "
              f"model {model} | data {data} | seed {seed} | outputs {out}{memory_note}")
    return run
