"""A step controller under a speed-up budget: where the next full step goes, from the forecast errors so far.

Like an adaptive ODE solver's step-size control: after each full step the gap to the next one is the gap the
budget's plan would leave over the steps still to come (``SpeedupSchedule``'s placement of the full steps left),
scaled by ``(reference / c) ** (1 / (p + 1))``, where ``c = e (g / h) ** (p + 1)`` is the newest forecast error
``e`` (``evidence.Evidence``, the best candidate's) at horizon ``h`` brought to the prior plan's gap ``g`` there
for a forecast of order ``p``, and the reference is the smoothed ``c`` of the full steps before: the gap grows
where the trajectory was smoother than the prior expects, up to ``MAX_SCALE`` times the plan's, and keeps the
plan's gap where it was rougher (``MIN_SCALE``): a full step pulled forward spends budget the last steps need
(docs/adaptive.md), while one put off leaves budget for them.
Replanning the rest after every full step keeps the count: the run spends exactly
``speedup_full_steps(num_steps, target_speedup)`` full steps, forced ones (step 0, warm-up, tail, outside the
window) included, or just the forced ones when they alone exceed it. Units: sampling-step indices; a step is
decided once, at its first evaluation, and keeps that answer (multi-evaluation samplers, device threads and
cond batches follow it). Owned by one run; not thread-safe by itself (the run's lock guards it).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence

from .evidence import Evidence
from .predictors.auto import DEFAULT_CANDIDATES
from .schedule import DEFAULT_GROWTH, forced_full, growing_positions, speedup_full_steps

MIN_SCALE, MAX_SCALE = 1.0, 2.0
CANDIDATES = DEFAULT_CANDIDATES
"""The predictors whose forecasts of each full step are the evidence: ``forecaster`` auto's candidates."""
DEFAULT_SMOOTHING = 0.5
TINY_ERROR = 1e-12  # an exact forecast counts as this small (a log is taken)


