"""Evidence that costs no model call: how well each candidate forecast a step that was just computed in full.

At every full step, before its value becomes an anchor, each candidate predictor forecasts that step from the
anchors it held; the relative L1 error of that forecast (``gate.relative_l1``) at the horizon since the
newest anchor is the evidence. Only forecasts of tensors already held are made: no model call, no extra
anchor: the memory is that of the candidates' own anchors (``AutoPredictor`` feeds each candidate every anchor:
newton of order ``k`` holds ``k + 1`` tensors, foca at most 4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from .gate import relative_l1
from .predictors.protocol import Predictor


@dataclass(frozen=True)
class Evidence:
    """The forecast errors of one full step: ``errors[name]`` is candidate ``name``'s relative L1 error of its
    forecast of ``step`` made ``horizon`` steps after its newest anchor (sampling steps, > 0)."""

    step: int
    horizon: float
    errors: Mapping[str, float] = field(default_factory=dict)

    def best(self) -> str | None:
        """The candidate with the smallest finite error (ties: the first); None when none has one."""
        finite = [(error, i, name) for i, (name, error) in enumerate(self.errors.items()) if math.isfinite(error)]
        return min(finite)[2] if finite else None

    def error(self, name: str | None = None) -> float:
        """``name``'s error, or the best candidate's (``inf`` when there is none)."""
        name = self.best() if name is None else name
        return self.errors.get(name, math.inf) if name is not None else math.inf


def forecast_errors(candidates: Mapping[str, Predictor], t: float, value: torch.Tensor) -> dict[str, float]:
    """Each candidate's relative L1 error forecasting ``value`` at ``t`` from what it holds (a candidate without
    an anchor, or whose forecast has another shape, is left out). Call before ``value`` becomes an anchor."""
    errors = {}
    for name, candidate in candidates.items():
        if candidate.num_anchors:
            forecast = candidate.predict(t)
            if forecast.shape == value.shape:
                errors[name] = relative_l1(forecast, value)
    return errors


def mean_errors(per_part: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per candidate, the mean of its errors over the parts (e.g. the conds of one step) that scored it."""
    names = dict.fromkeys(name for errors in per_part for name in errors)
    return {name: sum(e[name] for e in per_part if name in e) / sum(name in e for e in per_part) for name in names}
