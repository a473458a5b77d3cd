"""How a predictor holds the values it is given: private copies in the factor dtype on the storage device,
and its forecasts given back in the dtype and on the device of the values it was fed."""

from __future__ import annotations

import math

import torch


class ValueStore:
    """The storage policy one predictor applies to every anchor value (no tensor is held here).

    ``factor_dtype=None`` keeps the values' dtype; ``storage_device=None`` keeps their device. The dtype and
    device of the last value taken are remembered so forecasts come back in them.
    """

    def __init__(self, factor_dtype: torch.dtype | None, storage_device: torch.device | str | None) -> None:
        if factor_dtype is not None and not factor_dtype.is_floating_point:
            raise ValueError(f"factor_dtype ({factor_dtype}) must be a floating-point dtype")
        self.factor_dtype = factor_dtype
        self.storage_device = None if storage_device is None else torch.device(storage_device)
        self.value_dtype: torch.dtype | None = None
        self.value_device: torch.device | None = None

    def take(self, t: float, value: torch.Tensor, held: torch.Tensor | None) -> tuple[float, torch.Tensor]:
        """``(float(t), a private copy of value)`` for storing; ``held`` is any tensor already stored.

        Raises ``ValueError`` for a non-finite ``t``, a non-floating value, or a copy whose shape or factor
        dtype/device differs from ``held``'s (the caller must ``clear()`` first).
        """
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"anchor time must be finite, got {t}")
        if not value.dtype.is_floating_point:
            raise ValueError(f"value dtype ({value.dtype}) must be floating-point")
        copy = value.detach().to(
            device=value.device if self.storage_device is None else self.storage_device,
            dtype=value.dtype if self.factor_dtype is None else self.factor_dtype,
            copy=True,
        )
        if held is not None and (held.shape, held.dtype, held.device) != (copy.shape, copy.dtype, copy.device):
            raise ValueError(
                f"value (shape {tuple(copy.shape)}, factors {copy.dtype} on {copy.device}) does not "
                f"match the held history (shape {tuple(held.shape)}, {held.dtype} on {held.device}): "
                "call clear() first"
            )
        self.value_dtype = value.dtype
        self.value_device = value.device
        return t, copy

    def to_compute(self, stored: torch.Tensor) -> torch.Tensor:
        """A stored tensor on the device forecasts are computed on (that of the last value taken)."""
        return stored.to(self.value_device)

    def give(self, result: torch.Tensor, copy: bool = False) -> torch.Tensor:
        """A forecast in the last value's dtype on its device; ``copy`` when ``result`` may be a stored tensor."""
        return result.to(dtype=self.value_dtype, device=self.value_device, copy=copy)

    def reset(self) -> None:
        self.value_dtype = None
        self.value_device = None


def unique_bytes(tensors) -> int:
    """Bytes of the distinct tensors among ``tensors`` (one held twice is counted once)."""
    return sum(t.nbytes for t in {id(t): t for t in tensors}.values())
