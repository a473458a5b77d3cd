"""The interface every predictor of one tensor-valued trajectory ``F(t)`` implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Predictor(Protocol):
    """Anchors ``(t, F(t))`` in, forecasts ``F(t)`` out; ``t`` is the caller's clock (sigma or fractional step,
    python floats, any spacing, running up or down). Construction: ``(max_order, factor_dtype, storage_device,
    **options)``. The predictor owns copies of what it is given; ``clear()`` frees them."""

    name: str
    """The key of ``PREDICTORS`` (the value of the nodes' ``forecaster`` input) that makes this predictor."""

    @classmethod
    def run_options(cls, span: tuple[float, float] | None, step: float | None) -> dict:
        """The keyword options that fit this predictor to one sampling run whose forecast times lie in ``span``
        (``(lo, hi)``, lo < hi) with a typical step of ``step`` (> 0; 1 on the step clock), in the clock's units;
        an argument that is None sets nothing (the predictor's default stays)."""
        ...

    @property
    def order(self) -> int:
        """Effective order of the forecast (0: plain reuse of the newest anchor)."""
        ...

    @property
    def num_anchors(self) -> int:
        """Full-compute anchors the forecast currently rests on (0: ``predict`` raises)."""
        ...

    def update(self, t: float, value: torch.Tensor) -> None:
        """Add the anchor ``(t, value)``; a value at the newest anchor's time replaces it."""
        ...

    def predict(self, t: float) -> torch.Tensor:
        """A new tensor, in the dtype and on the device of the last value given; ``RuntimeError`` when empty."""
        ...

    def bytes_held(self) -> int:
        """Bytes of every tensor the predictor holds between calls."""
        ...

    def clear(self) -> None:
        """Drop every held tensor and anchor."""
        ...
