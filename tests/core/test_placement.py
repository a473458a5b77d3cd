"""The fitted placement (``taylor_core/placement.py``): the stretch costs are the real predictor's weighted errors,
the dynamic programme finds the least-cost plan of every plan of small runs (checked against all of them), spends
exactly the budget with every forced step, and the sensitivity weights interpolate the measured gains."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from taylor_core.calibration import FITTED_CANDIDATE, Candidate, fitted_candidate, with_candidate
from taylor_core.placement import (
    MAX_FITTED_STEPS,
    fitted_full_steps,
    probe_steps,
    sensitivity_weights,
    stretch_costs,
)
from taylor_core.predictors import NewtonPredictor


def trajectory(n: int, seed: int, shape=(3, 5)) -> tuple[list[torch.Tensor], list[float], list[float]]:
    """A smooth random trajectory with a kink, its step clock and random positive weights."""
    gen = torch.Generator().manual_seed(seed)
    base, slope, curve = (torch.randn(shape, generator=gen) for _ in range(3))
    kink = int(torch.randint(1, n, (1,), generator=gen))
    features = [base + slope * i + curve * (0.1 * i * i + (i >= kink) * (i - kink)) for i in range(n)]
    weights = (torch.rand(n, generator=gen) + 0.1).tolist()
    return features, [float(i) for i in range(n)], weights


def plan_cost(features, times, weights, steps) -> float:
    """The plan's weighted squared error, each forecast made by the real NewtonPredictor of order 1."""
    predictor, total = NewtonPredictor(1, torch.float64), 0.0
    for j, value in enumerate(features):
        if j in steps:
            predictor.update(times[j], value.double())
        else:
            total += weights[j] * float(torch.mean((predictor.predict(times[j]) - value.double()) ** 2))
    return total


def test_stretch_costs_are_the_predictors_weighted_errors():
    features, times, weights = trajectory(9, seed=1)
    times = [1.0 - 0.09 * i - 0.004 * i * i for i in range(9)]  # an irregular, decreasing clock (sigma)
    cost = stretch_costs(features, times, weights)
    assert cost.shape == (10, 9, 10)
    for a, b, c in [(0, 3, 7), (2, 4, 9), (9, 0, 5), (9, 5, 9), (1, 2, 3)]:
        predictor = NewtonPredictor(1, torch.float64)
        for anchor in ([a] if a < 9 else []) + [b]:
            predictor.update(times[anchor], features[anchor].double())
        expected = sum(weights[j] * float(torch.mean((predictor.predict(times[j]) - features[j].double()) ** 2))
                       for j in range(b + 1, c))
        assert cost[a, b, c].item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert math.isinf(cost[4, 3, 6]) and math.isinf(cost[0, 3, 3]) and math.isinf(cost[0, 0, 4])


@pytest.mark.parametrize("seed", range(6))
def test_the_fitted_plan_is_the_least_cost_plan_of_its_count(seed):
    n = 9
    features, times, weights = trajectory(n, seed)
    forced = [i == 0 or i == n - 1 or (seed % 3 == 0 and i == 4) for i in range(n)]
    cost = stretch_costs(features, times, weights)
    for budget in range(sum(forced), n + 1):
        steps = fitted_full_steps(cost, forced, budget)
        free = [i for i in range(n) if not forced[i]]
        plans = [tuple(sorted({i for i in range(n) if forced[i]} | set(extra)))
                 for extra in itertools.combinations(free, budget - sum(forced))]
        best = min(plan_cost(features, times, weights, set(p)) for p in plans)
        assert steps is not None and len(steps) == budget and steps[0] == 0
        assert all(s in steps for s in range(n) if forced[s])
        assert plan_cost(features, times, weights, set(steps)) == pytest.approx(best, rel=1e-9, abs=1e-12)


def test_no_plan_when_the_forced_steps_exceed_the_budget_or_step_0_is_free():
    cost = stretch_costs(*trajectory(6, seed=0))
    assert fitted_full_steps(cost, [True, False, True, False, False, True], 2) is None
    assert fitted_full_steps(cost, [False, False, False, False, False, True], 3) is None
    assert fitted_full_steps(cost, [True] + [False] * 5, 1) == (0,)


def test_weights_interpolate_the_measured_gains_in_log():
    sizes = [-0.5] * 7
    weights = sensitivity_weights({2: 1.0, 6: 16.0}, sizes)
    gains = [math.sqrt(w) / 0.5 for w in weights]
    assert gains == pytest.approx([1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 16.0])
    assert sensitivity_weights({}, [0.1, -0.2]) == pytest.approx([0.01, 0.04])


def test_probe_steps_are_distinct_free_steps():
    forced = [True, True, False, False, False, False, False, False, True]
    assert probe_steps(forced, 4) == (2, 4, 5, 7)
    assert probe_steps(forced, 10) == (2, 3, 4, 5, 6, 7)
    assert probe_steps([True, True], 3) == ()


def test_the_fitted_candidate_is_newton_order_1_and_joins_only_a_new_plan():
    features, times, weights = trajectory(10, seed=3)
    forced = [i in (0, 9) for i in range(10)]
    candidate = fitted_candidate(features, times, [-0.1] * 10, {3: 2.0}, forced, 4)
    assert candidate is not None and candidate.name == FITTED_CANDIDATE
    assert (candidate.forecaster, candidate.max_order, len(candidate.full_steps)) == ("newton", 1, 4)
    same = Candidate("newton1/even", "newton", 1, candidate.full_steps)
    assert with_candidate([same], candidate) == [same]
    other = Candidate("newton1/even", "newton", 1, (0, 1, 2, 9))
    assert with_candidate([other], candidate) == ([other, candidate] if candidate.full_steps != other.full_steps
                                                  else [other])
    too_long = [features[0]] * (MAX_FITTED_STEPS + 1)
    assert fitted_candidate(too_long, list(range(len(too_long))), [-0.1] * len(too_long), {}, [True] * 2
                            + [False] * (len(too_long) - 2), 5) is None
