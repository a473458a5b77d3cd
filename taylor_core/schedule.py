"""Which sampling steps are computed in full and which are forecast (units: step indices)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StepPlan:
    """Per-step plan: ``full[i]`` is True when step ``i`` runs the full model."""

    full: tuple[bool, ...]
    note: str = ""
    """Empty, or a sentence for the log explaining why the plan is all-full."""

    @property
    def num_steps(self) -> int:
        return len(self.full)

    @property
    def full_count(self) -> int:
        return sum(self.full)

    @property
    def compute_ratio(self) -> float:
        """``num_steps / full_count`` (1.0 for an empty plan)."""
        return self.num_steps / self.full_count if self.full_count else 1.0

    def is_full(self, i: int) -> bool:
        """Whether step ``i`` is full; steps outside the plan are full."""
        return self.full[i] if 0 <= i < len(self.full) else True

    def render(self, forecast_char: str = "T") -> str:
        """The plan as a string, ``F`` per full step and ``forecast_char`` per forecast step."""
        return "".join("F" if f else forecast_char for f in self.full)


@dataclass(frozen=True)
class FixedIntervalSchedule:
    """One full step every ``interval`` steps, TaylorSeer style.

    Steps ``< warmup_steps``, the last ``tail_steps`` steps, steps outside the
    ``[start_percent, end_percent]`` window and step 0 are always full; any other step is full
    when ``interval`` steps have passed since the last full step.
    """

    interval: int
    warmup_steps: int
    tail_steps: int
    start_percent: float
    end_percent: float

    def validate(self) -> None:
        """Raise ``ValueError`` with an actionable message for an invalid setting."""
        if self.interval < 1:
            raise ValueError(f"interval ({self.interval}) must be >= 1: 1 computes every step")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be >= 0")
        if self.tail_steps < 0:
            raise ValueError(f"tail_steps ({self.tail_steps}) must be >= 0")
        for name, value in (("start_percent", self.start_percent), ("end_percent", self.end_percent)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} ({value}) must be between 0 and 1")
        if self.start_percent > self.end_percent:
            raise ValueError(
                f"start_percent ({self.start_percent}) is after end_percent ({self.end_percent}): "
                "set start_percent <= end_percent"
            )

    def plan(self, num_steps: int, in_window: Sequence[bool]) -> StepPlan:
        """Plan ``num_steps`` steps; ``in_window[i]`` says whether step ``i`` is inside the window.

        Returns an all-full plan with a ``note`` when ``warmup_steps + tail_steps >= num_steps``.
        """
        self.validate()
        if num_steps < 1:
            raise ValueError(f"num_steps ({num_steps}) must be >= 1")
        if len(in_window) != num_steps:
            raise ValueError(f"in_window has {len(in_window)} entries for {num_steps} steps")
        if self.warmup_steps + self.tail_steps >= num_steps:
            return StepPlan(
                full=(True,) * num_steps,
                note=(
                    f"warmup_steps ({self.warmup_steps}) + tail_steps ({self.tail_steps}) >= "
                    f"{num_steps} steps: every step is computed"
                ),
            )
        full: list[bool] = []
        last_full = 0
        for i in range(num_steps):
            is_full = (
                i == 0
                or i < self.warmup_steps
                or i >= num_steps - self.tail_steps
                or not in_window[i]
                or i - last_full >= self.interval
            )
            if is_full:
                last_full = i
            full.append(is_full)
        return StepPlan(full=tuple(full))


def window_flags(step_sigmas: Sequence[float], start_sigma: float, end_sigma: float) -> tuple[bool, ...]:
    """Per step ``i`` in ``0..n-1`` (``n + 1`` sigmas): ``end_sigma < step_sigmas[i] <= start_sigma``.

    ``start_sigma`` is the larger sigma (ComfyUI ``model_sampling.percent_to_sigma(start_percent)``).
    """
    return tuple(end_sigma < s <= start_sigma for s in step_sigmas[:-1])
