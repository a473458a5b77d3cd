"""Reference HiCache forecaster for the benchmark, following the paper's formula as written.

Feng et al., "HiCache: Training-free Acceleration of Diffusion Models via Hermite Polynomial-based Feature
Caching", arXiv 2508.16984. HiCache keeps TaylorSeer's factors and replaces the monomial basis of its forecast:

    TaylorSeer factors, on a full step at ``t`` with gap ``d = t - t_prev``:
        ``D_0 = F``,  ``D_{i+1} = (D_i - D_i^old) / d``
    forecast ``k = t - t_a`` steps after the newest full step:
        ``F(t_a + k) = sum_i D_i / i! * H~_i(k)``
    scaled Hermite basis ``H~_i(x) = s^i H_i(s x)``, physicists' Hermite polynomials
        ``H_i(y) = i! sum_m (-1)^m (2y)^(i-2m) / (m! (i-2m)!)``

``H~_0 = 1`` and ``H~_1(k) = 2 s^2 k``: with ``s = sqrt(1/2)`` order 1 is TaylorSeer's forecast. ``s`` defaults to 0.5
(hicache-pp's default; FreqCa uses 0.71). Time is the sampling-step index. Standalone (torch only); the pack's
own version for uneven anchors and any clock is ``taylor_core.predictors.hermite``.
"""

from __future__ import annotations

import math

import torch


def hermite(n: int, y: float) -> float:
    """Physicists' Hermite polynomial ``H_n(y)`` by its explicit sum."""
    terms = ((-1) ** m * (2.0 * y) ** (n - 2 * m) / (math.factorial(m) * math.factorial(n - 2 * m))
             for m in range(n // 2 + 1))
    return math.factorial(n) * sum(terms)


class HiCacheReference:
    """``update(t, value)`` on full steps, ``predict(t)`` on cached ones; ``t`` in steps."""

    def __init__(self, max_order: int = 2, scale: float = 0.5) -> None:
        self.max_order = max_order
        self.scale = scale
        self.factors: list[torch.Tensor] = []
        self.steps: list[float] = []

    def update(self, t: float, value: torch.Tensor) -> None:
        new = [value.detach().float().clone()]
        if self.steps:
            d = t - self.steps[-1]
            for old in self.factors[: self.max_order]:
                new.append((new[-1] - old) / d)
        self.factors = new
        self.steps.append(float(t))

    def predict(self, t: float) -> torch.Tensor:
        k = t - self.steps[-1]
        s = self.scale
        out = self.factors[0].clone()
        for i in range(1, len(self.factors)):
            out += self.factors[i] / math.factorial(i) * (s**i * hermite(i, s * k))
        return out

    def clear(self) -> None:
        self.factors, self.steps = [], []
