"""FixedIntervalSchedule planning, window flags and validation."""

from __future__ import annotations

import pytest

from taylor_core import FixedIntervalSchedule, StepPlan, window_flags


def schedule(interval: int, warmup: int = 0, tail: int = 0, start: float = 0.0, end: float = 1.0):
    return FixedIntervalSchedule(interval, warmup, tail, start, end)


def official_flux_full_steps(num_steps: int, n: int, first_enhance: int) -> list[int]:
    """Shenyi-Z/TaylorSeer FLUX ``cal_type``: full if warm-up or ``cache_counter == N - 1``."""
    full, counter = [], 0
    for step in range(num_steps):
        if step < first_enhance or counter == n - 1:
            full.append(step)
            counter = 0
        else:
            counter += 1
    return full


def full_steps(plan: StepPlan) -> list[int]:
    return [i for i in range(plan.num_steps) if plan.is_full(i)]


def test_official_flux_schedule():
    plan = schedule(6, warmup=3).plan(50, [True] * 50)
    assert full_steps(plan) == official_flux_full_steps(50, 6, 3)
    assert full_steps(plan) == [0, 1, 2, 8, 14, 20, 26, 32, 38, 44]  # the published FLUX N=6 list
    assert plan.full_count == 10 and plan.compute_ratio == 5.0 and plan.note == ""


@pytest.mark.parametrize(("interval", "warmup"), [(4, 3), (5, 3), (7, 3), (5, 1), (3, 0)])
def test_matches_official_rule_for_other_intervals(interval, warmup):
    plan = schedule(interval, warmup=warmup).plan(50, [True] * 50)
    assert full_steps(plan) == official_flux_full_steps(50, interval, max(warmup, 1))


def test_interval_one_is_all_full():
    plan = schedule(1, warmup=0).plan(12, [True] * 12)
    assert plan.full == (True,) * 12 and plan.compute_ratio == 1.0


def test_tail_steps_are_full_and_render():
    plan = schedule(6, warmup=3, tail=1).plan(15, [True] * 15)
    assert plan.render() == "FFFTTTTTFTTTTTF"
    assert plan.render("R") == "FFFRRRRRFRRRRRF"
    plan = schedule(4, tail=3).plan(10, [True] * 10)
    assert full_steps(plan) == [0, 4, 7, 8, 9]


def test_outside_window_is_full_and_restarts_the_interval():
    in_window = [False, False, True, True, True, True, True, False]
    plan = schedule(3).plan(8, in_window)
    # 0, 1 outside; then 1 + 3 = 4; then 4 + 3 = 7, also outside
    assert full_steps(plan) == [0, 1, 4, 7]


def test_is_full_out_of_range():
    plan = schedule(3).plan(5, [True] * 5)
    assert not plan.is_full(1)
    assert plan.is_full(-1) and plan.is_full(5)


def test_warmup_plus_tail_covering_all_steps_is_a_note_not_an_error():
    plan = schedule(6, warmup=3, tail=2).plan(4, [True] * 4)
    assert plan.full == (True,) * 4
    assert plan.note == "warmup_steps (3) + tail_steps (2) >= 4 steps: every step is computed"


def test_window_flags():
    sigmas = [10.0, 8.0, 6.0, 4.0, 2.0, 0.0]
    assert window_flags(sigmas, start_sigma=8.0, end_sigma=4.0) == (False, True, True, False, False)
    assert window_flags(sigmas, start_sigma=1e9, end_sigma=0.0) == (True,) * 5  # percents 0 .. 1
    assert window_flags(sigmas, start_sigma=5.0, end_sigma=5.0) == (False,) * 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": 0}, r"interval \(0\) must be >= 1"),
        ({"warmup": -1}, r"warmup_steps \(-1\) must be >= 0"),
        ({"tail": -2}, r"tail_steps \(-2\) must be >= 0"),
        ({"start": -0.1}, r"start_percent \(-0.1\) must be between 0 and 1"),
        ({"end": 1.5}, r"end_percent \(1.5\) must be between 0 and 1"),
        ({"end": float("nan")}, r"end_percent \(nan\) must be between 0 and 1"),
        (
            {"start": 0.8, "end": 0.2},
            r"start_percent \(0.8\) is after end_percent \(0.2\): set start_percent <= end_percent",
        ),
    ],
)
def test_validation_messages(kwargs, message):
    sched = schedule(**{"interval": 2, **kwargs})
    with pytest.raises(ValueError, match=message):
        sched.validate()
    with pytest.raises(ValueError, match=message):
        sched.plan(10, [True] * 10)


def test_plan_argument_errors():
    with pytest.raises(ValueError, match="in_window has 3 entries for 4 steps"):
        schedule(2).plan(4, [True] * 3)
    with pytest.raises(ValueError, match="num_steps"):
        schedule(2).plan(0, [])
