"""StepController: one answer (mode, reason) per call from its evidence, every reason reachable, the strings the
logs and reports carry kept."""

from __future__ import annotations

import json

import pytest

from taylor_core import (
    FALLBACK_REASONS,
    ConfidenceGate,
    Decision,
    Evidence,
    GatePolicy,
    Mode,
    PlannedSteps,
    Reason,
    SpeedupSchedule,
    StepController,
    StepPlan,
)
from taylor_core.pacing import BudgetPacer, Pace

PLAN = StepPlan((True, False, False))  # step 0 full by schedule, steps 1-2 forecast by schedule
TRUSTING = ConfidenceGate(1e9, 0)
FORECAST, FULL = Decision(Mode.FORECAST, Reason.GATE), Decision(Mode.FULL, Reason.GATE)


class FixedPace:
    """A pacer that answers ``pace`` at every step (the controller's view of ``BudgetPacer``)."""

    def __init__(self, pace: Pace) -> None:
        self.answer = pace

    def pace(self, step: int) -> Pace:
        return self.answer

    def note(self, step: int, full: bool) -> None:
        return None


def controller(gate: ConfidenceGate | None = None, consecutive: int = 0, pace: Pace | None = None) -> StepController:
    policy = GatePolicy(gate, FixedPace(pace) if pace is not None else None) if gate is not None else None
    if policy is not None:
        policy.consecutive_forecasts = consecutive
    return StepController(PlannedSteps(PLAN), policy)


CAPPED = ConfidenceGate(1e9, 2)


@pytest.mark.parametrize(("step", "gate", "consecutive", "evidence", "mode", "reason"), [
    (0, None, 0, Evidence(), Mode.FULL, Reason.SCHEDULE),
    (1, None, 0, Evidence(), Mode.FORECAST, Reason.SCHEDULE),
    (7, None, 0, Evidence(), Mode.FULL, Reason.SCHEDULE),  # outside the plan: full
    (1, None, 0, Evidence(Reason.NO_HISTORY), Mode.FULL, Reason.NO_HISTORY),
    (1, None, 0, Evidence(Reason.SHAPE_CHANGE), Mode.FULL, Reason.SHAPE_CHANGE),
    (1, None, 0, Evidence(repeat_call=True), Mode.FULL, Reason.REPEAT_CALL),
    (0, None, 0, Evidence(Reason.NO_HISTORY, repeat_call=True), Mode.FULL, Reason.REPEAT_CALL),
    (0, TRUSTING, 0, Evidence(), Mode.FULL, Reason.SCHEDULE),  # forced steps beat the gate
    (1, TRUSTING, 0, Evidence(), Mode.GATE, Reason.GATE),
    (1, CAPPED, 2, Evidence(), Mode.FULL, Reason.CAP),
    (1, CAPPED, 2, Evidence(Reason.NO_HISTORY), Mode.FULL, Reason.CAP),  # cap checked first
    (1, CAPPED, 1, Evidence(Reason.NO_HISTORY), Mode.FULL, Reason.NO_HISTORY),
    (2, None, 5, Evidence(), Mode.FORECAST, Reason.SCHEDULE),  # the cap is the gate's only
    # a call following its evaluation's decision: the decision, unless this call lacks history
    (1, TRUSTING, 0, Evidence(leader=FORECAST), Mode.FORECAST, Reason.GATE),
    (1, TRUSTING, 0, Evidence(Reason.NO_HISTORY, leader=FULL), Mode.FULL, Reason.GATE),
    (1, TRUSTING, 0, Evidence(Reason.SHAPE_CHANGE, leader=FORECAST), Mode.FULL, Reason.SHAPE_CHANGE),
    (1, TRUSTING, 0, Evidence(repeat_call=True, leader=FORECAST), Mode.FULL, Reason.REPEAT_CALL),
])
def test_decide(step, gate, consecutive, evidence, mode, reason):
    decision = controller(gate, consecutive).decide(step, evidence)
    assert (decision.mode, decision.reason) == (mode, reason)
    assert decision.full == (mode == "full")


def test_verdict_fallback_and_stop():
    gated = StepController(PlannedSteps(PLAN), GatePolicy(ConfidenceGate(0.1, 0, "accumulated")))
    assert gated.verdict(0.04) == (FORECAST, 0.04)
    assert gated.verdict(0.04) == (FORECAST, 0.08)  # the error budget carries the run of forecasts
    assert gated.verdict(0.04)[0] == FULL
    for reason in (Reason.NON_FINITE, Reason.SHAPE_CHANGE, Reason.ADAPTER_MISMATCH, Reason.NO_CHEAP_PATH,
                   Reason.NO_PROBE):
        assert gated.fallback(reason) == Decision(Mode.FULL, reason)
    gated.stop()
    assert gated.decide(1, Evidence(repeat_call=True)) == Decision(Mode.FULL, Reason.STOPPED)


