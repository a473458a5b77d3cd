"""Spectrum's global Chebyshev ridge fit (CVPR 2026, arXiv 2603.01623) blended with the local Newton forecast.

The newest ``max_anchors`` anchors ``(t_i, F_i)`` are fitted by ``c = (X^T X + lam I)^-1 X^T F`` with
``X_im = T_m(tau_i)``, Chebyshev polynomials ``T_0..T_M`` (``M = degree``) of ``tau``, the time mapped affinely onto
``[-1, 1]`` over ``domain`` (default: the span of the anchors and the forecast time). The fit's forecast is a
fixed linear combination of the anchors, ``sum_i alpha_i F_i`` with ``alpha = X (X^T X + lam I)^-1 T(tau)``
(weights computed in float64 from the times alone). One change from Spectrum: the fit is of the differences
``F_i - F_n`` from the newest anchor (``alpha_n += 1 - sum(alpha)``), so the ridge shrinks the forecast toward
plain reuse instead of toward zero and a constant trajectory is kept exactly. The result is
``(1 - weight) * newton(t) + weight * chebyshev(t)``, the Newton forecast of ``max_order`` over the newest anchors
being the local term (Spectrum blends with a local Taylor term the same way). With ``lam -> 0`` and exactly
``M + 1`` anchors the fit interpolates them; with fewer than ``M + 1`` anchors the forecast is Newton's alone.
"""

from __future__ import annotations

import torch

from ..anchors import ValueStore
from .newton import NewtonPredictor

DEFAULT_DEGREE = 4  # Spectrum's M
DEFAULT_RIDGE = 0.1  # Spectrum's lambda
DEFAULT_WEIGHT = 0.5
DEFAULT_MAX_ANCHORS = 10  # Spectrum's window K


def chebyshev_rows(taus: torch.Tensor, degree: int) -> torch.Tensor:
    """``[T_0(tau), ..., T_degree(tau)]`` per entry of ``taus`` (shape ``(n,)`` -> ``(n, degree + 1)``)."""
    cols = [torch.ones_like(taus), taus][: degree + 1]
    for _ in range(2, degree + 1):
        cols.append(2.0 * taus * cols[-1] - cols[-2])
    return torch.stack(cols, dim=1)


def ridge_weights(times: list[float], t: float, degree: int, ridge: float,
                  domain: tuple[float, float] | None) -> list[float]:
    """``alpha`` with ``chebyshev(t) = sum_i alpha_i F(times[i])`` for the ridge fit of the raw values ``F_i``
    (as Spectrum fits them; ``times`` newest first)."""
    lo, hi = domain if domain is not None else (min(*times, t), max(*times, t))
    all_t = torch.tensor([*times, t], dtype=torch.float64)
    taus = (2.0 * (all_t - lo) / (hi - lo) - 1.0) if hi > lo else torch.zeros_like(all_t)
    rows = chebyshev_rows(taus, degree)
    x, x_star = rows[:-1], rows[-1]
    gram = x.T @ x + ridge * torch.eye(degree + 1, dtype=torch.float64)
    return (x @ torch.linalg.solve(gram, x_star)).tolist()


class SpectralPredictor:
    """Holds the newest ``max_anchors`` raw anchors (``max_anchors`` tensors of the value's shape in the factor
    dtype: that is its memory, against ``max_order + 1`` for Newton). Options: ``degree`` (``M`` >= 0), ``ridge``
    (``lam`` >= 0), ``weight`` (of the Chebyshev term, in [0, 1]), ``max_anchors`` (>= ``max(degree,
    max_order) + 1``), ``domain`` (``(lo, hi)`` of the clock mapped onto [-1, 1], e.g. the run's first and last
    time; None: the anchors' and forecast's span)."""

    name = "spectral"

    def __init__(self, max_order: int, factor_dtype: torch.dtype | None = torch.float32,
                 storage_device: torch.device | str | None = None, *, degree: int = DEFAULT_DEGREE,
                 ridge: float = DEFAULT_RIDGE, weight: float = DEFAULT_WEIGHT,
                 max_anchors: int = DEFAULT_MAX_ANCHORS, domain: tuple[float, float] | None = None) -> None:
        if max_order < 0:
            raise ValueError(f"max_order ({max_order}) must be >= 0")
        if degree < 0:
            raise ValueError(f"spectral degree ({degree}) must be >= 0")
        if not ridge >= 0.0:
            raise ValueError(f"spectral ridge ({ridge}) must be >= 0")
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"spectral weight ({weight}) must be between 0 and 1")
        if max_anchors < max(degree, max_order) + 1:
            raise ValueError(f"spectral max_anchors ({max_anchors}) must be >= {max(degree, max_order) + 1} "
                             "(degree + 1 and max_order + 1)")
        if domain is not None and not domain[0] < domain[1]:
            raise ValueError(f"spectral domain {domain} must be (lo, hi) with lo < hi")
        self.max_order = max_order
        self.degree, self.ridge, self.weight = degree, ridge, weight
        self.max_anchors = max_anchors
        self.domain = None if domain is None else (float(domain[0]), float(domain[1]))
        self._store = ValueStore(factor_dtype, storage_device)
        self._anchors: list[tuple[float, torch.Tensor]] = []  # newest first

    @classmethod
    def run_options(cls, span: tuple[float, float] | None, step: float | None) -> dict:
        """``domain``: the run's span of forecast times, mapped onto the Chebyshev interval."""
        return {"domain": span} if span is not None else {}

    @property
    def order(self) -> int:
        return min(self.max_order, max(len(self._anchors) - 1, 0))

    @property
    def num_anchors(self) -> int:
        return len(self._anchors)

    @property
    def anchor_times(self) -> tuple[float, ...]:
        return tuple(t for t, _ in self._anchors)

    def bytes_held(self) -> int:
        return sum(v.nbytes for _, v in self._anchors)

    def clear(self) -> None:
        self._anchors = []
        self._store.reset()

    def update(self, t: float, value: torch.Tensor) -> None:
        """Add an anchor (one at a held time replaces it); the oldest beyond ``max_anchors`` is dropped."""
        t, copy = self._store.take(t, value, self._anchors[0][1] if self._anchors else None)
        self._anchors = [(t, copy), *[pair for pair in self._anchors if pair[0] != t]][: self.max_anchors]

    def _newton(self, t: float) -> torch.Tensor:
        local = NewtonPredictor(self.max_order, factor_dtype=None)
        for ta, value in reversed(self._anchors[: self.max_order + 1]):
            local.update(ta, self._store.to_compute(value))
        return local.predict(t)

    def predict(self, t: float) -> torch.Tensor:
        if not self._anchors:
            raise RuntimeError("SpectralPredictor.predict: no anchor held; call update() first")
        t = float(t)
        if self.weight == 0.0 or len(self._anchors) < self.degree + 1:
            return self._store.give(self._newton(t))
        alphas = ridge_weights(list(self.anchor_times), t, self.degree, self.ridge, self.domain)
        alphas[0] += 1.0 - sum(alphas)  # fit F_i - F_newest: the ridge shrinks toward reuse, not toward zero
        fit = torch.zeros_like(self._store.to_compute(self._anchors[0][1]))
        for alpha, (_, value) in zip(alphas, self._anchors):
            fit.add_(self._store.to_compute(value), alpha=alpha)
        result = fit if self.weight == 1.0 else torch.lerp(self._newton(t), fit, self.weight)
        return self._store.give(result)
