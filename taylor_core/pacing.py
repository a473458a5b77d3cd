"""A speed-up budget for the confidence gate: the gate places the budget's full steps, the pacer keeps the count.

The budget's plan (``SpeedupSchedule``) says how many full steps the run spends and roughly where; the gate's probe
runs each compute early (the probe distrusts a forecast) or late (the probe trusts it), at most ``slack`` steps from
where the plan has it. Units: sampling-step indices; a step counts once however many
evaluations it has (all of them full or none). Owned by one run's state; not
thread-safe by itself (the run's lock guards it).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

DEFAULT_SLACK = 2


class Pace(str, Enum):
    """What the budget allows at a step that is not forced full."""

    MUST = "must"
    """Computed: the next compute is ``slack`` steps late, or the steps left would not hold the computes left."""
    MAY_NOT = "may-not"
    """Forecast: the budget is spent, or the next compute would run more than ``slack`` steps early."""
    FREE = "free"
    """The gate decides."""


class BudgetPacer:
    """``planned[i]``: step ``i`` is full in the budget's plan; ``forced[i]``: step ``i`` is always full (step 0,
    warm-up, tail, outside the window). The ``j``-th free full step runs within ``slack`` steps of the plan's
    ``j``-th (``slack`` >= 1), and exactly the plan's number of free full steps run, whatever the gate answers
    (where the steps left would not hold them, the pacer computes at once)."""

    def __init__(self, planned: Sequence[bool], forced: Sequence[bool], slack: int = DEFAULT_SLACK) -> None:
        if len(planned) != len(forced):
            raise ValueError(f"planned has {len(planned)} steps, forced {len(forced)}")
        if slack < 1:
            raise ValueError(f"slack ({slack}) must be >= 1")
        self.free = [not f for f in forced]
        self.targets = [i for i, (p, f) in enumerate(zip(planned, forced)) if p and not f]
        """The plan's free full steps, in order: where the budget's computes belong."""
        self.slack = slack
        self.budget = len(self.targets)
        self.done: dict[int, bool] = {}  # free step -> computed in full (its first evaluation decided it)

    def pace(self, step: int) -> Pace:
        """What the budget allows at free step ``step`` (a step already decided keeps its answer)."""
        if step in self.done:
            return Pace.MUST if self.done[step] else Pace.MAY_NOT
        spent = sum(full for i, full in self.done.items() if i < step)
        if spent >= self.budget:
            return Pace.MAY_NOT
        target = self.targets[spent]  # where the next compute belongs
        if step >= target + self.slack or self.budget - spent > sum(self.free[step + 1:]):
            return Pace.MUST  # it is due, or the steps left would not hold the computes left
        if step < target - self.slack:
            return Pace.MAY_NOT  # too early for it
        return Pace.FREE

    def note(self, step: int, full: bool) -> None:
        """The decision of free step ``step`` (its first evaluation's; later ones follow it)."""
        if 0 <= step < len(self.free) and self.free[step]:
            self.done.setdefault(step, full)

    def spent(self) -> int:
        """Free steps computed so far."""
        return sum(self.done.values())
