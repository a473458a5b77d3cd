"""Time coordinates for the predictors: raw sigma, or the (fractional) sampling-step index.

Convention: ``step_sigmas`` is the sampler's sigma list, ``n + 1`` python floats for ``n`` steps,
monotonically non-increasing (usually ending in a 0 that is never evaluated). Step ``i`` (valid
indices ``0..n-1``) is evaluated at ``step_sigmas[i]``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

CLOCKS = ("sigma", "step")


def _first_at_or_below(sigma: float, step_sigmas: Sequence[float]) -> int:
    """Index of the first schedule entry ``<= sigma`` (``len`` if none); exact matches come first."""
    if not step_sigmas:
        raise ValueError("step_sigmas is empty")
    return bisect_left(step_sigmas, -sigma, key=lambda s: -s)


def fractional_step(sigma: float, step_sigmas: Sequence[float]) -> float:
    """Step coordinate of ``sigma``: ``i`` at ``step_sigmas[i]``, linear in sigma in between.

    Clamped to ``[0, len(step_sigmas) - 1]`` outside the schedule.
    """
    j = _first_at_or_below(sigma, step_sigmas)
    if j == len(step_sigmas):
        return float(j - 1)
    if step_sigmas[j] == sigma or j == 0:
        return float(j)
    upper, lower = step_sigmas[j - 1], step_sigmas[j]
    return (j - 1) + (upper - sigma) / (upper - lower)


def locate_step(sigma: float, step_sigmas: Sequence[float]) -> int:
    """Index ``i`` with ``step_sigmas[i] >= sigma > step_sigmas[i + 1]``, clamped to ``[0, n - 1]``.

    An exact match gives its own index, except the final entry (the trailing sigma, usually 0,
    that is never evaluated), which maps to the last step ``n - 1``. Needs at least 2 entries.
    """
    if len(step_sigmas) < 2:
        raise ValueError(f"step_sigmas needs at least 2 entries (n + 1 for n steps), got {len(step_sigmas)}")
    j = _first_at_or_below(sigma, step_sigmas)
    i = j if j < len(step_sigmas) and step_sigmas[j] == sigma else j - 1
    return min(max(i, 0), len(step_sigmas) - 2)


def time_coordinate(clock: str, sigma: float, step_sigmas: Sequence[float]) -> float:
    """The predictor time of ``sigma`` on ``clock``: ``"sigma"`` (sigma itself) or ``"step"``."""
    if clock == "sigma":
        return float(sigma)
    if clock == "step":
        return fractional_step(sigma, step_sigmas)
    raise ValueError(f"unknown clock {clock!r}: expected one of {', '.join(CLOCKS)}")
