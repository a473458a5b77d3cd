"""The one decision per model evaluation: compute it in full, forecast it, or let the confidence gate decide.

``decide`` is pure: the caller gathers the evidence (the step's plan, the gate's state and verdict, whether
every feature has history, whether this call repeats one already made, whether a forecast failed) and carries
out the answer. The enums are ``str``-valued: ``Mode.FULL == "full"``, ``str(Reason.CAP) == "cap"``, so logs,
run statistics and JSON keep today's strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .pacing import Pace
from .schedule import StepPlan


class _Name(str, Enum):
    """A ``str`` enum that prints, formats and hashes as its value on every Python version (so ``"cap"`` finds
    ``Reason.CAP`` in a set or dict)."""

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Mode(_Name):
    FULL = "full"
    FORECAST = "forecast"
    GATE = "gate"
    """Forecast only if the gate's probe agrees (decided at the first block)."""


class Reason(_Name):
    SCHEDULE = "schedule"
    """The step plan (interval or speed-up budget; forced warm-up/tail/window steps included) says so."""
    GATE = "gate"
    """The confidence gate decides, or decided (its verdict)."""
    BUDGET = "budget"
    """The gate's speed-up budget decides (spent, or its full steps must be spent now: ``pacing.Pace``)."""
    CAP = "cap"
    """The gate's cap on consecutive forecasts is reached."""
    NO_HISTORY = "no-history"
    """A feature to forecast has no anchor under this call's signature yet."""
    REPEAT_CALL = "repeat-call"
    """A second call for the same cond in one evaluation (e.g. skip-layer guidance): computed, not recorded."""
    NON_FINITE = "non-finite"
    """A forecast came out NaN/inf: the call is redone in full."""
    SHAPE_CHANGE = "shape-change"
    """A forecast's shape differs from what the call needs."""
    ADAPTER_MISMATCH = "adapter-mismatch"
    """The model's blocks do not run as the family adapter says."""
    NO_PROBE = "no-probe"
    """A gated call ended before the gate's probe ran (its verdict is then full)."""
    STOPPED = "stopped"
    """Forecasting stopped for the rest of the run after a failure of the pack's own code."""


FALLBACKS = frozenset({Reason.NO_HISTORY, Reason.NON_FINITE, Reason.SHAPE_CHANGE})
"""Reasons that mark a full compute forced by a failed or impossible forecast (``stats.FALLBACK_REASONS``)."""


@dataclass(frozen=True)
class Decision:
    mode: Mode
    reason: Reason

    @property
    def full(self) -> bool:
        return self.mode is Mode.FULL


def fall_back(reason: Reason | str) -> Decision:
    """A full compute forced by ``reason`` (a forecast that failed or cannot run, or forecasting stopped)."""
    return Decision(Mode.FULL, Reason(reason))


def decide(step: int, plan: StepPlan, *, gated: bool = False, capped: bool = False,
           verdict: bool | None = None, history_ready: bool = True, repeat_call: bool = False,
           fallback: Reason | None = None, pace: Pace | None = None) -> Decision:
    """What evaluation ``step`` (a sampling-step index) does, first match wins:

    1. ``repeat_call`` -> full, REPEAT_CALL; 2. ``fallback`` (a reason a forecast failed) -> full, that reason;
    3. ``plan`` says full -> full, SCHEDULE; 4. ungated: no history -> full, NO_HISTORY, else forecast, SCHEDULE;
    5. gated (``gated``): the budget's ``pace`` MUST -> full, BUDGET, MAY_NOT -> forecast, BUDGET (full,
    NO_HISTORY without history); ``capped`` -> full, CAP; no history -> full, NO_HISTORY; no ``verdict`` yet ->
    GATE; else forecast or full by the verdict, GATE.
    """
    if repeat_call:
        return Decision(Mode.FULL, Reason.REPEAT_CALL)
    if fallback is not None:
        return fall_back(fallback)
    if plan.is_full(step):
        return Decision(Mode.FULL, Reason.SCHEDULE)
    if not gated:
        return Decision(Mode.FORECAST, Reason.SCHEDULE) if history_ready else Decision(Mode.FULL, Reason.NO_HISTORY)
    if pace is Pace.MUST:
        return Decision(Mode.FULL, Reason.BUDGET)
    if pace is Pace.MAY_NOT:
        return Decision(Mode.FORECAST, Reason.BUDGET) if history_ready else Decision(Mode.FULL, Reason.NO_HISTORY)
    if capped:
        return Decision(Mode.FULL, Reason.CAP)
    if not history_ready:
        return Decision(Mode.FULL, Reason.NO_HISTORY)
    if verdict is None:
        return Decision(Mode.GATE, Reason.GATE)
    return Decision(Mode.FORECAST if verdict else Mode.FULL, Reason.GATE)
