"""Clock conversions between sigma and the sampling-step coordinate."""

from __future__ import annotations

from itertools import pairwise

import pytest

from taylor_core import CLOCKS, fractional_step, locate_step, time_coordinate

SIGMAS = [14.6, 7.0, 3.1, 1.5, 0.62, 0.2, 0.0]  # 6 steps, trailing 0 never evaluated


def test_fractional_step_is_exact_on_the_grid():
    for i, s in enumerate(SIGMAS):
        assert fractional_step(s, SIGMAS) == i  # exact, not approximate


def test_fractional_step_is_linear_in_sigma_between_grid_points():
    for i in range(len(SIGMAS) - 1):
        hi, lo = SIGMAS[i], SIGMAS[i + 1]
        for w in (0.1, 0.5, 0.9):
            sigma = hi + w * (lo - hi)
            assert fractional_step(sigma, SIGMAS) == pytest.approx(i + w, abs=1e-12)


def test_fractional_step_clamps_outside_and_is_monotone():
    assert fractional_step(100.0, SIGMAS) == 0.0
    assert fractional_step(-1.0, SIGMAS) == len(SIGMAS) - 1
    dense = [15.0 - 0.01 * k for k in range(1600)]
    steps = [fractional_step(s, SIGMAS) for s in dense]
    assert all(a <= b for a, b in pairwise(steps))


def test_locate_step_conventions():
    n = len(SIGMAS) - 1
    for i in range(n):
        assert locate_step(SIGMAS[i], SIGMAS) == i  # exact match: own index
        midpoint = 0.5 * (SIGMAS[i] + SIGMAS[i + 1])
        assert locate_step(midpoint, SIGMAS) == i  # s_i >= sigma > s_{i+1}
    assert locate_step(SIGMAS[-1], SIGMAS) == n - 1  # trailing 0 belongs to the last step
    assert locate_step(-1.0, SIGMAS) == n - 1
    assert locate_step(100.0, SIGMAS) == 0
    with pytest.raises(ValueError):
        locate_step(1.0, [1.0])


def test_schedule_without_trailing_zero():
    sigmas = [1.0, 0.5, 0.25]
    assert locate_step(0.25, sigmas) == 1
    assert fractional_step(0.25, sigmas) == 2.0


def test_time_coordinate():
    assert CLOCKS == ("sigma", "step")
    assert time_coordinate("sigma", 3.1, SIGMAS) == 3.1
    assert time_coordinate("step", 3.1, SIGMAS) == 2.0
    assert time_coordinate("step", 2.3, SIGMAS) == fractional_step(2.3, SIGMAS)
    with pytest.raises(ValueError, match="unknown clock 'steps'"):
        time_coordinate("steps", 1.0, SIGMAS)
    with pytest.raises(ValueError, match="empty"):
        fractional_step(1.0, [])