class AdaptiveBudget:
    """The full/forecast answer of every step of one run of ``num_steps`` steps; ``forced[i]``: step ``i`` is
    always full. ``growth`` shapes the plan of the steps left (``SpeedupSchedule.growth``), ``order`` is the
    forecasts' order ``p``, ``smoothing`` in [0, 1) weighs earlier steps in the reference error and in the
    candidates' scores (0: the newest step only)."""

    def __init__(self, num_steps: int, forced: Sequence[bool], target_speedup: float,
                 growth: float = DEFAULT_GROWTH, order: int = 1, smoothing: float = DEFAULT_SMOOTHING) -> None:
        if len(forced) != num_steps:
            raise ValueError(f"forced has {len(forced)} entries for {num_steps} steps")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing ({smoothing}) must be in [0, 1)")
        self.num_steps = num_steps
        self.forced = tuple(forced)
        self.budget = speedup_full_steps(num_steps, target_speedup) if num_steps else 0
        self.free_budget = max(self.budget - sum(self.forced), 0)
        """Full steps the controller places beside the forced ones."""
        self.growth, self.order, self.smoothing = growth, order, smoothing
        self.decided: dict[int, bool] = {}
        self.evidence: list[Evidence] = []
        self.scores: dict[str, float] = {}
        """Per candidate: ``smoothing * previous score + (1 - smoothing) * newest error``."""
        self._reference: float | None = None  # smoothed log(c)
        self._free = [i for i in range(num_steps) if not self.forced[i]]
        self._free_set = set(self._free)
        prior = (growing_positions(self.free_budget, -1, len(self._free), growth)
                 if 0 < self.free_budget < len(self._free) else list(range(min(self.free_budget, len(self._free)))))
        self._knots = [(-1.0, 0.0), *[(float(x), float(k + 1)) for k, x in enumerate(prior)],
                       (float(len(self._free)), float(self.free_budget + 1))]
        self.next_full = self._planned_next(-1, 1.0)
        """The step the controller computes next unless the budget forces another (an index; ``num_steps``:
        none)."""

    @classmethod
    def for_run(cls, num_steps: int, target_speedup: float, warmup_steps: int, tail_steps: int,
                in_window: Sequence[bool], order: int = 1) -> AdaptiveBudget | None:
        """The controller of a run with these settings (forced steps as ``SpeedupSchedule`` forces them); None for
        a run without steps."""
        if not num_steps:
            return None
        forced = forced_full(num_steps, warmup_steps, tail_steps, in_window)
        return cls(num_steps, forced, target_speedup, order=order)

    def spent(self) -> int:
        """Free (not forced) steps decided full so far."""
        return sum(full and not self.forced[i] for i, full in self.decided.items())

    def _warp(self, x: float, inverse: bool = False) -> float:
        """The prior plan's clock: ``x`` (an index into the free steps, -1 before the first) to ``u``, in which the
        prior's free full steps lie at ``1, 2, ...`` (``inverse``: ``u`` to ``x``); piecewise linear."""
        knots = self._knots if not inverse else [(u, x) for x, u in self._knots]
        (x0, u0), *rest = knots
        for x1, u1 in rest:
            if x <= x1 or (x1, u1) == rest[-1]:
                return u0 + (u1 - u0) * (x - x0) / (x1 - x0)
            x0, u0 = x1, u1
        return u0

    def _planned_next(self, step: int, scale: float) -> int:
        """The next full step after full step ``step``: the budget left spread evenly on the prior's clock over the
        free steps left (with no deviation, the prior plan's next full step), the gap times ``scale``."""
        left, free = self.free_budget - self.spent(), self._free
        x = bisect.bisect_left(free, step) - (0 if step in self._free_set else 1)
        if left <= 0 or x + 1 >= len(free):
            return self.num_steps
        u = self._warp(x)
        target = self._warp(u + (self.free_budget + 1 - u) / (left + 1), inverse=True)
        ahead = max(1, math.floor((target - x) * scale + 0.5))
        return free[min(x + ahead, len(free) - 1)]

    def is_full(self, step: int) -> bool:
        """Whether step ``step`` runs in full (decided at its first call; steps outside the run are full)."""
        if not 0 <= step < self.num_steps:
            return True
        if step not in self.decided:
            left = self.free_budget - self.spent()
            room = sum(1 for i in range(step, self.num_steps) if not self.forced[i])
            full = self.forced[step] or (left > 0 and (step >= self.next_full or left >= room))
            self.decided[step] = full
            if full:
                self.next_full = self._planned_next(step, 1.0)
        return self.decided[step]

    def observe(self, step: int, full: bool, error: float | None) -> None:
        """``StepPolicy``'s report of what a step did: ``is_full`` recorded it already; the evidence comes through
        ``observe_errors``."""
        return None

    def observe_errors(self, step: int, errors: Mapping[str, float]) -> None:
        """The evidence of full step ``step`` (each candidate's forecast error of it, ``evidence.forecast_errors``);
        only a step's first evidence counts, and only after ``is_full`` made it full. Moves the next full step."""
        if not self.decided.get(step) or any(e.step == step for e in self.evidence):
            return
        previous = max((i for i, full in self.decided.items() if full and i < step), default=None)
        if previous is None or not errors:
            return
        evidence = Evidence(step, float(step - previous), dict(errors))
        self.evidence.append(evidence)
        b = self.smoothing
        self.scores = {name: (b * self.scores[name] + (1 - b) * e if name in self.scores else e)
                       for name, e in evidence.errors.items() if math.isfinite(e)} or self.scores
        self.next_full = self._planned_next(step, self._scale(evidence))

    def _scale(self, evidence: Evidence) -> float:
        """How much longer than planned the next gap may be: the newest error, rescaled to the gap the prior plan
        has where it was measured (``e * (g / h) ** (p + 1)``), against the smoothed same of the full steps
        before. Rescaling to the prior's gap keeps what the prior already expects (e.g. rougher late steps,
        closer full steps there) from counting as a surprise."""
        error = evidence.error()
        if not math.isfinite(error):
            return MIN_SCALE
        power = self.order + 1
        x = bisect.bisect_left(self._free, evidence.step) - evidence.horizon / 2.0  # the middle of the stretch
        gap = 1.0 / max(self._warp(x + 0.5) - self._warp(x - 0.5), 1e-9)  # the prior's gap there, in steps
        log_e = math.log(max(error, TINY_ERROR)) + power * math.log(gap / evidence.horizon)
        reference = log_e if self._reference is None else self._reference
        self._reference = self.smoothing * reference + (1 - self.smoothing) * log_e
        return min(max(math.exp((reference - log_e) / power), MIN_SCALE), MAX_SCALE)

    @property
    def choice(self) -> str | None:
        """The candidate with the smallest score (ties: the first seen); None before any evidence."""
        return min(self.scores, key=self.scores.get) if self.scores else None

    def render(self, forecast_char: str = "T") -> str:
        """The steps decided so far, ``F`` full and ``forecast_char`` forecast, ``.`` not yet decided."""
        return "".join("." if i not in self.decided else "F" if self.decided[i] else forecast_char
                       for i in range(self.num_steps))
