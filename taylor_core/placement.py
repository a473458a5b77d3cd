"""A budget's full steps placed by dynamic programming over the forecast errors of one recorded trajectory.

A calibration records, along the user's uncached run, the forecast feature ``F_i`` of every step ``i`` (``0..n-1``;
any shape, the same at every step: the pack records a fixed subsample of the eps-equivalent output), its time
``t_i`` on the run's clock, and how much a forecast error at that step moves the final output (a weight
``w_i >= 0``, measured by perturbing a few steps: ``sensitivity_weights``). A plan's cost is the sum over its
forecast steps ``j`` of ``w_j * mean((P_j - F_j) ** 2)``, ``P_j`` newton order 1's forecast from the plan's two
newest full steps before ``j`` (order 0 from step 0 alone, as the predictor does). ``fitted_full_steps`` returns the
plan of exactly ``budget`` full steps, the forced ones included, of the least cost: exact (the tests compare it with
every plan of small runs), ``O(budget * n ** 3)`` time and ``O(n ** 3)`` memory in scalars.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

MAX_FITTED_STEPS = 200
"""Longer runs get no fitted plan (the cost table holds ``(n + 1) * n * (n + 1)`` float64 values)."""


def gram(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """``G[i, k] = mean(F_i * F_k)`` over the elements (float64, ``[n, n]``) of ``n`` features of one shape."""
    flat = torch.stack([f.detach().reshape(-1).to(device="cpu", dtype=torch.float64) for f in features])
    return flat @ flat.T / flat.shape[1]


def stretch_costs(features: Sequence[torch.Tensor], times: Sequence[float], weights: Sequence[float]) -> torch.Tensor:
    """``cost[a, b, c]``, ``[n + 1, n, n + 1]`` float64: the weighted squared forecast error of the steps strictly
    between full steps ``b`` and ``c`` (``c == n``: to the end of the run), forecast from the anchors ``a < b``
    (``a == n``: ``b`` alone, order 0); ``inf`` where ``a`` is not before ``b`` or ``c`` not after it.

    Newton order 1 forecasts ``P_j = F_b + r (F_b - F_a)``, ``r = (t_j - t_b) / (t_b - t_a)``, so every error is a
    quadratic form of the Gram matrix of the features."""
    n = len(features)
    g = gram(features)
    t = torch.tensor([float(x) for x in times], dtype=torch.float64)
    w = torch.tensor([float(x) for x in weights], dtype=torch.float64)
    a, b, j = (torch.arange(n).view(shape) for shape in ((n, 1, 1), (1, n, 1), (1, 1, n)))
    gap = (t.view(1, n, 1) - t.view(n, 1, 1))  # t_b - t_a
    valid = (a < b) & (b < j)
    r = torch.where(valid, (t.view(1, 1, n) - t.view(1, n, 1)) / torch.where(gap == 0, 1.0, gap), 0.0)
    diag = torch.diagonal(g)
    g_bb, g_aa, g_jj = diag.view(1, n, 1), diag.view(n, 1, 1), diag.view(1, 1, n)
    errors = ((1 + r) ** 2 * g_bb + r ** 2 * g_aa + g_jj - 2 * (1 + r) * r * g.view(n, n, 1)
              - 2 * (1 + r) * g.view(1, n, n) + 2 * r * g.view(n, 1, n))
    alone = (g_bb + g_jj - 2 * g.view(1, n, n))  # a == n: the newest anchor reused
    per_step = torch.cat([errors, alone]).clamp_min(0.0) * w.view(1, 1, n)
    per_step = torch.where(torch.cat([valid, b < j]), per_step, 0.0)
    summed = torch.cumsum(per_step, dim=2)  # summed[a, b, c - 1]: steps b + 1 .. c - 1
    cost = torch.cat([torch.full((n + 1, n, 1), math.inf, dtype=torch.float64), summed], dim=2)
    usable = torch.cat([a < b, torch.ones(1, n, 1, dtype=torch.bool)]) & (torch.arange(n + 1).view(1, 1, -1) > b)
    return torch.where(usable, cost, math.inf)


def fitted_full_steps(cost: torch.Tensor, forced: Sequence[bool], budget: int) -> tuple[int, ...] | None:
    """The ``budget`` full steps (ascending, step 0 first) of least total ``cost`` (``stretch_costs``) that include
    every ``forced`` step; None when no plan of that count exists (more forced steps than the budget, or step 0
    not forced)."""
    n = len(forced)
    if not forced or not forced[0] or not 1 <= budget <= n or sum(forced) > budget:
        return None
    before = torch.cumsum(torch.tensor([0, *map(int, forced)]), dim=0)  # before[i]: forced steps in 0..i-1
    b, c = torch.arange(n).view(n, 1), torch.arange(n + 1).view(1, n + 1)
    free_between = (c > b) & (before[c.clamp(max=n)] - before[(b + 1).clamp(max=n)] == 0)  # none forced in (b, c)
    steps_cost = torch.where(free_between.unsqueeze(0), cost, math.inf)
    value = torch.full((n + 1, n), math.inf, dtype=torch.float64)  # value[a, b]: newest two full steps a, b
    value[n, 0] = 0.0
    choices = []
    for _ in range(budget - 1):
        best, choice = (value.unsqueeze(2) + steps_cost).min(dim=0)  # [n, n + 1]: over a, for each (b, c)
        value = torch.full((n + 1, n), math.inf, dtype=torch.float64)
        value[:n] = best[:, :n]
        choices.append(choice)
    final = value + steps_cost[:, :, n]
    if not math.isfinite(float(final.min())):
        return None
    a, last = divmod(int(final.argmin()), n)
    steps = [last]
    for choice in reversed(choices):
        steps.append(a)
        a, last = int(choice[a, last]), a
    return tuple(reversed(steps))


def sensitivity_weights(gains: Mapping[int, float], step_sizes: Sequence[float]) -> list[float]:
    """Per step, ``(|step_sizes[i]| * gain_i) ** 2``: the squared change of the final output per unit of forecast
    error at step ``i``. ``gains`` holds the measured propagation gain (final change over the change the step made)
    of a few steps; the others get it interpolated linearly in log between the nearest measured steps, held
    constant before the first and after the last (1 everywhere when none is measured)."""
    known = sorted((step, math.log(max(gain, 1e-12))) for step, gain in gains.items())
    weights = []
    for i, size in enumerate(step_sizes):
        if not known:
            log_gain = 0.0
        elif i <= known[0][0]:
            log_gain = known[0][1]
        elif i >= known[-1][0]:
            log_gain = known[-1][1]
        else:
            (lo, g_lo), (hi, g_hi) = next((p, q) for p, q in zip(known, known[1:]) if p[0] <= i <= q[0])
            log_gain = g_lo + (g_hi - g_lo) * (i - lo) / (hi - lo)
        weights.append((abs(float(size)) * math.exp(log_gain)) ** 2)
    return weights


def probe_steps(forced: Sequence[bool], count: int) -> tuple[int, ...]:
    """Up to ``count`` distinct steps, evenly spread over the steps that are not forced: where a calibration
    measures how a forecast error propagates."""
    free = [i for i, f in enumerate(forced) if not f]
    if not free or count <= 0:
        return ()
    picks = {free[min(len(free) - 1, int((k + 0.5) * len(free) / count))] for k in range(count)}
    return tuple(sorted(picks))
