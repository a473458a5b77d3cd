"""Reference Spectrum forecaster and schedule for the benchmark, following the paper as released.

Han et al., "Adaptive Spectral Feature Forecasting for Diffusion Sampling Acceleration" (Spectrum, CVPR 2026,
arXiv 2603.01623; released configuration ``m: 4, lam: 0.1, w: 1.0``, window of the newest ``K = 10`` full steps).
Each feature is a function of time fitted by ridge regression on Chebyshev polynomials:

    tau = 2 t / T - 1   (t the step, T the run's steps: the domain is the whole run)
    X_im = T_m(tau_i),  m = 0..M,  T_0 = 1, T_1 = tau, T_{m+1} = 2 tau T_m - T_{m-1}
    C = (X^T X + lam I)^-1 X^T H          (H: the newest K full-step features, one row each)
    chebyshev(t*) = T(tau*) C
    local(t*) = h_i + k (h_i - h_{i-1}),  k = (t* - t_i) / (t_i - t_{i-1})     (first-order discrete Taylor)
    forecast = (1 - w) local + w chebyshev

Schedule: after the warm-up, windows of ``floor(ws)`` steps end in a full step, ``ws`` starting at 2 and growing
by 0.75 ("flex") after each full step. Standalone (torch only); the pack's version is
``taylor_core.predictors.spectral`` (any clock, the fit centred on the newest anchor).
"""

from __future__ import annotations

import math

import torch


def spectrum_full_steps(num_steps: int, warmup_steps: int = 3, window: float = 2.0, flex: float = 0.75) -> list[bool]:
    """Per step, full or not, under Spectrum's growing windows."""
    full, cached_in_row, ws = [], 0, window
    for step in range(num_steps):
        is_full = step < warmup_steps or (cached_in_row + 1) % math.floor(ws) == 0
        if is_full and step >= warmup_steps:
            ws = round(ws + flex, 3)
        cached_in_row = 0 if is_full else cached_in_row + 1
        full.append(is_full)
    return full


class SpectrumReference:
    """``update(t, value)`` on full steps, ``predict(t)`` on cached ones; ``t`` in steps of a ``num_steps`` run."""

    def __init__(self, num_steps: int, degree: int = 4, ridge: float = 0.1, weight: float = 1.0,
                 window: int = 10) -> None:
        self.num_steps, self.degree, self.ridge, self.weight, self.window = num_steps, degree, ridge, weight, window
        self.clear()

    def clear(self) -> None:
        self.times: list[float] = []
        self.values: list[torch.Tensor] = []

    def update(self, t: float, value: torch.Tensor) -> None:
        self.times = [*self.times, float(t)][-self.window:]
        self.values = [*self.values, value.detach().float().clone()][-self.window:]

    def basis(self, t: torch.Tensor) -> torch.Tensor:
        tau = 2.0 * t / self.num_steps - 1.0
        rows = [torch.ones_like(tau), tau]
        while len(rows) <= self.degree:
            rows.append(2.0 * tau * rows[-1] - rows[-2])
        return torch.stack(rows[: self.degree + 1], dim=-1)

    def chebyshev(self, t: float) -> torch.Tensor:
        x = self.basis(torch.tensor(self.times, dtype=torch.float64))
        h = torch.stack([v.reshape(-1).double() for v in self.values])
        coef = torch.linalg.solve(x.T @ x + self.ridge * torch.eye(self.degree + 1, dtype=torch.float64), x.T @ h)
        return (self.basis(torch.tensor([float(t)], dtype=torch.float64)) @ coef).reshape(self.values[-1].shape)

    def local(self, t: float) -> torch.Tensor:
        if len(self.values) < 2:
            return self.values[-1].clone()
        k = (t - self.times[-1]) / (self.times[-1] - self.times[-2])
        return self.values[-1] + k * (self.values[-1] - self.values[-2])

    def predict(self, t: float) -> torch.Tensor:
        return ((1.0 - self.weight) * self.local(t).double() + self.weight * self.chebyshev(t)).float()
