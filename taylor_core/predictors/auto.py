"""Per-anchor choice among several predictors: the one whose forecasts of the full steps were closest.

Every full step is a free test: before it becomes an anchor, each candidate forecasts it from what it held, and
the relative L1 error of that forecast (``taylor_core.gate.relative_l1``), smoothed over full steps, ranks the
candidates; the best one makes every forecast until the next full step. Ties (e.g. a single anchor, where all
are plain reuse) go to the earlier candidate. ``"reuse"`` is Newton of order 0. The error scored is at the
horizon of the last anchor gap. How the default candidates compare with each alone: docs/performance.md.
"""

from __future__ import annotations

import torch

from ..evidence import forecast_errors
from .foca import FoCaPredictor
from .hermite import HermitePredictor
from .newton import NewtonPredictor
from .spectral import SpectralPredictor

CANDIDATES: dict[str, type] = {cls.name: cls for cls in (NewtonPredictor, HermitePredictor, FoCaPredictor,
                                                          SpectralPredictor)}
"""The single-method predictors auto chooses among, by the name the nodes' ``forecaster`` input uses."""

DEFAULT_CANDIDATES = ("foca", "newton")
DEFAULT_SMOOTHING = 0.5


class AutoPredictor:
    """Feeds every anchor to each candidate (so its memory is theirs together, e.g. the default set holds
    ``4 + max_order + 1`` tensors at most) and forecasts with the current choice. Options: ``candidates``
    (names of ``CANDIDATES`` or "reuse"; the first is the choice until a full step was scored),
    ``options`` (``{name: {option: value}}`` passed to that candidate) and ``smoothing`` (in [0, 1): the weight
    of the earlier full steps' errors in a candidate's score; 0 ranks by the newest full step alone)."""

    name = "auto"

    def __init__(self, max_order: int, factor_dtype: torch.dtype | None = torch.float32,
                 storage_device: torch.device | str | None = None, *,
                 candidates: tuple[str, ...] = DEFAULT_CANDIDATES, options: dict | None = None,
                 smoothing: float = DEFAULT_SMOOTHING) -> None:
        if not candidates or len(set(candidates)) != len(candidates):
            raise ValueError(f"auto candidates {candidates!r} must be a non-empty list without repeats")
        unknown = [name for name in candidates if name not in (*CANDIDATES, "reuse")]
        if unknown:
            raise ValueError(f"auto candidates {unknown} are not among {', '.join((*CANDIDATES, 'reuse'))}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"auto smoothing ({smoothing}) must be in [0, 1): 0 ranks by the newest full step only")
        options = options or {}
        self.smoothing = smoothing
        self.names = tuple(candidates)
        self._members = [
            NewtonPredictor(0, factor_dtype, storage_device) if name == "reuse"
            else CANDIDATES[name](max_order, factor_dtype, storage_device, **options.get(name, {}))
            for name in self.names
        ]
        self._choice = 0
        self._newest: float | None = None
        self.last_errors: dict[str, float] = {}
        """Each candidate's relative L1 error on the newest full step (empty until one was scored)."""
        self.scores: dict[str, float] = {}
        """What ranks the candidates: ``smoothing * previous score + (1 - smoothing) * last error``."""

    @classmethod
    def run_options(cls, span: tuple[float, float] | None, step: float | None) -> dict:
        """Every candidate's own run options (``options``)."""
        return {"options": {name: candidate.run_options(span, step) for name, candidate in CANDIDATES.items()}}

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
        self.scores = {}

    def update(self, t: float, value: torch.Tensor) -> None:
        """Score every candidate's forecast of ``value`` (when it holds anchors and ``t`` is a new time), pick the
        best, then anchor."""
        if float(t) != self._newest and all(member.num_anchors for member in self._members):
            self.last_errors = forecast_errors(dict(zip(self.names, self._members)), t, value)
            b = self.smoothing
            self.scores = {name: (b * self.scores[name] + (1 - b) * e if name in self.scores else e)
                           for name, e in self.last_errors.items()}
            ranked = [self.scores[name] for name in self.names] if self.scores else []
            best = min(range(len(ranked)), key=lambda i: (ranked[i], i), default=None)
            if best is not None and ranked[best] < float("inf"):
                self._choice = best
        for member in self._members:
            member.update(t, value)
        self._newest = float(t)

    def predict(self, t: float) -> torch.Tensor:
        """The chosen candidate's forecast; recursive candidates not chosen still step to ``t`` (their forecast
        is dropped), so the score they get at the next full step is that of the path they would have taken."""
        for i, member in enumerate(self._members):
            if i != self._choice and getattr(member, "recursive", False):
                member.predict(t)
        return self._members[self._choice].predict(t)