def test_observe_drives_the_cap_and_the_error_budget():
    gated = StepController(PlannedSteps(StepPlan((True,) + (False,) * 5)),
                           GatePolicy(ConfidenceGate(0.1, 2, "accumulated")))
    gated.observe(0, True)
    assert gated.decide(1).mode is Mode.GATE
    assert gated.verdict(0.06)[0] == FORECAST
    gated.observe(1, False)
    assert gated.verdict(0.06)[0] == FULL  # 0.12: the budget is spent
    gated.observe(2, True)
    assert gated.verdict(0.06) == (FORECAST, 0.06)  # a full step starts a new budget
    gated.observe(3, False)
    gated.observe(4, False)
    assert gated.decide(5) == Decision(Mode.FULL, Reason.CAP)


def test_every_reason_is_reachable():
    reached = {controller().decide(0).reason, controller().decide(1).reason,
               controller().decide(1, Evidence(Reason.NO_HISTORY)).reason,
               controller().decide(1, Evidence(Reason.SHAPE_CHANGE)).reason,
               controller().decide(1, Evidence(repeat_call=True)).reason, controller(TRUSTING).decide(1).reason,
               controller(CAPPED, 2).decide(1).reason, controller(TRUSTING, pace=Pace.MUST).decide(1).reason}
    reached |= {controller().fallback(r).reason for r in (Reason.NON_FINITE, Reason.ADAPTER_MISMATCH,
                                                          Reason.NO_CHEAP_PATH, Reason.NO_PROBE)}
    stopped = controller()
    stopped.stop()
    reached.add(stopped.decide(1).reason)
    assert reached == set(Reason)
    gated = controller(TRUSTING)
    modes = {gated.decide(1).mode, gated.verdict(0.0)[0].mode, gated.decide(0).mode}
    assert modes == set(Mode)


def test_values_are_the_logged_strings():
    assert [str(m) for m in Mode] == ["full", "forecast", "gate"]
    assert {str(r) for r in Reason} == {"schedule", "gate", "cap", "no-history", "repeat-call", "non-finite",
                                         "shape-change", "adapter-mismatch", "no-cheap-path", "budget",
                                         "no-probe", "stopped"}
    assert Reason.CAP == "cap" and f"{Reason.NO_HISTORY}" == "no-history" and f"{Mode.FULL:>6}" == "  full"
    assert json.dumps({"mode": Mode.GATE, "reason": Reason.REPEAT_CALL}) == '{"mode": "gate", "reason": "repeat-call"}'
    assert "no-history" in {Reason.NO_HISTORY} and {Reason.CAP: 1}["cap"] == 1  # hash as the string
    assert FALLBACK_REASONS == {"no-history", "non-finite", "shape-change", "no-cheap-path"}


def test_unknown_fallback_reason_is_rejected():
    with pytest.raises(ValueError):
        controller().fallback("oops")


@pytest.mark.parametrize("pace, history, mode", [(Pace.MUST, None, Mode.FULL),
                                                 (Pace.MUST, Reason.NO_HISTORY, Mode.FULL),
                                                 (Pace.MAY_NOT, None, Mode.FORECAST),
                                                 (Pace.MAY_NOT, Reason.NO_HISTORY, Mode.FULL),
                                                 (Pace.FREE, None, Mode.GATE)])
def test_budget_pace_decides_before_the_cap_and_the_gate(pace, history, mode):
    capped = pace is not Pace.FREE
    answer = controller(CAPPED, 2 if capped else 0, pace).decide(1, Evidence(history))
    assert answer.mode is mode
    if capped:
        assert answer.reason is (Reason.BUDGET if history is None or pace is Pace.MUST else Reason.NO_HISTORY)
    # the plan's forced steps and a repeated call still come first
    assert controller(TRUSTING, pace=Pace.MAY_NOT).decide(0).reason is Reason.SCHEDULE
    assert controller(TRUSTING, pace=Pace.MAY_NOT).decide(1, Evidence(repeat_call=True)).mode is Mode.FULL


def test_planned_controller_paces_the_speedup_budget():
    """``StepController.planned``: the gate's forced steps as the step policy and a pacer of the speed-up budget
    spending exactly the budget's full steps whatever the probe answers."""
    steps = 20
    forced = StepPlan(tuple(i < 2 or i == steps - 1 for i in range(steps)))
    budget = SpeedupSchedule(4.0, 2, 1, 0.0, 1.0).plan(steps, [True] * steps)
    run = StepController.planned(forced, TRUSTING, budget)
    assert isinstance(run.gate.pacer, BudgetPacer)
    full = []
    for step in range(steps):
        decision = run.decide(step)
        if decision.mode is Mode.GATE:
            decision = run.verdict(0.0)[0]  # the probe always trusts the forecast
        run.observe(step, decision.full)
        full.append(decision.full)
    assert sum(full) == budget.full_count
    assert StepController.planned(forced, None, budget).gate is None
