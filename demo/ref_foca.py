"""Reference FoCa forecaster for the benchmark, following the formula as published for unit steps.

Zheng et al., "Forecast then Calibrate: Feature Caching as ODE for Efficient Diffusion Transformers" (FoCa,
AAAI 2026, arXiv 2508.16211): features follow an ODE integrated by a BDF2 predictor and a Heun corrector,
recursively through the forecasts. For unit steps (cache-dit's implementation, "simplified for h = 1", as
summarised in the project's research notes), with ``F_a, F_p`` the two newest full steps and
``F_k, F_{k-1}`` the two newest values (full or forecast):

    BDF2 predictor    P = 2 F_k - F_{k-1}
    Heun corrector    F_{k+1} = P + 1/2 [(F_a - F_p) - (F_k - F_{k-1})]  =  F_k + 1/2 [(F_a - F_p) + (F_k - F_{k-1})]
    damping           e = steps since F_a; for e > 3:  F = w F_{k+1} + (1 - w) F_a,  w = 3 / e

and the result becomes the newest value. Time is the sampling-step index; a forecast several steps ahead
recurses through the steps in between. Standalone (torch only); the pack's version for uneven gaps and any
clock is ``taylor_core.predictors.foca``.
"""

from __future__ import annotations

import torch


class FoCaReference:
    """``update(t, value)`` on full steps, ``predict(t)`` on cached ones; ``t`` in (integer) steps."""

    def __init__(self, damp_after: float | None = 3.0) -> None:
        self.damp_after = damp_after
        self.clear()

    def clear(self) -> None:
        self.full: list[torch.Tensor] = []  # [F_p, F_a]
        self.recent: list[torch.Tensor] = []  # [F_{k-1}, F_k]
        self.anchor_step = 0.0
        self.step = 0.0

    def update(self, t: float, value: torch.Tensor) -> None:
        value = value.detach().float().clone()
        self.full = [*self.full[-1:], value]
        self.recent = [*self.recent[-1:], value]
        self.anchor_step = self.step = float(t)

    def _advance(self) -> torch.Tensor:
        f_a = self.full[-1]
        if len(self.recent) < 2:
            nxt = f_a.clone()
        else:
            f_km1, f_k = self.recent
            prior = self.full[-1] - self.full[-2] if len(self.full) == 2 else torch.zeros_like(f_a)
            nxt = 2.0 * f_k - f_km1 + 0.5 * (prior - (f_k - f_km1))
        self.step += 1.0
        e = self.step - self.anchor_step
        if self.damp_after is not None and e > self.damp_after:
            w = self.damp_after / e
            nxt = w * nxt + (1.0 - w) * f_a
        self.recent = [self.recent[-1], nxt]
        return nxt

    def predict(self, t: float) -> torch.Tensor:
        while self.step < t:
            self._advance()
        return self.recent[-1].clone()
