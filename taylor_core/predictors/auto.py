"""Per-anchor choice among several predictors: the one whose forecast of the newest full step was closest.

Every full step is a free test: before it becomes an anchor, each candidate forecasts it from what it held, and
the relative L1 error of that forecast (``taylor_core.gate.relative_l1``) ranks the candidates; the best one
makes every forecast until the next full step. Ties (e.g. a single anchor, where all are plain reuse) go to the
earlier candidate. ``"reuse"`` is Newton of order 0. The error measured is at the horizon of the last anchor gap.
"""

from __future__ import annotations

import torch

from ..forecaster import NewtonForecaster
from ..gate import relative_l1
from .family import BASE_PREDICTORS

DEFAULT_CANDIDATES = ("newton", "reuse", "foca", "hermite")


class AutoPredictor:
    """Feeds every anchor to each candidate (so its memory is theirs together, e.g. the default set holds
    ``2 (max_order + 1) + 1 + 4`` tensors at most) and forecasts with the current choice. Options:
    ``candidates`` (names of ``BASE_PREDICTORS`` or "reuse"; the first is the choice until a full step was
    scored) and ``options`` (``{name: {option: value}}`` passed to that candidate)."""

    def __init__(self, max_order: int, factor_dtype: torch.dtype | None = torch.float32,
                 storage_device: torch.device | str | None = None, *,
                 candidates: tuple[str, ...] = DEFAULT_CANDIDATES, options: dict | None = None) -> None:
        if not candidates or len(set(candidates)) != len(candidates):
            raise ValueError(f"auto candidates {candidates!r} must be a non-empty list without repeats")
        unknown = [name for name in candidates if name not in (*BASE_PREDICTORS, "reuse")]
        if unknown:
            raise ValueError(f"auto candidates {unknown} are not among {', '.join((*BASE_PREDICTORS, 'reuse'))}")
        options = options or {}
        self.names = tuple(candidates)
        self._members = [
            NewtonForecaster(0, factor_dtype, storage_device) if name == "reuse"
            else BASE_PREDICTORS[name](max_order, factor_dtype, storage_device, **options.get(name, {}))
            for name in self.names
        ]
        self._choice = 0
        self._newest: float | None = None
        self.last_errors: dict[str, float] = {}
        """Each candidate's relative L1 error on the newest full step (empty until one was scored)."""

    @property
    def choice(self) -> str:
        """The candidate that makes the forecasts now."""
        return self.names[self._choice]

    @property
    def order(self) -> int:
        return self._members[self._choice].order

    @property
    def num_anchors(self) -> int:
        return max(member.num_anchors for member in self._members)

    def bytes_held(self) -> int:
        return sum(member.bytes_held() for member in self._members)

    def clear(self) -> None:
        for member in self._members:
            member.clear()
        self._choice = 0
        self._newest = None
        self.last_errors = {}

    def update(self, t: float, value: torch.Tensor) -> None:
        """Score every candidate's forecast of ``value`` (when it holds anchors and ``t`` is a new time), pick the
        best, then anchor."""
        if float(t) != self._newest and all(member.num_anchors for member in self._members):
            forecasts = [member.predict(t) for member in self._members]
            if any(forecast.shape != value.shape for forecast in forecasts):  # the members refuse it below
                forecasts = []
            errors = [relative_l1(forecast, value) for forecast in forecasts]
            self.last_errors = dict(zip(self.names, errors))
            best = min(range(len(errors)), key=lambda i: (errors[i], i), default=None)
            if best is not None and errors[best] < float("inf"):
                self._choice = best
        for member in self._members:
            member.update(t, value)
        self._newest = float(t)

    def predict(self, t: float) -> torch.Tensor:
        return self._members[self._choice].predict(t)
