"""The confidence gate's rule: per-step errors or an error budget spent by each run of forecast steps."""

import random

import pytest
import torch

from taylor_core import ConfidenceGate, ErrorBudget, relative_l1


def run_gate(gate: ConfidenceGate, errors: list[float]) -> list[tuple[bool, float]]:
    budget = ErrorBudget(gate)
    return [budget.verdict(error) for error in errors]


@pytest.mark.parametrize("seed", range(5))
def test_accumulated_budget_bounds_every_run_of_forecasts(seed):
    """Within each run of consecutive forecasts the probe errors sum to less than the threshold, and every
    rejected step would have pushed its run's sum to the threshold or beyond."""
    rng = random.Random(seed)
    errors = [rng.uniform(0.0, 0.05) for _ in range(200)]
    threshold = 0.1
    verdicts = run_gate(ConfidenceGate(threshold, 0, "accumulated"), errors)
    spent = 0.0
    for error, (allowed, score) in zip(errors, verdicts):
        assert score == pytest.approx(spent + error)
        assert allowed == (spent + error < threshold)
        spent = spent + error if allowed else 0.0
    assert any(allowed for allowed, _ in verdicts) and not all(allowed for allowed, _ in verdicts)


def test_per_step_rule_is_each_error_alone():
    errors = [0.02, 0.03, 0.04, 0.06, 0.01, 0.049]
    verdicts = run_gate(ConfidenceGate(0.05, 0, "per_step"), errors)
    assert verdicts == [(error < 0.05, error) for error in errors]


def test_accumulated_forecasts_no_more_than_per_step():
    """The budget only adds to each step's error: every step it forecasts, the per-step rule forecasts too."""
    rng = random.Random(7)
    errors = [rng.uniform(0.0, 0.1) for _ in range(300)]
    accumulated = run_gate(ConfidenceGate(0.08, 0, "accumulated"), errors)
    per_step = run_gate(ConfidenceGate(0.08, 0, "per_step"), errors)
    assert all(b for (a, _), (b, _) in zip(accumulated, per_step) if a)
    assert sum(a for a, _ in accumulated) < sum(b for b, _ in per_step)


def test_reset_starts_a_new_budget():
    budget = ErrorBudget(ConfidenceGate(0.1, 0, "accumulated"))
    assert budget.verdict(0.06) == (True, 0.06)
    assert budget.verdict(0.06)[0] is False  # 0.12 >= 0.1, and the budget is spent
    assert budget.verdict(0.06) == (True, 0.06)
    budget.reset()
    assert budget.verdict(0.09) == (True, 0.09)


def test_threshold_zero_never_forecasts():
    assert not any(allowed for allowed, _ in run_gate(ConfidenceGate(0.0, 0), [0.0, 1e-9, 0.0]))


@pytest.mark.parametrize(("threshold", "cap", "budget", "message"), [
    (-0.1, 0, "accumulated", "threshold"), (0.1, -1, "accumulated", "max_consecutive"),
    (0.1, 0, "sum", "error_budget")])
def test_invalid_gate_settings_name_the_setting(threshold, cap, budget, message):
    with pytest.raises(ValueError, match=message):
        ConfidenceGate(threshold, cap, budget).validate()


def test_relative_l1_is_a_ratio_of_means_and_never_trusts_non_finite():
    actual = torch.tensor([1.0, -2.0, 3.0, -4.0])
    predicted = actual + torch.tensor([0.5, 0.5, -0.5, 0.5])
    assert relative_l1(predicted, actual) == pytest.approx(0.5 / 2.5)
    assert relative_l1(torch.full((4,), float("nan")), actual) == float("inf")
    assert relative_l1(actual, torch.zeros(4)) == float("inf")
