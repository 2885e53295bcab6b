"""Number formats from the dtypes, hand-written INT8 quantization, and bitsandbytes footprints."""

from __future__ import annotations

import math

import pytest
import torch

from gptforall_utils import quantization as q


def test_pi_table_values_and_bit_fields():
    rows = {r.format: r for r in q.format_table(math.pi)}
    assert rows["fp32"].stored == pytest.approx(3.1415927, abs=1e-7)
    assert rows["fp16"].stored == 3.140625 and rows["bf16"].stored == 3.140625
    assert rows["int8"].stored == 3
    assert (rows["fp32"].exponent_bits, rows["fp32"].fraction_bits) == (8, 23)
    assert (rows["fp16"].exponent_bits, rows["fp16"].fraction_bits) == (5, 10)
    assert (rows["bf16"].exponent_bits, rows["bf16"].fraction_bits) == (8, 7)
    # the bit pattern decodes back to the stored value: (-1)^s * 1.fraction * 2^(exponent - bias)
    for r in (rows["fp32"], rows["fp16"], rows["bf16"]):
        assert len(r.sign + r.exponent + r.fraction) == r.bits
        bias = 2 ** (r.exponent_bits - 1) - 1
        value = (1 + int(r.fraction, 2) / 2**r.fraction_bits) * 2 ** (int(r.exponent, 2) - bias)
        assert value == r.stored
    assert rows["fp16"].max == 65504 and rows["int8"].max == 127


def test_formats_reject_nonsense():
    with pytest.raises(ValueError, match="fp32"):
        q.represent(1.0, "fp8")
    with pytest.raises(ValueError, match="outside"):
        q.represent(300, "int8")


@pytest.fixture
def weights():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 128, generator=g) * 0.05
    w[3, 7] = 0.9  # an outlier, as real weight matrices have
    return w


def test_absmax_round_trip_error_is_at_most_half_a_step(weights):
    codes, scale = q.absmax_quantize(weights)
    assert codes.dtype == torch.int8 and codes.abs().max() == 127
    err = (weights - q.absmax_dequantize(codes, scale)).abs()
    assert err.max() <= 0.5 / scale + 1e-7
    assert err.max() <= weights.abs().max() / 254 + 1e-7


def test_per_row_absmax_beats_per_tensor_with_an_outlier(weights):
    per_tensor = q.error_stats(weights, q.absmax_dequantize(*q.absmax_quantize(weights)))
    per_row = q.error_stats(weights, q.absmax_dequantize(*q.absmax_quantize(weights, dim=1)))
    assert per_row["mean_abs_error"] < per_tensor["mean_abs_error"] / 3


def test_zeropoint_round_trip_uses_the_full_range(weights):
    shifted = weights + 0.3  # not centred on zero: where zero-point beats absmax
    codes, scale, zp = q.zeropoint_quantize(shifted)
    assert codes.min() == -128 and codes.max() == 127
    back = q.zeropoint_dequantize(codes, scale, zp)
    assert (shifted - back).abs().max() <= 0.5 / scale + 1e-6
    absmax_err = q.error_stats(shifted, q.absmax_dequantize(*q.absmax_quantize(shifted)))["max_abs_error"]
    assert q.error_stats(shifted, back)["max_abs_error"] < absmax_err


def test_quantizers_reject_bad_tensors():
    for bad in (torch.tensor([1, 2]), torch.tensor([]), torch.tensor([1.0, float("nan")])):
        with pytest.raises(ValueError):
            q.absmax_quantize(bad)


def test_real_weight_matrix_round_trip(tiny_model):
    model, _ = tiny_model
    w = model.model.layers[0].mlp.down_proj.weight.detach()
    codes, scale, zp = q.zeropoint_quantize(w)
    rel = q.error_stats(w, q.zeropoint_dequantize(codes, scale, zp))["relative_max_error"]
    assert rel <= 1 / 255 + 1e-6


@pytest.fixture(scope="module")
def footprints():
    from gptforall_utils import models

    out = {}
    for quant in (None, "int8", "nf4"):
        m = models.load_model("smollm2-135m-instruct", quantization=quant, verbose=False)
        out[quant] = (q.linear_layer_bytes(m), m.get_memory_footprint())
        del m
    return out


def test_quantized_linear_layers_shrink(footprints):
    fp32_linear, fp32_total = footprints[None]
    assert fp32_linear == pytest.approx(106.2e6 * 4, rel=0.01)  # 30 blocks x 7 linear layers, fp32
    assert footprints["int8"][0] < 0.5 * fp32_linear
    assert footprints["nf4"][0] < 0.4 * fp32_linear
    assert footprints["nf4"][0] < footprints["int8"][0] < fp32_linear
    assert footprints["nf4"][1] < footprints["int8"][1] < fp32_total
