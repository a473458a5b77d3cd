"""CG-Taylor's prediction-confidence gate (arXiv 2508.02240): forecast a step only when the Taylor forecast
of a cheap probe (the first block's output) matches that probe's real value.

The steps a gated run always computes (step 0, warm-up, tail, outside the start/end window) are ``ForcedSteps``;
on every other step the gate compares the probe's forecast with its real value, and its error budget
(``ErrorBudget``) carries the score between steps. ``controller.GatePolicy`` puts them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .schedule import StepPlan, all_full_note, check_plan_args, forced_full, validate_window


def relative_l1(predicted: torch.Tensor, actual: torch.Tensor) -> float:
    """``mean|predicted - actual| / mean|actual|`` (a ratio of means, as CG-Taylor computes it), in float32.

    ``inf`` when the actual value is all zeros or either tensor is not finite: such a step is never trusted.
    """
    actual32 = actual.float()
    scale = actual32.abs().mean()
    error = (predicted.float() - actual32).abs().mean() / scale
    value = float(error)
    return value if torch.isfinite(error) else float("inf")


ERROR_BUDGETS = ("accumulated", "per_step")


@dataclass(frozen=True)
class ConfidenceGate:
    """``threshold``: largest relative L1 error of the probe forecast that still allows a forecast (0 never
    forecasts). ``max_consecutive``: at most this many forecast steps in a row (0 = no cap).

    ``error_budget`` "per_step" compares each step's probe error with the threshold alone (CG-Taylor's rule);
    "accumulated" compares the sum of the probe errors of the forecast steps since the last full step, this
    one included: each forecast step leaves its own error in the trajectory, so a run of forecasts spends one
    error budget (docs/benchmarks.md compares the two).
    """

    threshold: float
    max_consecutive: int
    error_budget: str = "accumulated"

    def validate(self) -> None:
        if not self.threshold >= 0.0:
            raise ValueError(f"threshold ({self.threshold}) must be >= 0 (0 = never forecast)")
        if self.max_consecutive < 0:
            raise ValueError(f"max_consecutive ({self.max_consecutive}) must be >= 0 (0 = no cap)")
        if self.error_budget not in ERROR_BUDGETS:
            raise ValueError(f"error_budget '{self.error_budget}' is not one of {', '.join(ERROR_BUDGETS)}")

    def score(self, error: float, spent: float) -> float:
        """What is compared with the threshold at a gated step: its probe error ``error``, plus, with the
        accumulated budget, ``spent`` (the score of the forecast step just before, 0 after a full step)."""
        return error + spent if self.error_budget == "accumulated" else error

    def capped(self, consecutive_forecasts: int) -> bool:
        """Whether the cap forbids another forecast after ``consecutive_forecasts`` in a row."""
        return self.max_consecutive > 0 and consecutive_forecasts >= self.max_consecutive

    def allows(self, score: float) -> bool:
        return score < self.threshold


class ErrorBudget:
    """The score a gate carries between steps of one sampling run (owned by that run's controller): the error
    budget spent by the current run of forecast steps, 0 after a full step."""

    def __init__(self, gate: ConfidenceGate) -> None:
        self.gate = gate
        self.spent = 0.0

    def verdict(self, error: float) -> tuple[bool, float]:
        """(whether to forecast this step, the score compared with the threshold) for its probe error."""
        score = self.gate.score(error, self.spent)
        allowed = self.gate.allows(score)
        self.spent = score if allowed else 0.0
        return allowed, score

    def reset(self) -> None:
        """A full step happened (gated or forced): the next forecast starts a new budget."""
        self.spent = 0.0


@dataclass(frozen=True)
class ForcedSteps:
    """The steps a gated run always computes: step 0, the first ``warmup_steps``, the last ``tail_steps``, and
    every step outside the ``[start_percent, end_percent]`` window."""

    warmup_steps: int
    tail_steps: int
    start_percent: float
    end_percent: float

    def validate(self) -> None:
        """Raise ``ValueError`` with an actionable message for an invalid setting."""
        validate_window(self.warmup_steps, self.tail_steps, self.start_percent, self.end_percent)

    def plan(self, num_steps: int, in_window: Sequence[bool]) -> StepPlan:
        """Full exactly at the forced steps (every step, with a ``note``, when warm-up and tail cover the run)."""
        self.validate()
        check_plan_args(num_steps, in_window)
        if self.warmup_steps + self.tail_steps >= num_steps:
            return StepPlan((True,) * num_steps, all_full_note(self.warmup_steps, self.tail_steps, num_steps))
        return StepPlan(forced_full(num_steps, self.warmup_steps, self.tail_steps, in_window))
