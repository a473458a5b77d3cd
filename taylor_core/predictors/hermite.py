"""HiCache's scaled Hermite basis (arXiv 2508.16984) over the Newton interpolant of the newest anchors.

HiCache forecasts ``F(t_n + k) = F + sum_i (Delta^i F / i!) H~_i(k)`` with ``H~_i(x) = s^i H_i(s x)`` (physicists'
Hermite polynomials) in place of TaylorSeer's monomials ``k^i``. Here the Taylor coefficients are those of the
Newton interpolant at the newest anchor, ``a_j = p^(j)(t_n) / j!``, and the argument is measured in ``unit``
(default: the newest anchor gap, so the forecast does not depend on the clock's scale):

    F(t) = sum_j a_j u^j H~_j((t - t_n) / u).

``H~_1(x) = 2 s^2 x``: with ``s = sqrt(1/2)`` order 1 is the Newton (and TaylorSeer) forecast exactly, and
``H~_j`` is the probabilists' ``He_j`` (``x^2 - 1``, ``x^3 - 3x``, ...): the leading terms give Newton back, the
lower ones damp the orders >= 2. ``s -> 0`` leaves plain reuse.

Default: HiCache's published setting, ``s = 0.5`` (which halves the first-order term) with the argument in
sampling steps (the node passes ``unit`` = one step of the run: ``run_options``); how it compares with the
``s = sqrt(1/2)``, unit = anchor gap variant: docs/performance.md.
"""

from __future__ import annotations

import math

import torch

from .newton import NewtonPredictor

DEFAULT_SCALE = 0.5
TAYLOR_SCALE = math.sqrt(0.5)
"""The scale at which order 1 is the Newton (TaylorSeer) forecast."""


def scaled_hermite(order: int, scale: float, x: float) -> list[float]:
    """``[H~_0(x), ..., H~_order(x)]`` with ``H~_n(x) = scale^n H_n(scale x)``, by the three-term recurrence
    ``H_{n+1}(y) = 2y H_n(y) - 2n H_{n-1}(y)``."""
    y = scale * x
    h = [1.0, 2.0 * y][: order + 1]
    for n in range(1, order):
        h.append(2.0 * y * h[n] - 2.0 * n * h[n - 1])
    return [scale**n * value for n, value in enumerate(h)]


def taylor_coefficients(factors: tuple[torch.Tensor, ...], times: tuple[float, ...]) -> list[torch.Tensor]:
    """Coefficients ``a_0..a_k`` of ``p(t) = sum_j a_j (t - t_n)^j`` for the Newton form
    ``p(t) = sum_j d_j prod_{i<j} (t - t_{n-i})`` (``factors`` = ``d``, ``times`` newest first), as new tensors."""
    k = len(factors) - 1
    poly = [factors[k].clone()]
    for j in range(k - 1, -1, -1):  # poly <- poly * (y - c_j) + d_j, y = t - t_n, c_j = t_{n-j} - t_n
        c = times[j] - times[0]
        shifted = [torch.add(factors[j], poly[0], alpha=-c)]
        shifted += [torch.add(poly[i - 1], poly[i], alpha=-c) for i in range(1, len(poly))]
        poly = [*shifted, poly[-1]]
    return poly


class HermitePredictor:
    """Scaled-Hermite forecast (module docstring) on top of a ``NewtonPredictor`` of ``max_order``; holds the
    same tensors as that predictor (``max_order + 1``). Options: ``scale`` (HiCache's ``s``, > 0) and ``unit``
    (the time that counts as one in the Hermite argument, > 0; None: the newest anchor gap)."""

    name = "hermite"

    def __init__(self, max_order: int, factor_dtype: torch.dtype | None = torch.float32,
                 storage_device: torch.device | str | None = None, *, scale: float = DEFAULT_SCALE,
                 unit: float | None = None) -> None:
        if not scale > 0.0:
            raise ValueError(f"hermite scale ({scale}) must be > 0")
        if unit is not None and not unit > 0.0:
            raise ValueError(f"hermite unit ({unit}) must be > 0 (or None: the newest anchor gap)")
        self._newton = NewtonPredictor(max_order, factor_dtype, storage_device)
        self.scale = scale
        self.unit = unit

    @classmethod
    def run_options(cls, span: tuple[float, float] | None, step: float | None) -> dict:
        """``unit``: one step of the run, HiCache's argument in sampling steps."""
        return {"unit": step} if step is not None else {}

    @property
    def order(self) -> int:
        return self._newton.order

    @property
    def num_anchors(self) -> int:
        return self._newton.num_anchors

    def bytes_held(self) -> int:
        return self._newton.bytes_held()

    def clear(self) -> None:
        self._newton.clear()

    def update(self, t: float, value: torch.Tensor) -> None:
        self._newton.update(t, value)

    def predict(self, t: float) -> torch.Tensor:
        if self._newton.order == 0:
            return self._newton.predict(t)
        times = self._newton.anchor_times
        store = self._newton.store
        coefficients = taylor_coefficients(tuple(store.to_compute(f) for f in self._newton.factors), times)
        unit = self.unit if self.unit is not None else abs(times[0] - times[1])
        basis = scaled_hermite(len(coefficients) - 1, self.scale, (float(t) - times[0]) / unit)
        acc = coefficients[0]
        for j in range(1, len(coefficients)):
            acc.add_(coefficients[j], alpha=basis[j] * unit**j)
        return store.give(acc)
