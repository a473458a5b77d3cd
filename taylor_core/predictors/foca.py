"""FoCa's predictor-corrector (Forecast then Calibrate, arXiv 2508.16211) for arbitrary, uneven gaps.

FoCa treats the feature trajectory as an ODE and steps it recursively through its own forecasts: a BDF2
predictor proposes the next value, a Heun (trapezoid) corrector averages the slope at the full-compute anchor
with the local slope of the two newest values (full or forecast). For unit steps this is the recursion
``F_{k+1} = F_k + 1/2 [(F_a - F_p) + (F_k - F_{k-1})]`` (cache-dit's form, ``h = 1``). For uneven gaps each
difference becomes a slope and the step is ``h = t - t_k``:

    s_a = (F_a - F_p) / (t_a - t_p),   s_k = (F_k - F_{k-1}) / (t_k - t_{k-1}),
    F(t) = F_k + h/2 (s_a + s_k).

(The BDF2 derivative at ``t`` of the points ``F_{k-1}, F_k`` and the linear predictor ``F_k + h s_k`` is ``s_k``:
that is where the local slope comes from.) Long-horizon damping: beyond ``damp_after`` units from the anchor
(``e = |t - t_a| / unit > damp_after``) the forecast is pulled toward the anchor, ``F_a + w (F(t) - F_a)`` with
``w = damp_after / e`` (cache-dit's ``w = 3 / e``); ``damp_after=None`` is the undamped form. The value returned
becomes the newest rolling value, so the next forecast recurses on it. Exact on linear trajectories (any
gaps, undamped); order 1.
"""

from __future__ import annotations

import torch

from ..anchors import ValueStore, unique_bytes

DEFAULT_DAMP_AFTER = 3.0
DEFAULT_UNIT = 1.0
"""One step on the step clock: damping after 3 steps, as cache-dit (damped against undamped: docs/performance.md)."""


class FoCaPredictor:
    """State: the two newest full-compute anchors ``(t_a, F_a), (t_p, F_p)`` and the rolling pair of the two
    newest values ``(t_k, F_k), (t_{k-1}, F_{k-1})`` (a full value is shared with its anchor, not copied):
    at most 4 tensors. ``max_order`` 0 is plain reuse; any larger order is FoCa (order 1).

    Options: ``damp_after`` (units from the anchor before damping starts, > 0; None: never damp) and ``unit``
    (the time that counts as one unit, > 0: 1 is one step on the step clock, cache-dit's count of steps; on
    the sigma clock pass the run's typical sigma step; None: the newest anchor gap, so damping starts where
    the forecast reaches ``damp_after`` times farther than the anchors lie apart).
    """

    name = "foca"
    recursive = True
    """Each forecast feeds the next: a caller that switches predictors should still let this one see every
    forecast time (``AutoPredictor`` does)."""

    def __init__(self, max_order: int, factor_dtype: torch.dtype | None = torch.float32,
                 storage_device: torch.device | str | None = None, *,
                 damp_after: float | None = DEFAULT_DAMP_AFTER, unit: float | None = DEFAULT_UNIT) -> None:
        if max_order < 0:
            raise ValueError(f"max_order ({max_order}) must be >= 0")
        if damp_after is not None and not damp_after > 0.0:
            raise ValueError(f"foca damp_after ({damp_after}) must be > 0 (or None: no damping)")
        if unit is not None and not unit > 0.0:
            raise ValueError(f"foca unit ({unit}) must be > 0 (or None: the newest anchor gap)")
        self.max_order = max_order
        self.damp_after = damp_after
        self.unit = unit
        self._store = ValueStore(factor_dtype, storage_device)
        self._anchors: list[tuple[float, torch.Tensor]] = []  # newest first, at most 2
        self._rolling: list[tuple[float, torch.Tensor]] = []  # newest first, at most 2

    @classmethod
    def run_options(cls, span: tuple[float, float] | None, step: float | None) -> dict:
        """``unit``: one step of the run, so damping starts ``damp_after`` steps from the anchor on any clock."""
        return {"unit": step} if step is not None else {}

    @property
    def order(self) -> int:
        return min(self.max_order, 1, max(len(self._anchors) - 1, 0))

    @property
    def num_anchors(self) -> int:
        return len(self._anchors)

    def bytes_held(self) -> int:
        return unique_bytes(v for _, v in self._anchors + self._rolling)

    def clear(self) -> None:
        self._anchors = []
        self._rolling = []
        self._store.reset()

    @staticmethod
    def _push(pairs: list[tuple[float, torch.Tensor]], t: float, value: torch.Tensor) -> list:
        """``(t, value)`` newest; a pair at the same time is replaced, pairs at or before a repeated time dropped."""
        older = [pair for pair in pairs if pair[0] != t]
        if len(older) != len(pairs) and pairs[0][0] != t:
            older = []  # t repeats an older time: what lay between is inconsistent
        return [(t, value), *older[:1]]

    def update(self, t: float, value: torch.Tensor) -> None:
        """A full-compute anchor: it becomes the newest anchor and the newest rolling value."""
        t, copy = self._store.take(t, value, self._anchors[0][1] if self._anchors else None)
        self._anchors = self._push(self._anchors, t, copy)
        self._rolling = self._push(self._rolling, t, copy)

    def predict(self, t: float) -> torch.Tensor:
        """The forecast at ``t`` (module docstring); a second call at the same ``t`` returns the same value."""
        if not self._anchors:
            raise RuntimeError("FoCaPredictor.predict: no anchor held; call update() first")
        t = float(t)
        compute = self._store.to_compute
        t_a, f_a = self._anchors[0][0], compute(self._anchors[0][1])
        if self.order == 0 or self._rolling[0][0] == t:
            source = f_a if self.order == 0 else compute(self._rolling[0][1])
            return self._store.give(source, copy=True)
        (t_k, f_k), (t_km1, f_km1) = [(tk, compute(v)) for tk, v in self._rolling]
        t_p, f_p = self._anchors[1][0], compute(self._anchors[1][1])
        slopes = torch.sub(f_a, f_p).div_(t_a - t_p).add_(torch.sub(f_k, f_km1).div_(t_k - t_km1))
        forecast = torch.add(f_k, slopes, alpha=0.5 * (t - t_k))
        unit = self.unit if self.unit is not None else abs(t_a - t_p)
        horizon = abs(t - t_a) / unit
        if self.damp_after is not None and horizon > self.damp_after:
            forecast = torch.lerp(f_a, forecast, self.damp_after / horizon)
        self._rolling = [(t, forecast.to(self._anchors[0][1].device)), self._rolling[0]]
        return self._store.give(forecast, copy=True)
