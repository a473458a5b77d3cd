"""The step controller: every decision about a sampling run's model calls, fall-backs included, with its reason.

One ``StepController`` per sampling run, owned by the run's state (``nodes/run_state.py``), which guards it with
its lock (the controller is not thread-safe by itself). Units: steps are sampling-step indices ``0..n-1``.

Evidence enters it in four calls, and its answers (``decision.Decision``) leave it from there:

- ``decide(step, evidence)`` before a call runs: what the call does (``Evidence``: history, repeat, the
  evaluation's decision for the calls that follow its first);
- ``verdict(probe_error)`` when a gated call's probe ran: forecast or full, and the score the gate compared;
- ``fallback(reason)`` when a forecast failed or could not run: the full compute that replaces it;
- ``observe(step, full, error)`` after an evaluation's deciding call: what happened, for the policies.

Policies. The controller owns one step policy and, on a gated run, a ``GatePolicy``. A step policy says, before
any evidence of the step, whether the step is computed in full, and learns from what happened::

    class StepPolicy(Protocol):
        def is_full(self, step: int) -> bool: ...
        def observe(self, step: int, full: bool, error: float | None) -> None: ...

``PlannedSteps`` (a fixed ``StepPlan``: an interval, a speed-up budget, or the gate's forced steps) is one. An
adaptive policy that reads the forecast error measured at full steps (``error``, None where the runtime measured
none) and places the next full step online is another: pass it as ``policy``. ``GatePolicy`` decides the steps
the step policy leaves free: the speed-up budget's pacer first (``BudgetPacer``), then the cap on consecutive
forecasts, then the probe, scored against the gate's error budget (``ErrorBudget``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .decision import Decision, Mode, Reason
from .gate import ConfidenceGate, ErrorBudget
from .pacing import BudgetPacer, Pace
from .schedule import StepPlan


class StepPolicy(Protocol):
    """Whether a step is computed in full before any evidence of it; told what each step did."""

    def is_full(self, step: int) -> bool: ...

    def observe(self, step: int, full: bool, error: float | None) -> None: ...


@dataclass(frozen=True)
class PlannedSteps:
    """A step policy that follows a fixed plan (steps outside it are full) and learns nothing."""

    plan: StepPlan

    def is_full(self, step: int) -> bool:
        return self.plan.is_full(step)

    def observe(self, step: int, full: bool, error: float | None) -> None:
        return None


class GatePolicy:
    """The confidence gate's policy over the steps the step policy leaves free: the speed-up budget's ``pacer``
    (None without a budget), the cap on consecutive forecasts and the error budget of the probe's scores."""

    def __init__(self, gate: ConfidenceGate, pacer: BudgetPacer | None = None) -> None:
        self.gate = gate
        self.pacer = pacer
        self.error_budget = ErrorBudget(gate)
        self.consecutive_forecasts = 0

    def decide(self, step: int, history: Reason | None) -> Decision:
        """Free step ``step``: the pacer's MUST / MAY_NOT, else the cap, else the probe (GATE); a forecast
        without history (``history`` says why) is a full compute."""
        pace = self.pacer.pace(step) if self.pacer is not None else None
        if pace is Pace.MUST:
            return Decision(Mode.FULL, Reason.BUDGET)
        if pace is Pace.MAY_NOT:
            return Decision(Mode.FORECAST, Reason.BUDGET) if history is None else Decision(Mode.FULL, history)
        if self.gate.capped(self.consecutive_forecasts):
            return Decision(Mode.FULL, Reason.CAP)
        if history is not None:
            return Decision(Mode.FULL, history)
        return Decision(Mode.GATE, Reason.GATE)

    def verdict(self, probe_error: float) -> tuple[bool, float]:
        """(whether to forecast, the score compared with the threshold) for the probe's relative L1 error."""
        return self.error_budget.verdict(probe_error)

    def observe(self, step: int, full: bool) -> None:
        self.consecutive_forecasts = 0 if full else self.consecutive_forecasts + 1
        if full:
            self.error_budget.reset()
        if self.pacer is not None:
            self.pacer.note(step, full)


@dataclass(frozen=True)
class Evidence:
    """What the runtime knows of one call before it runs.

    ``history``: None when every feature the call would forecast has history under the call's shapes, else why
    not (``NO_HISTORY`` or ``SHAPE_CHANGE``). ``repeat_call``: the call repeats a cond its evaluation already
    ran. ``leader``: the evaluation's final decision, for every call but the evaluation's first."""

    history: Reason | None = None
    repeat_call: bool = False
    leader: Decision | None = None


class StepController:
    """Decides every call of one run (see the module docstring); ``policy`` is the step policy, ``gate`` the
    gate's policy on a gated run (None otherwise)."""

    def __init__(self, policy: StepPolicy, gate: GatePolicy | None = None) -> None:
        self.policy = policy
        self.gate = gate
        self.stopped = False

    @classmethod
    def planned(cls, plan: StepPlan, gate: ConfidenceGate | None = None,
                speedup_plan: StepPlan | None = None) -> StepController:
        """A controller that follows ``plan`` (on a gated run: its forced steps), gated by ``gate`` when given,
        the gate pacing the speed-up budget ``speedup_plan`` when given."""
        pacer = BudgetPacer(speedup_plan.full, plan.full) if gate is not None and speedup_plan is not None else None
        return cls(PlannedSteps(plan), GatePolicy(gate, pacer) if gate is not None else None)

    @property
    def gated(self) -> bool:
        return self.gate is not None

    def decide(self, step: int, evidence: Evidence | None = None) -> Decision:
        """The call's decision, first match wins: forecasting stopped; a repeated call; a call following its
        evaluation's decision (full without history); the step policy's full step; the gate's policy; a
        forecast by schedule (full without history)."""
        evidence = evidence if evidence is not None else Evidence()
        if self.stopped:
            return Decision(Mode.FULL, Reason.STOPPED)
        if evidence.repeat_call:
            return Decision(Mode.FULL, Reason.REPEAT_CALL)
        leader = evidence.leader
        if leader is not None:
            return leader if leader.full or evidence.history is None else self.fallback(evidence.history)
        if self.policy.is_full(step):
            return Decision(Mode.FULL, Reason.SCHEDULE)
        if self.gate is not None:
            return self.gate.decide(step, evidence.history)
        return Decision(Mode.FORECAST, Reason.SCHEDULE) if evidence.history is None else self.fallback(evidence.history)

    def verdict(self, probe_error: float) -> tuple[Decision, float]:
        """A gated call's final decision from its probe's relative L1 error, and the score the gate compared."""
        forecast, score = self.gate.verdict(probe_error)
        return Decision(Mode.FORECAST if forecast else Mode.FULL, Reason.GATE), score

    def fallback(self, reason: Reason | str) -> Decision:
        """The full compute that replaces a forecast that failed or could not run, for ``reason``."""
        return Decision(Mode.FULL, Reason(reason))

    def observe(self, step: int, full: bool, error: float | None = None) -> None:
        """What an evaluation's deciding call did at ``step`` (``error``: the probe's, where measured)."""
        self.policy.observe(step, full, error)
        if self.gate is not None:
            self.gate.observe(step, full)

    def stop(self) -> None:
        """Every later call is a full compute (``Reason.STOPPED``): forecasting failed in the pack's own code."""
        self.stopped = True
