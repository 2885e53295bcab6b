"""Number formats and hand-written quantization, for teaching.

The format table is computed from torch's own dtype descriptions (torch.finfo / torch.iinfo) and
from the bits a value is actually stored as, never typed in. absmax and zero-point quantization
are the two INT8 schemes that bitsandbytes' LLM.int8 and most post-training quantizers build on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLOAT_FORMATS = ("fp32", "fp16", "bf16")
INT_FORMATS = ("int8",)


def _dtype(name: str):
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "int8": torch.int8}
    if name not in table:
        raise ValueError(f"Unknown format {name!r}; choose one of: {', '.join(table)}.")
    return table[name]


@dataclass(frozen=True)
class FormatRow:
    """How one number is stored in one format."""

    format: str
    bits: int
    exponent_bits: int
    fraction_bits: int
    stored: float  # the value the format actually holds
    error: float  # stored - value
    sign: str  # bit fields of the stored pattern ("" for integers)
    exponent: str
    fraction: str
    max: float  # largest finite value of the format
    eps: float  # gap between 1 and the next representable value (1 for integers)


def format_info(name: str) -> dict[str, float | int]:
    """bits, exponent_bits, fraction_bits, max and eps of a format, read from torch.finfo/iinfo."""
    import torch

    dtype = _dtype(name)
    if dtype.is_floating_point:
        fi = torch.finfo(dtype)
        fraction = round(-math.log2(fi.eps))  # eps = 2**-fraction_bits
        return {"bits": fi.bits, "exponent_bits": fi.bits - 1 - fraction, "fraction_bits": fraction,
                "max": float(fi.max), "eps": float(fi.eps)}
    ii = torch.iinfo(dtype)
    return {"bits": ii.bits, "exponent_bits": 0, "fraction_bits": 0, "max": float(ii.max), "eps": 1.0}


def represent(value: float, name: str) -> FormatRow:
    """Store `value` in a format (round to nearest) and show the bits it becomes."""
    import torch

    info = format_info(name)
    dtype = _dtype(name)
    if dtype.is_floating_point:
        t = torch.tensor(value, dtype=torch.float64).to(dtype)
        stored = float(t.to(torch.float64))
        int_view = {32: torch.int32, 16: torch.int16}[info["bits"]]
        pattern = int(t.view(int_view)) & ((1 << info["bits"]) - 1)
        bits = format(pattern, f"0{info['bits']}b")
        e = info["exponent_bits"]
        sign, exponent, fraction = bits[0], bits[1:1 + e], bits[1 + e:]
    else:
        if not -info["max"] - 1 <= round(value) <= info["max"]:
            raise ValueError(f"{value} is outside the {name} range [{-info['max'] - 1:.0f}, {info['max']:.0f}].")
        stored = float(torch.tensor(round(value), dtype=dtype))
        sign = exponent = fraction = ""
    return FormatRow(name, int(info["bits"]), int(info["exponent_bits"]), int(info["fraction_bits"]),
                     stored, stored - value, sign, exponent, fraction, info["max"], info["eps"])


def format_table(value: float = math.pi, formats: tuple[str, ...] = FLOAT_FORMATS + INT_FORMATS) -> list[FormatRow]:
    """One row per format for the same number: the seed's π table."""
    return [represent(value, f) for f in formats]


# ---------------------------------------------------------------- INT8 quantization by hand
def _check_tensor(x) -> None:
    import torch

    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("expected a floating-point torch tensor to quantize")
    if x.numel() == 0:
        raise ValueError("cannot quantize an empty tensor")
    if not torch.isfinite(x).all():
        raise ValueError("the tensor holds inf or nan; quantization needs finite values")


def absmax_quantize(x, dim: int | None = None):
    """Symmetric INT8: scale = 127 / max|x|, q = round(scale · x). Returns (q int8, scale).

    dim=None uses one scale for the whole tensor; dim=1 one scale per row (vector-wise, as LLM.int8).
    """
    import torch

    _check_tensor(x)
    x = x.float()
    amax = x.abs().amax() if dim is None else x.abs().amax(dim=dim, keepdim=True)
    scale = 127.0 / amax.clamp(min=1e-12)
    q = torch.round(x * scale).clamp(-127, 127).to(torch.int8)
    return q, scale


def absmax_dequantize(q, scale):
    """x ≈ q / scale."""
    return q.float() / scale


def zeropoint_quantize(x, dim: int | None = None):
    """Asymmetric INT8: the range [min, max] maps onto [-128, 127].

    scale = 255 / (max - min), zero_point = round(-scale · min) - 128, q = round(scale · x + zero_point).
    Returns (q int8, scale, zero_point). Uses all 256 levels even when the values are not centred on 0.
    """
    import torch

    _check_tensor(x)
    x = x.float()
    lo = x.amin() if dim is None else x.amin(dim=dim, keepdim=True)
    hi = x.amax() if dim is None else x.amax(dim=dim, keepdim=True)
    scale = 255.0 / (hi - lo).clamp(min=1e-12)
    zero_point = torch.round(-scale * lo) - 128
    q = torch.round(scale * x + zero_point).clamp(-128, 127).to(torch.int8)
    return q, scale, zero_point


def zeropoint_dequantize(q, scale, zero_point):
    """x ≈ (q - zero_point) / scale."""
    return (q.float() - zero_point) / scale


def error_stats(x, x_hat) -> dict[str, float]:
    """Mean and largest absolute round-trip error, and the error relative to the largest weight."""
    err = (x.float() - x_hat.float()).abs()
    return {"mean_abs_error": float(err.mean()), "max_abs_error": float(err.max()),
            "relative_max_error": float(err.max() / x.float().abs().max().clamp(min=1e-12))}


# ---------------------------------------------------------------- footprints
LINEAR_CLASSES = ("Linear", "Linear8bitLt", "Linear4bit", "LinearFP4", "LinearNF4")


def linear_layer_bytes(model, skip: tuple[str, ...] = ("lm_head",)) -> int:
    """Bytes held by the linear layers of a model, quantization constants included.

    bitsandbytes quantizes these and leaves the embeddings (and a tied lm_head) alone, so this is the
    fair place to compare formats. 8-bit layers also keep one fp32 scale per row (SCB); 4-bit layers
    keep block absmax values and the 16-value code book in their quant_state.
    """
    total = 0
    for name, module in model.named_modules():
        if type(module).__name__ not in LINEAR_CLASSES or any(s in name for s in skip):
            continue
        for p in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
            total += p.numel() * p.element_size()
            scb = getattr(p, "SCB", None)
            if scb is not None:
                total += scb.numel() * scb.element_size()
            state = getattr(p, "quant_state", None)
            if state is not None:
                for t in state.as_dict(packed=True).values():
                    if hasattr(t, "numel"):
                        total += t.numel() * t.element_size()
    return total
