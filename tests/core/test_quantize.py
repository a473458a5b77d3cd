"""Scaled FP8 quantization: the scale's exactness, the derived error bound, and why a scale and a clamp are
needed (the unscaled cast that ComfyUI's stock fp8 ``weight_dtype`` does loses small weights and clips or
overflows large ones).

``nodes/fp8/quantize.py`` is pure torch: it is imported here from its file, alone (no ComfyUI, no pack)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch


def _import_alone(name: str, path: Path):
    """The module at ``path`` imported on its own under ``name`` (no package, so no relative imports)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_quantize = _import_alone("fp8_quantize", Path(__file__).resolve().parents[2] / "nodes" / "fp8" / "quantize.py")
FP8_FORMATS, ErrorSummary, compute_scale = _quantize.FP8_FORMATS, _quantize.ErrorSummary, _quantize.compute_scale
elementwise_error_bound, fp8_max = _quantize.elementwise_error_bound, _quantize.fp8_max
quantize_fp8, relative_error = _quantize.quantize_fp8, _quantize.relative_error

FORMATS = list(FP8_FORMATS.values())
E4M3, E5M2 = torch.float8_e4m3fn, torch.float8_e5m2


def gaussian(rows: int, cols: int, std: float, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * std


def test_format_constants_are_the_formats_own():
    assert fp8_max(E4M3) == 448.0 and fp8_max(E5M2) == 57344.0
    assert torch.finfo(E4M3).eps == 2.0**-3 and torch.finfo(E5M2).eps == 2.0**-2  # 3 and 2 mantissa bits


@pytest.mark.parametrize("dtype", FORMATS)
@pytest.mark.parametrize("std", [1e-4, 0.05, 1.0, 300.0])
def test_scale_maps_amax_exactly_onto_the_format_max(dtype, std):
    weight = gaussian(64, 96, std)
    q = quantize_fp8(weight, dtype)
    assert q.scale.dtype == torch.float32 and q.scale.shape == ()
    assert q.data.dtype == dtype and q.data.shape == weight.shape
    assert q.data.to(torch.float32).abs().max().item() == fp8_max(dtype)
    amax = weight.abs().max()
    assert torch.isclose(q.dequantize().abs().max(), amax, rtol=2**-20, atol=0)


@pytest.mark.parametrize("dtype", FORMATS)
def test_per_channel_scale_maps_every_row_amax_onto_the_format_max(dtype):
    rows = torch.logspace(-3, 3, 16).unsqueeze(1)  # rows of very different magnitudes
    weight = gaussian(16, 64, 1.0) * rows
    q = quantize_fp8(weight, dtype, per_channel=True)
    assert q.per_channel and q.scale.shape == (16, 1)
    assert torch.equal(q.data.to(torch.float32).abs().amax(dim=1), torch.full((16,), fp8_max(dtype)))


@pytest.mark.parametrize("dtype", FORMATS)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("std", [1e-4, 0.05, 1.0, 300.0])
def test_error_is_within_the_derived_elementwise_bound(dtype, per_channel, std):
    """|dequant - W| <= eps/2 |W| + scale s/2 (round to nearest on W/scale; float32 arithmetic adds a few
    2**-24 relative, covered by the 1e-6 slack)."""
    weight = gaussian(128, 64, std, seed=1)
    q = quantize_fp8(weight, dtype, per_channel=per_channel)
    error = (q.dequantize() - weight).abs()
    bound = elementwise_error_bound(weight, q)
    assert (error <= bound * (1 + 1e-6)).all()
    # Frobenius form of the same bound: ||err|| <= eps/2 ||W|| + s/2 * ||scale broadcast||
    info = torch.finfo(dtype)
    subnormal_term = float(torch.linalg.vector_norm(q.scale.expand_as(weight))) * info.tiny * info.eps / 2
    relative_bound = info.eps / 2 + subnormal_term / float(torch.linalg.vector_norm(weight))
    assert relative_error(weight, q.dequantize()) <= relative_bound * (1 + 1e-6)


@pytest.mark.parametrize("dtype", FORMATS)
def test_bound_is_tight_the_worst_element_reaches_about_half_an_ulp(dtype):
    weight = gaussian(256, 256, 1.0, seed=2)
    q = quantize_fp8(weight, dtype)
    normal = weight.abs() >= q.scale * torch.finfo(dtype).tiny
    worst = ((q.dequantize() - weight).abs() / weight.abs())[normal].max().item()
    assert torch.finfo(dtype).eps / 4 < worst <= torch.finfo(dtype).eps / 2 * (1 + 1e-6)


def test_inputs_in_half_precision_are_quantized_in_float32_and_left_untouched():
    weight = gaussian(32, 32, 0.1).to(torch.bfloat16)
    before = weight.clone()
    q = quantize_fp8(weight)
    assert torch.equal(weight, before)
    assert (q.dequantize() - weight.float()).abs().le(elementwise_error_bound(weight, q) * (1 + 1e-6)).all()
    assert q.dequantize(torch.bfloat16).dtype == torch.bfloat16


def test_small_weights_are_lost_by_the_unscaled_cast_and_kept_by_the_scaled_one():
    """std 1e-3: below e4m3fn's smallest normal (2**-6), mostly below its smallest subnormal (2**-9)."""
    weight = gaussian(128, 128, 1e-3)
    scaled = relative_error(weight, quantize_fp8(weight, E4M3).dequantize())
    unscaled = relative_error(weight, weight.to(E4M3).to(torch.float32))
    assert scaled <= torch.finfo(E4M3).eps / 2
    assert unscaled > 0.5 and unscaled > 20 * scaled


def test_large_weights_are_clipped_or_turned_into_nan_by_the_unscaled_cast_never_by_the_scaled_one():
    """std 1000: most values beyond 448. PyTorch's eager e4m3fn cast was non-saturating for years (NaN from 465
    on); recent versions saturate to 448. Either way the unscaled cast is badly wrong; ours is neither."""
    weight = gaussian(128, 128, 1000.0)
    assert weight.abs().max() > 2 * 448
    unscaled = weight.to(E4M3).to(torch.float32)
    clipped = (unscaled - weight).abs().max() > 0.5 * weight.abs().max()
    assert (not torch.isfinite(unscaled).all()) or clipped
    q = quantize_fp8(weight, E4M3)
    assert torch.isfinite(q.data.to(torch.float32)).all()
    scaled = relative_error(weight, q.dequantize())
    assert scaled <= torch.finfo(E4M3).eps / 2
    assert not relative_error(weight, unscaled) <= 10 * scaled  # "not <=" also holds for NaN


def test_e5m2_unscaled_overflow_is_inf_and_the_clamp_prevents_it():
    """e5m2 has an inf: an unclamped cast of a value past 57344 (plus half an ulp) gives inf."""
    weight = torch.tensor([[1e5, -2e5, 3.0, 0.5]])
    assert not torch.isfinite(weight.to(E5M2).to(torch.float32)).all()
    q = quantize_fp8(weight, E5M2)
    assert torch.isfinite(q.data.to(torch.float32)).all()
    assert (q.dequantize() - weight).abs().le(elementwise_error_bound(weight, q) * (1 + 1e-6)).all()
    # the clamp alone (scale forced to 1) also keeps the cast finite: the value saturates instead
    assert torch.isfinite(weight.clamp(-fp8_max(E5M2), fp8_max(E5M2)).to(E5M2).to(torch.float32)).all()


def test_per_channel_beats_per_tensor_on_rows_of_different_ranges():
    weight = gaussian(64, 128, 1.0) * torch.logspace(-4, 2, 64).unsqueeze(1)
    per_tensor, per_channel = quantize_fp8(weight), quantize_fp8(weight, per_channel=True)
    row_error = [relative_error(weight[i], per_channel.dequantize()[i]) for i in range(64)]
    assert max(row_error) <= torch.finfo(E4M3).eps / 2
    small_row = relative_error(weight[0], per_tensor.dequantize()[0])
    assert small_row > 0.5  # per tensor, the smallest row falls below the format's range


def test_zeros_quantize_to_exact_zeros_and_non_finite_weights_are_refused():
    q = quantize_fp8(torch.zeros(4, 4))
    assert q.scale.item() == 1.0 and torch.equal(q.dequantize(), torch.zeros(4, 4))
    rows = compute_scale(torch.tensor([[0.0, 0.0], [448.0, 1.0]]), E4M3, per_channel=True)
    assert rows.flatten().tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="non-finite"):
        quantize_fp8(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="not an fp8 dtype"):
        quantize_fp8(torch.ones(2, 2), torch.float16)
    with pytest.raises(ValueError, match="per-channel"):
        quantize_fp8(torch.ones(3), per_channel=True)


def test_relative_error_and_summary():
    a = torch.tensor([3.0, 4.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(a, torch.tensor([3.0, 4.5])) == pytest.approx(0.1)
    assert relative_error(torch.zeros(2), torch.zeros(2)) == 0.0
    assert relative_error(torch.zeros(2), a) == float("inf")
    summary = ErrorSummary.of({"a": 0.01, "b": 0.03, "c": 0.02})
    assert (summary.count, summary.max, summary.worst) == (3, 0.03, "b")
    assert summary.mean == pytest.approx(0.02)
    assert ErrorSummary.of({}) == ErrorSummary(0, 0.0, 0.0, None)
