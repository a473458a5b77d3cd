"""BudgetPacer: whatever the gate answers, a gated budget spends exactly the plan's full steps, each within
``slack`` steps of where the plan has it."""

from __future__ import annotations

import random

import pytest

from taylor_core import SpeedupSchedule
from taylor_core.pacing import BudgetPacer, Pace
from taylor_core.schedule import forced_full


def run(pacer: BudgetPacer, forced: list[bool], gate) -> list[bool]:
    """Every step through the pacer; ``gate(step)`` answers FREE steps (True = compute)."""
    full = []
    for step, always in enumerate(forced):
        if always:
            full.append(True)
            continue
        pace = pacer.pace(step)
        answer = pace is Pace.MUST or (pace is Pace.FREE and gate(step))
        pacer.note(step, answer)
        full.append(answer)
    return full


@pytest.mark.parametrize("steps, speedup, warmup, slack", [(30, 3.0, 3, 2), (30, 5.0, 2, 1), (20, 2.5, 3, 3),
                                                           (50, 4.5, 3, 2), (12, 2.0, 1, 2)])
def test_exact_budget_and_slack_for_any_gate(steps, speedup, warmup, slack):
    window = [True] * steps
    plan = SpeedupSchedule(speedup, warmup, 1, 0.0, 1.0).plan(steps, window).full
    forced = list(forced_full(steps, warmup, 1, window))
    rng = random.Random(steps * 31 + slack)
    gates = [lambda s: True, lambda s: False] + [lambda s, p=p: rng.random() < p for p in (0.2, 0.5, 0.8)] * 4
    for gate in gates:
        pacer = BudgetPacer(plan, forced, slack)
        full = run(pacer, forced, gate)
        assert sum(full) == sum(plan)  # the budget, exactly
        ran = [i for i in range(steps) if full[i] and not forced[i]]
        targets = [i for i in range(steps) if plan[i] and not forced[i]]
        assert all(abs(a - b) <= slack for a, b in zip(ran, targets, strict=True))


def test_always_trusting_gate_runs_each_compute_slack_late_and_a_distrusting_one_early():
    steps, window = 30, [True] * 30
    plan = SpeedupSchedule(3.0, 3, 1, 0.0, 1.0).plan(steps, window).full
    forced = list(forced_full(steps, 3, 1, window))
    late = run(BudgetPacer(plan, forced, 1), forced, lambda s: False)
    early = run(BudgetPacer(plan, forced, 1), forced, lambda s: True)
    def free_fulls(full):
        return [i for i in range(steps) if full[i] and not forced[i]]

    planned = free_fulls(plan)
    assert free_fulls(late) == [i + 1 for i in planned]  # slack 1: each compute one step late, or one early
    assert free_fulls(early) == [i - 1 for i in planned]
    assert run(BudgetPacer(plan, forced, 1), forced, lambda s: plan[s]) == list(plan)  # a gate agreeing: the plan


def test_a_step_keeps_its_first_answer_for_its_later_evaluations():
    forced = [True, False, False, False, True]
    pacer = BudgetPacer([True, False, True, False, True], forced, 1)
    assert pacer.pace(1) is Pace.FREE  # one step before the plan's step 2
    pacer.note(1, False)
    assert pacer.pace(1) is Pace.MAY_NOT  # heun's second evaluation of step 1
    pacer.note(2, True)
    assert pacer.pace(2) is Pace.MUST and pacer.spent() == 1
    assert pacer.pace(3) is Pace.MAY_NOT  # the one free compute is spent


@pytest.mark.parametrize("kwargs", [{"planned": [True], "forced": [True, False]}, {"slack": 0}])
def test_bad_arguments(kwargs):
    args = {"planned": [True, False], "forced": [True, False], "slack": 2} | kwargs
    with pytest.raises(ValueError):
        BudgetPacer(**args)
