"""SpeedupSchedule: exact full-step counts, forced steps, front-loading, unreachable speed-up budgets, validation."""

from __future__ import annotations

import math

import pytest

from taylor_core import FixedIntervalSchedule, SpeedupSchedule, StepPlan, make_schedule, speedup_full_steps
from taylor_core.schedule import growing_positions


def budget(target: float, warmup: int = 3, tail: int = 1, growth: float = 0.5) -> SpeedupSchedule:
    return SpeedupSchedule(target, warmup, tail, 0.0, 1.0, growth)


def full_steps(plan: StepPlan) -> list[int]:
    return [i for i, f in enumerate(plan.full) if f]


@pytest.mark.parametrize("steps", [10, 16, 20, 25, 30, 50])
@pytest.mark.parametrize("target", [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0])
@pytest.mark.parametrize(("warmup", "tail"), [(0, 0), (3, 1), (1, 2)])
def test_spends_exactly_the_budget_and_keeps_forced_steps(steps, target, warmup, tail):
    plan = budget(target, warmup, tail).plan(steps, [True] * steps)
    forced = max(warmup, 1) + tail
    want = speedup_full_steps(steps, target)
    assert want == math.floor(steps / target + 0.5) and abs(want - steps / target) <= 0.5
    if forced > want:  # unreachable: the forced steps only, and said so
        assert plan.full_count == forced and "target_speedup" in plan.note
        return
    assert plan.full_count == want and plan.note == ""
    assert all(plan.full[:max(warmup, 1)]) and all(plan.full[steps - tail:])


@pytest.mark.parametrize(("steps", "target"), [(20, 2.5), (20, 3.0), (30, 3.0), (30, 4.0), (30, 5.0), (50, 3.0),
                                               (50, 5.0), (50, 6.0)])
def test_growth_moves_the_budget_early_or_late(steps, target):
    half = (3 + steps - 1) / 2  # the middle of the forecast stretch (after warm-up 3, before tail 1)

    def shape(growth: float) -> tuple[list[int], int, int]:
        plan = budget(target, growth=growth).plan(steps, [True] * steps)
        inside = full_steps(plan)
        gaps = [b - a for a, b in zip(inside[2:], inside[3:])]  # from the last warm-up step to the tail
        return gaps, sum(1 for i in inside if 3 <= i < half), sum(1 for i in inside if half <= i < steps - 1)

    gaps, early, late = shape(2.0)
    assert gaps[-1] >= gaps[0] + 1 and early >= late  # front-loaded
    gaps, early, late = shape(0.5)
    assert gaps[0] >= gaps[-1] + 1 and late >= early  # back-loaded (the default)
    even, _, _ = shape(1.0)
    assert max(even) - min(even) <= 1
    counts = {budget(target, growth=g).plan(steps, [True] * steps).full_count for g in (0.25, 0.5, 1.0, 2.0, 4.0)}
    assert counts == {speedup_full_steps(steps, target)}


@pytest.mark.parametrize("steps", [1, 4, 9, 30])
@pytest.mark.parametrize(("warmup", "tail"), [(0, 0), (3, 1), (10, 10)])
def test_target_one_computes_every_step(steps, warmup, tail):
    assert budget(1.0, warmup, tail).plan(steps, [True] * steps).full == (True,) * steps


def test_window_steps_are_full_and_count_against_the_budget():
    in_window = [True] * 10 + [False] * 4 + [True] * 16
    plan = budget(3.0, warmup=2).plan(30, in_window)
    assert plan.full_count == 10 and all(plan.full[10:14])
    assert any(plan.full[2:10]) and any(plan.full[14:29])  # both stretches get some of the rest


@pytest.mark.parametrize(("steps", "target", "warmup", "tail", "words"), [
    (8, 3.0, 3, 1, "allows 3 full steps of 8"),  # a distilled 8-step run with the default warm-up
    (4, 2.0, 3, 1, "every step is computed"),  # warm-up + tail cover the run
    (4, 3.0, 1, 0, "one full step of 4"),  # met, but only step 0 is ever computed
])
def test_unreachable_or_degenerate_budgets_are_said(steps, target, warmup, tail, words):
    plan = budget(target, warmup, tail).plan(steps, [True] * steps)
    assert words in plan.note


@pytest.mark.parametrize("bad", [0.0, 0.5, -3.0, 21.0, math.nan, math.inf])
def test_rejects_bad_targets(bad):
    with pytest.raises(ValueError, match="target_speedup"):
        budget(bad).validate()


def test_rejects_bad_growth_and_window():
    for growth in (0.2, 4.5):
        with pytest.raises(ValueError, match="growth"):
            budget(3.0, growth=growth).validate()
    with pytest.raises(ValueError, match="warmup_steps"):
        budget(3.0, warmup=-1).validate()
    with pytest.raises(ValueError, match="in_window"):
        budget(3.0).plan(10, [True] * 9)


def test_make_schedule_picks_interval_or_budget():
    assert make_schedule(4, 0.0, 3, 1, 0.0, 1.0) == FixedIntervalSchedule(4, 3, 1, 0.0, 1.0)
    assert make_schedule(4, 3.0, 3, 1, 0.0, 1.0) == SpeedupSchedule(3.0, 3, 1, 0.0, 1.0)


@pytest.mark.parametrize(("count", "start", "stop"), [(0, 0, 5), (1, 0, 2), (5, 2, 8), (4, 10, 30), (9, 0, 10)])
def test_growing_positions_are_distinct_and_inside(count, start, stop):
    for growth in (0.25, 0.5, 1.0, 2.0, 4.0):
        positions = growing_positions(count, start, stop, growth)
        assert len(set(positions)) == count == len(positions)
        assert all(start < p < stop for p in positions) and positions == sorted(positions)
