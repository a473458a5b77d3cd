"""decide(): one answer (mode, reason) per evaluation, every reason reachable, today's strings kept."""

from __future__ import annotations

import json

import pytest

from taylor_core import FALLBACK_REASONS, Mode, Reason, StepPlan, decide
from taylor_core.pacing import Pace

PLAN = StepPlan((True, False, False))  # step 0 full by schedule, steps 1-2 forecast by schedule


@pytest.mark.parametrize(("step", "kwargs", "mode", "reason"), [
    (0, {}, Mode.FULL, Reason.SCHEDULE),
    (1, {}, Mode.FORECAST, Reason.SCHEDULE),
    (7, {}, Mode.FULL, Reason.SCHEDULE),  # outside the plan: full
    (1, {"history_ready": False}, Mode.FULL, Reason.NO_HISTORY),
    (1, {"repeat_call": True}, Mode.FULL, Reason.REPEAT_CALL),
    (0, {"repeat_call": True, "fallback": Reason.NON_FINITE}, Mode.FULL, Reason.REPEAT_CALL),
    (1, {"fallback": Reason.NON_FINITE}, Mode.FULL, Reason.NON_FINITE),
    (1, {"fallback": "shape-change"}, Mode.FULL, Reason.SHAPE_CHANGE),
    (1, {"fallback": Reason.ADAPTER_MISMATCH, "gated": True}, Mode.FULL, Reason.ADAPTER_MISMATCH),
    (0, {"gated": True}, Mode.FULL, Reason.SCHEDULE),  # forced steps beat the gate
    (1, {"gated": True}, Mode.GATE, Reason.GATE),
    (1, {"gated": True, "verdict": True}, Mode.FORECAST, Reason.GATE),
    (1, {"gated": True, "verdict": False}, Mode.FULL, Reason.GATE),
    (1, {"gated": True, "capped": True, "verdict": True}, Mode.FULL, Reason.CAP),
    (1, {"gated": True, "capped": True, "history_ready": False}, Mode.FULL, Reason.CAP),  # cap checked first
    (1, {"gated": True, "history_ready": False}, Mode.FULL, Reason.NO_HISTORY),
    (2, {"gated": False, "capped": True}, Mode.FORECAST, Reason.SCHEDULE),  # the cap is the gate's only
])
def test_decide(step, kwargs, mode, reason):
    decision = decide(step, PLAN, **kwargs)
    assert (decision.mode, decision.reason) == (mode, reason)
    assert decision.full == (mode == "full")


def test_every_reason_is_reachable():
    reached = {decide(0, PLAN).reason, decide(1, PLAN).reason, decide(1, PLAN, history_ready=False).reason,
               decide(1, PLAN, repeat_call=True).reason, decide(1, PLAN, gated=True).reason,
               decide(1, PLAN, gated=True, capped=True).reason}
    reached |= {decide(1, PLAN, fallback=r).reason for r in (Reason.NON_FINITE, Reason.SHAPE_CHANGE,
                                                              Reason.ADAPTER_MISMATCH, Reason.NO_PROBE,
                                                              Reason.STOPPED)}
    reached |= {decide(1, PLAN, gated=True, pace=Pace.MUST).reason}
    assert reached == set(Reason)
    assert {decide(1, PLAN, gated=True, verdict=v).mode for v in (None, True, False)} | {Mode.FULL} == set(Mode)


def test_values_are_todays_strings():
    assert [str(m) for m in Mode] == ["full", "forecast", "gate"]
    assert {str(r) for r in Reason} == {"schedule", "gate", "cap", "no-history", "repeat-call", "non-finite",
                                         "shape-change", "adapter-mismatch", "budget", "no-probe", "stopped"}
    assert Reason.CAP == "cap" and f"{Reason.NO_HISTORY}" == "no-history" and f"{Mode.FULL:>6}" == "  full"
    assert json.dumps({"mode": Mode.GATE, "reason": Reason.REPEAT_CALL}) == '{"mode": "gate", "reason": "repeat-call"}'
    assert "no-history" in {Reason.NO_HISTORY} and {Reason.CAP: 1}["cap"] == 1  # hash as the string
    assert FALLBACK_REASONS == {"no-history", "non-finite", "shape-change"}


def test_unknown_fallback_reason_is_rejected():
    with pytest.raises(ValueError):
        decide(1, PLAN, fallback="oops")


@pytest.mark.parametrize("pace, history, mode", [(Pace.MUST, True, Mode.FULL), (Pace.MUST, False, Mode.FULL),
                                                 (Pace.MAY_NOT, True, Mode.FORECAST), (Pace.MAY_NOT, False, Mode.FULL),
                                                 (Pace.FREE, True, Mode.GATE)])
def test_budget_pace_decides_before_the_cap_and_the_gate(pace, history, mode):
    answer = decide(1, PLAN, gated=True, capped=pace is not Pace.FREE, history_ready=history, pace=pace)
    assert answer.mode is mode
    if pace is not Pace.FREE:
        assert answer.reason is (Reason.BUDGET if history or pace is Pace.MUST else Reason.NO_HISTORY)
    # the plan's forced steps and a fall-back still come first
    assert decide(0, PLAN, gated=True, pace=Pace.MAY_NOT).reason is Reason.SCHEDULE
    assert decide(1, PLAN, gated=True, pace=Pace.MAY_NOT, fallback=Reason.NON_FINITE).mode is Mode.FULL
