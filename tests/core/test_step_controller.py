"""The evidence (forecast errors of full steps, shared Newton anchors) and the step controller under a budget:
exact full-step counts whatever the evidence, the prior plan without evidence, gaps that follow the errors."""

from __future__ import annotations

import math
import random

import pytest
import torch

from taylor_core import NewtonPredictor, SpeedupSchedule, speedup_full_steps
from taylor_core.adaptive import MAX_SCALE, MIN_SCALE, AdaptiveBudget
from taylor_core.evidence import Evidence, forecast_errors, mean_errors
from taylor_core.predictors import AutoPredictor, FoCaPredictor


def forced_flags(steps: int, warmup: int, tail: int) -> list[bool]:
    return [i == 0 or i < warmup or i >= steps - tail for i in range(steps)]


def run(controller: AdaptiveBudget, errors=lambda step, horizon: {"a": 0.1}) -> list[bool]:
    """Every step decided in order, each full step observed with ``errors(step, horizon)``."""
    full, last = [], None
    for step in range(controller.num_steps):
        full.append(controller.is_full(step))
        assert controller.is_full(step) == full[-1]  # a second evaluation of the step gets the same answer
        if full[-1]:
            if last is not None:
                controller.observe_errors(step, errors(step, step - last))
            last = step
    return full


@pytest.mark.parametrize("steps", [4, 10, 20, 30, 50])
@pytest.mark.parametrize("target", [1.0, 1.5, 2.0, 2.5, 3.0, 3.75, 5.0, 6.0, 20.0])
@pytest.mark.parametrize(("warmup", "tail"), [(0, 0), (1, 1), (3, 1)])
def test_without_evidence_it_is_the_budget_plan(steps, target, warmup, tail):
    forced = forced_flags(steps, warmup, tail)
    plan = SpeedupSchedule(target, warmup, tail, 0.0, 1.0).plan(steps, [True] * steps)
    controller = AdaptiveBudget(steps, forced, target)
    assert [controller.is_full(i) for i in range(steps)] == list(plan.full)


@pytest.mark.parametrize("seed", range(40))
def test_any_evidence_spends_exactly_the_budget(seed):
    rng = random.Random(seed)
    steps, target = rng.choice([10, 20, 30, 50]), rng.choice([1.5, 2.0, 2.5, 3.0, 3.75, 4.3, 5.0, 6.0])
    warmup, tail = rng.choice([(1, 1), (0, 0), (3, 1), (2, 2)])
    forced = forced_flags(steps, warmup, tail)
    controller = AdaptiveBudget(steps, forced, target, growth=rng.choice([0.5, 1.0, 2.0]))
    full = run(controller, lambda step, horizon: {"a": rng.choice([0.0, 1e-6, 0.01, 0.3, 5.0, math.inf]),
                                                 "b": rng.random()})
    want = max(speedup_full_steps(steps, target), sum(forced))
    assert sum(full) == want
    assert all(f for f, must in zip(full, forced) if must)


def test_the_gap_grows_after_a_small_error_and_keeps_the_plan_after_a_large_one():
    steps, target = 30, 3.0
    forced = forced_flags(steps, 1, 1)
    nominal = AdaptiveBudget(steps, forced, target)
    for step in range(5):
        nominal.is_full(step)  # steps 0 and 4 full, as planned
    assert nominal.next_full == 8
    gaps = {}
    for later in (1e-4, 1.0):  # the error at step 4, against 0.01 at the same horizon before
        controller = AdaptiveBudget(steps, forced, target, smoothing=0.0)
        run_to = [controller.is_full(i) for i in range(5)]
        assert run_to == [True, False, False, False, True]
        controller._reference = math.log(0.01) - 2 * math.log(4.0)  # as if an earlier step had shown 0.01 at 4
        controller.observe_errors(4, {"a": later})
        gaps[later] = controller.next_full - 4
    assert gaps[1e-4] == round(4 * MAX_SCALE) and gaps[1.0] == round(4 * MIN_SCALE)


def test_first_evidence_keeps_the_plan_and_scores_choose_the_predictor():
    controller = AdaptiveBudget(20, forced_flags(20, 1, 1), 2.0, smoothing=0.5)
    run(controller, lambda step, horizon: {"newton": 0.2, "foca": 0.1 if step < 6 else 0.5})
    assert controller.choice == "newton"
    assert controller.evidence[0].best() == "foca" and controller.evidence[-1].best() == "newton"
    assert all(e.horizon >= 1 for e in controller.evidence)


def test_evidence_needs_a_full_step_and_counts_once():
    controller = AdaptiveBudget(12, forced_flags(12, 1, 1), 3.0)
    controller.observe_errors(0, {"a": 0.1})  # not decided yet
    assert controller.evidence == []
    assert controller.is_full(0) and not controller.is_full(1)
    controller.observe_errors(1, {"a": 0.1})  # a forecast step carries no evidence
    assert controller.evidence == []
    assert controller.is_full(99) and controller.is_full(-1)


def test_evidence_record():
    assert Evidence(3, 2.0, {"a": 0.2, "b": 0.1, "c": math.inf}).best() == "b"
    assert Evidence(3, 2.0, {"a": 0.1, "b": 0.1}).best() == "a"
    assert Evidence(3, 2.0, {"a": math.inf}).best() is None and Evidence(3, 2.0).error() == math.inf
    assert Evidence(3, 2.0, {"a": 0.2, "b": 0.1}).error("a") == 0.2
    assert mean_errors([{"a": 0.2, "b": 0.4}, {"a": 0.4}, {}]) == pytest.approx({"a": 0.3, "b": 0.4})


def test_forecast_errors_skip_empty_candidates_and_match_auto():
    line = [torch.full((2, 3), 1.0 + 2.0 * t) for t in range(4)]
    newton, foca, empty = NewtonPredictor(1), FoCaPredictor(1), NewtonPredictor(1)
    auto = AutoPredictor(1)
    for t in range(3):
        for p in (newton, foca, auto):
            p.update(float(t), line[t])
    errors = forecast_errors({"newton": newton, "foca": foca, "empty": empty}, 3.0, line[3])
    assert set(errors) == {"newton", "foca"} and errors["newton"] < 1e-6
    auto.update(3.0, line[3])
    assert auto.last_errors == pytest.approx({k: errors[k] for k in auto.names}, abs=1e-6)
