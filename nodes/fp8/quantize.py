"""Scaled FP8 weight quantization (per tensor or per output channel) and its error metrics. Pure torch.

A weight ``W`` is stored as ``Wq = clamp(W / scale, -M, M).to(fp8)`` with ``scale = amax(|W|) / M`` (``M`` the
format's largest finite value: 448 for e4m3fn, 57344 for e5m2) and read back as ``Wq * scale``. The scale maps
the largest magnitude onto ``M``, so the 8 bits cover the weight's own range, and the explicit clamp means the
cast never sees a value beyond ``M`` (an unclamped cast of such a value gives NaN or inf in some PyTorch
versions and formats).

Error bound (round to nearest, ``p`` mantissa bits, ``eps = 2**-p``): every element ``v = W / scale`` with
``|v| >= tiny`` (the smallest normal) rounds with ``|fl(v) - v| <= eps/2 * |v|``; below ``tiny`` the spacing is
the smallest subnormal ``s = tiny * eps``, so ``|fl(v) - v| <= s/2``. In weight units, per element:
``|dequantize(quantize_fp8(W)) - W| <= eps/2 * |W| + scale * s/2`` (see :func:`elementwise_error_bound`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

FP8_FORMATS: dict[str, torch.dtype] = {"float8_e4m3fn": torch.float8_e4m3fn, "float8_e5m2": torch.float8_e5m2}
"""Format name (ComfyUI's ``_quantization_metadata`` spelling) -> torch dtype."""


def fp8_max(dtype: torch.dtype) -> float:
    """Largest finite value of the fp8 ``dtype`` (448 for e4m3fn, 57344 for e5m2)."""
    return float(torch.finfo(dtype).max)


@dataclass(frozen=True)
class QuantizedWeight:
    """``data``: fp8, the weight's shape. ``scale``: float32, shape ``()`` (per tensor) or ``(out, 1, ...)``
    (per output channel, broadcastable to ``data``). The value is ``data * scale``."""

    data: torch.Tensor
    scale: torch.Tensor

    @property
    def per_channel(self) -> bool:
        return self.scale.ndim > 0

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A new tensor ``data * scale`` in ``dtype`` (computed in float32)."""
        return (self.data.to(torch.float32) * self.scale).to(dtype)


def compute_scale(weight: torch.Tensor, dtype: torch.dtype, per_channel: bool = False) -> torch.Tensor:
    """float32 ``amax(|W|) / fp8_max`` over the whole tensor (shape ``()``) or over each output row (dim 0;
    shape ``(out, 1, ...)``). An all-zero tensor or row gets scale 1 (it quantizes to exact zeros). Raises
    ValueError on a non-finite weight (a corrupt checkpoint: no scale can represent it)."""
    magnitude = weight.detach().abs().to(torch.float32)
    if per_channel:
        if weight.ndim < 2:
            raise ValueError(f"per-channel scaling needs a weight with >= 2 dims, got shape {tuple(weight.shape)}")
        amax = magnitude.amax(dim=tuple(range(1, weight.ndim)), keepdim=True)
    else:
        amax = magnitude.amax()
    if not torch.isfinite(amax).all():
        raise ValueError("weight has non-finite values (NaN or inf); it cannot be quantized")
    scale = amax / fp8_max(dtype)
    return torch.where(amax > 0, scale, torch.ones_like(scale))


def quantize_fp8(weight: torch.Tensor, dtype: torch.dtype = torch.float8_e4m3fn,
             per_channel: bool = False) -> QuantizedWeight:
    """Scaled fp8 quantization of ``weight`` (any float dtype; computed in float32, ``weight`` is not
    modified). Raises ValueError on a non-finite weight."""
    if dtype not in FP8_FORMATS.values():
        raise ValueError(f"not an fp8 dtype: {dtype}")
    scale = compute_scale(weight, dtype, per_channel)
    limit = fp8_max(dtype)
    data = (weight.detach().to(torch.float32) / scale).clamp_(-limit, limit).to(dtype)
    return QuantizedWeight(data, scale)


def elementwise_error_bound(weight: torch.Tensor, quantized: QuantizedWeight) -> torch.Tensor:
    """Per-element bound on ``|dequantize - W|``: ``eps/2 * |W| + scale * s/2`` (module docstring), float32."""
    info = torch.finfo(quantized.data.dtype)
    smallest_subnormal = info.tiny * info.eps
    return info.eps / 2 * weight.detach().abs().to(torch.float32) + quantized.scale * (smallest_subnormal / 2)


def relative_error(reference: torch.Tensor, approximation: torch.Tensor) -> float:
    """``||approximation - reference||_F / ||reference||_F`` in float32 (0 when both are zero, inf when only
    the reference is; NaN when the approximation is not finite)."""
    reference = reference.detach().to(torch.float32)
    difference = float(torch.linalg.vector_norm(approximation.detach().to(torch.float32) - reference))
    norm = float(torch.linalg.vector_norm(reference))
    if norm == 0.0:
        return 0.0 if difference == 0.0 else float("inf")
    return difference / norm


@dataclass(frozen=True)
class ErrorSummary:
    """Relative quantization errors over layers: ``count``, ``max`` (and its ``worst`` layer), ``mean``."""

    count: int
    max: float
    mean: float
    worst: str | None

    @classmethod
    def of(cls, errors: Mapping[str, float]) -> ErrorSummary:
        if not errors:
            return cls(0, 0.0, 0.0, None)
        worst = max(errors, key=errors.__getitem__)
        return cls(len(errors), errors[worst], sum(errors.values()) / len(errors), worst)
