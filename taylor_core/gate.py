"""CG-Taylor's prediction-confidence gate (arXiv 2508.02240): forecast a step only when the Taylor forecast
of a cheap probe (the first block's output) matches that probe's real value.

The forced-full steps (step 0, warm-up, tail, outside the start/end window) are a ``FixedIntervalSchedule``
whose interval never fires; on every other step the gate compares the probe's forecast with its real value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .schedule import FixedIntervalSchedule

NEVER = 1 << 30  # an interval no run reaches: only the forced steps are full by schedule


def relative_l1(predicted: torch.Tensor, actual: torch.Tensor) -> float:
    """``mean|predicted - actual| / mean|actual|`` (a ratio of means, as CG-Taylor computes it), in float32.

    ``inf`` when the actual value is all zeros or either tensor is not finite: such a step is never trusted.
    """
    actual32 = actual.float()
    scale = actual32.abs().mean()
    error = (predicted.float() - actual32).abs().mean() / scale
    value = float(error)
    return value if torch.isfinite(error) else float("inf")


@dataclass(frozen=True)
class ConfidenceGate:
    """``threshold``: largest relative L1 error of the probe forecast that still allows a forecast (0 never
    forecasts). ``max_consecutive``: at most this many forecast steps in a row (0 = no cap)."""

    threshold: float
    max_consecutive: int

    def validate(self) -> None:
        if not self.threshold >= 0.0:
            raise ValueError(f"threshold ({self.threshold}) must be >= 0 (0 = never forecast)")
        if self.max_consecutive < 0:
            raise ValueError(f"max_consecutive ({self.max_consecutive}) must be >= 0 (0 = no cap)")

    def capped(self, consecutive_forecasts: int) -> bool:
        """Whether the cap forbids another forecast after ``consecutive_forecasts`` in a row."""
        return self.max_consecutive > 0 and consecutive_forecasts >= self.max_consecutive

    def allows(self, error: float) -> bool:
        return error < self.threshold


def forced_full_schedule(warmup_steps: int, tail_steps: int, start_percent: float,
                         end_percent: float) -> FixedIntervalSchedule:
    """The steps a gated run always computes, as a schedule whose interval never fires."""
    return FixedIntervalSchedule(NEVER, warmup_steps, tail_steps, start_percent, end_percent)
