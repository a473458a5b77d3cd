"""NewtonPredictor: exactness on polynomials, ramp-up, replacement, official-recurrence relation, dtypes."""

from __future__ import annotations

import math

import pytest
import torch

from taylor_core import NewtonPredictor

F64 = torch.float64
SHAPE = (3, 4)
LAYOUTS = ("increasing", "decreasing", "unsorted")


def sample_times(gen: torch.Generator, n: int, layout: str, scale: float) -> list[float]:
    """``n`` distinct times with random gaps in ``[0.3, 1.0] * scale``, in the given order."""
    times = torch.cumsum((0.3 + 0.7 * torch.rand(n, generator=gen, dtype=F64)) * scale, 0)
    if layout == "decreasing":
        times = times.flip(0)
    elif layout == "unsorted":
        times = times[torch.randperm(n, generator=gen)]
    return times.tolist()


def random_poly(gen: torch.Generator, degree: int) -> list[torch.Tensor]:
    """Tensor coefficients ``c_0..c_degree`` of ``F(t) = sum_p c_p t^p``."""
    return [torch.randn(SHAPE, generator=gen, dtype=F64) for _ in range(degree + 1)]


def poly(coeffs: list[torch.Tensor], t: float) -> torch.Tensor:
    return sum(c * t**p for p, c in enumerate(coeffs))


def node_poly(anchors: tuple[float, ...], t: float) -> float:
    """``w(t) = prod_i (t - a_i)``: the interpolation error of ``t^(k+1)`` on ``k+1`` anchors."""
    return math.prod(t - a for a in anchors)


def lebesgue(anchors: tuple[float, ...], t: float) -> float:
    """``sum_i |L_i(t)|``: how much a relative data perturbation can grow at ``t``."""
    total = 0.0
    for i, a_i in enumerate(anchors):
        total += abs(math.prod((t - a_j) / (a_i - a_j) for j, a_j in enumerate(anchors) if j != i))
    return total


def rounding_tol(dtype: torch.dtype, anchors: tuple[float, ...], anchor_values, t: float, exact) -> float:
    """Forward-error bound for Newton interpolation in ``dtype``.

    Data rounding (eps * |F_i|) amplified by the Lebesgue function, plus evaluation rounding
    (eps * |F(t)|), times a safety factor growing like ``(k+1)^2`` for the ``k``-stage divided
    differences and Horner steps.
    """
    eps = torch.finfo(dtype).eps
    k = len(anchors) - 1
    scale = max(float(v.abs().max()) for v in anchor_values)
    return 8 * (k + 1) ** 2 * eps * (lebesgue(anchors, t) * scale + float(exact.abs().max()))


def probe_times(anchors: tuple[float, ...], scale: float) -> list[float]:
    """Points before the oldest / past the newest anchor (both sides of the anchor range) and inside."""
    lo, hi = min(anchors), max(anchors)
    return [lo - scale, hi + scale, anchors[0] - 0.5 * scale, anchors[-1] + 0.5 * scale, 0.5 * (lo + hi)]


@pytest.mark.parametrize("factor_dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("scale", [1.0, 0.05])
@pytest.mark.parametrize("max_order", range(5))
def test_exact_on_polynomials_up_to_max_order(max_order, scale, layout, factor_dtype):
    gen = torch.Generator().manual_seed(1000 * max_order + 7 * LAYOUTS.index(layout) + int(scale * 10))
    for degree in range(max_order + 1):
        coeffs = random_poly(gen, degree)
        fc = NewtonPredictor(max_order, factor_dtype=factor_dtype)
        values: dict[float, torch.Tensor] = {}
        for t in sample_times(gen, max_order + 3, layout, scale):
            values[t] = poly(coeffs, t)
            fc.update(t, values[t])
            if fc.num_anchors < degree + 1:
                continue  # not enough anchors yet to pin a degree-`degree` polynomial
            anchors = fc.anchor_times
            for s in probe_times(anchors, scale):
                exact = poly(coeffs, s)
                got = fc.predict(s)
                assert got.dtype == F64
                tol = rounding_tol(factor_dtype, anchors, [values[a] for a in anchors], s, exact)
                err = float((got - exact).abs().max())
                assert err <= tol, (degree, anchors, s, err, tol)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("max_order", range(5))
def test_degree_above_max_order_misses_by_the_node_polynomial(max_order, layout):
    """For ``F`` of degree m+1 the error is exactly ``c_{m+1} * prod_i (t - a_i)``, which is not zero."""
    gen = torch.Generator().manual_seed(77 + max_order + 100 * LAYOUTS.index(layout))
    coeffs = random_poly(gen, max_order + 1)
    fc = NewtonPredictor(max_order, factor_dtype=F64)
    values = {}
    for t in sample_times(gen, max_order + 3, layout, 1.0):
        values[t] = poly(coeffs, t)
        fc.update(t, values[t])
    anchors = fc.anchor_times
    assert len(anchors) == max_order + 1
    for s in probe_times(anchors, 1.0):
        exact = poly(coeffs, s)
        err = exact - fc.predict(s)
        tol = rounding_tol(F64, anchors, [values[a] for a in anchors], s, exact)
        assert float((err - coeffs[-1] * node_poly(anchors, s)).abs().max()) <= tol
        if s not in anchors:  # w(s) != 0
            assert float(err.abs().max()) > 1e3 * tol


@pytest.mark.parametrize("max_order", range(5))
def test_order_ramps_up_one_per_anchor(max_order):
    fc = NewtonPredictor(max_order)
    assert (fc.order, fc.num_anchors, fc.anchor_times) == (0, 0, ())
    times = [1.0, 0.8, 0.55, 0.5, 0.3, 0.2, 0.1]
    for n, t in enumerate(times, start=1):
        fc.update(t, torch.full(SHAPE, t))
        assert fc.order == min(n - 1, max_order)
        assert fc.num_anchors == fc.order + 1
        assert fc.anchor_times == tuple(reversed(times[:n]))[: fc.order + 1]


@pytest.mark.parametrize("max_order", range(5))
def test_same_time_replaces_newest_anchor(max_order):
    """Garbage at t, then the true value at the same t: as if the garbage was never seen."""
    gen = torch.Generator().manual_seed(5 + max_order)
    coeffs = random_poly(gen, max_order)
    fc = NewtonPredictor(max_order, factor_dtype=F64)
    clean = NewtonPredictor(max_order, factor_dtype=F64)
    values = {}
    for t in sample_times(gen, max_order + 4, "unsorted", 1.0):
        values[t] = poly(coeffs, t)
        fc.update(t, values[t] + 5 * torch.randn(SHAPE, generator=gen, dtype=F64))
        order_before = fc.order
        fc.update(t, values[t] + 3 * torch.randn(SHAPE, generator=gen, dtype=F64))
        assert fc.order == order_before
        fc.update(t, values[t])
        clean.update(t, values[t])
        assert (fc.order, fc.anchor_times) == (clean.order, clean.anchor_times)
        anchors = fc.anchor_times
        garbage_scale = [values[a] + 5 for a in anchors]  # magnitudes the downdates worked with
        for s in probe_times(anchors, 1.0):
            exact = poly(coeffs, s) if fc.order == max_order else clean.predict(s)
            tol = rounding_tol(F64, anchors, garbage_scale, s, exact)
            assert float((fc.predict(s) - exact).abs().max()) <= tol


def test_replacing_the_only_anchor():
    fc = NewtonPredictor(2)
    fc.update(0.7, torch.ones(SHAPE))
    fc.update(0.7, torch.full(SHAPE, 4.0))
    assert (fc.order, fc.anchor_times) == (0, (0.7,))
    assert torch.equal(fc.predict(0.1), torch.full(SHAPE, 4.0))


def test_repeat_of_an_older_anchor_time_truncates_to_the_consistent_anchors():
    """Anchors (3, 2, 1) then t=2: the difference over (2, 3, 2) is undefined, keep [2, 3] only."""
    line = [torch.full(SHAPE, 1.0), torch.full(SHAPE, -2.0)]  # F(t) = 1 - 2t
    fc = NewtonPredictor(3, factor_dtype=F64)
    for t in (1.0, 2.0, 3.0, 2.0):
        fc.update(t, poly(line, t).to(F64))
    assert (fc.order, fc.anchor_times) == (1, (2.0, 3.0))
    torch.testing.assert_close(fc.predict(-4.0), poly(line, -4.0).to(F64), rtol=0, atol=1e-12)


def test_predict_without_anchor_raises_and_clear_frees_everything():
    fc = NewtonPredictor(2)
    with pytest.raises(RuntimeError, match="no anchor"):
        fc.predict(0.5)
    for t in (1.0, 0.9, 0.7):
        fc.update(t, torch.randn(SHAPE))
    assert fc.bytes_held() > 0
    fc.clear()
    assert (fc.bytes_held(), fc.num_anchors, fc.anchor_times) == (0, 0, ())
    with pytest.raises(RuntimeError):
        fc.predict(0.5)


def test_rejects_bad_config_and_inputs():
    with pytest.raises(ValueError, match="max_order"):
        NewtonPredictor(-1)
    with pytest.raises(ValueError, match="floating"):
        NewtonPredictor(1, factor_dtype=torch.int32)
    fc = NewtonPredictor(1)
    with pytest.raises(ValueError, match="finite"):
        fc.update(math.nan, torch.zeros(SHAPE))
    fc.update(1.0, torch.zeros(SHAPE))
    with pytest.raises(ValueError, match="clear"):
        fc.update(0.5, torch.zeros(2, 2))


def test_state_is_not_aliased_with_caller_tensors():
    fc = NewtonPredictor(0, factor_dtype=None)
    value = torch.ones(SHAPE)
    fc.update(1.0, value)
    value.fill_(9.0)
    out = fc.predict(0.5)
    out.fill_(7.0)
    assert torch.equal(fc.predict(0.5), torch.ones(SHAPE))


# --- relation to the official TaylorSeer recurrence (integer step clock) ---------------------------


class OfficialTaylorSeer:
    """Shenyi-Z/TaylorSeer ``derivative_approximation`` / ``taylor_formula``.

    The official ``warm_condition`` only delays the ramp-up by one full step; it is left out so
    both sides have the same order after each full step.
    """

    def __init__(self, max_order: int) -> None:
        self.max_order = max_order
        self.cache: dict[int, torch.Tensor] = {}
        self.activated_steps: list[int] = []

    def full_step(self, step: int, value: torch.Tensor) -> None:
        self.activated_steps.append(step)
        new = {0: value}
        if len(self.activated_steps) >= 2:
            d = self.activated_steps[-1] - self.activated_steps[-2]
            for i in range(self.max_order):
                if i not in self.cache:
                    break
                new[i + 1] = (new[i] - self.cache[i]) / d
        self.cache = new

    def forecast(self, step: int) -> torch.Tensor:
        x = step - self.activated_steps[-1]
        return sum(self.cache[i] * x**i / math.factorial(i) for i in self.cache)


def run_both(max_order: int, full_steps: list[int], num_steps: int, seed: int):
    """Feed random features at ``full_steps`` to both; yield (step, x, values so far, newton, official)."""
    gen = torch.Generator().manual_seed(seed)
    newton, official = NewtonPredictor(max_order, factor_dtype=F64), OfficialTaylorSeer(max_order)
    seen: list[torch.Tensor] = []
    for step in range(num_steps):
        if step in full_steps:
            seen.append(torch.randn(SHAPE, generator=gen, dtype=F64))
            newton.update(float(step), seen[-1])
            official.full_step(step, seen[-1])
        else:
            yield (
                step,
                step - official.activated_steps[-1],
                seen,
                newton.predict(float(step)),
                official.forecast(step),
            )


UNIFORM_4 = list(range(0, 30, 4))
FLUX_N6 = [0, 1, 2, 8, 14, 20, 26, 32, 38, 44]  # warm-up spacing 1, then 6


@pytest.mark.parametrize("full_steps", [UNIFORM_4, FLUX_N6])
@pytest.mark.parametrize("max_order", [0, 1])
def test_matches_official_recurrence_up_to_order_one(max_order, full_steps):
    """Order 0 is reuse and order 1 uses only the latest gap: the two definitions coincide."""
    count = 0
    for _, _, _, newton, official in run_both(max_order, full_steps, full_steps[-1] + 5, seed=max_order):
        torch.testing.assert_close(newton, official, rtol=1e-12, atol=1e-12)
        count += 1
    assert count > 0


def test_order_two_differs_from_official_by_newton_term():
    """Uniform gap d, x = steps since the last full step, nabla^2 F = F_n - 2 F_{n-1} + F_{n-2}.

    Official: F_n + x nabla F / d + x^2 / 2 * nabla^2 F / d^2.
    Newton:   F_n + x nabla F / d + x (x + d) * F[t_n, t_{n-1}, t_{n-2}], F[...] = nabla^2 F / (2 d^2).
    So Newton - official = x * d * nabla^2 F / (2 d^2) = x * nabla^2 F / (2 d).
    """
    d, checked = 4, 0
    for _, x, seen, newton, official in run_both(2, UNIFORM_4, UNIFORM_4[-1] + d, seed=3):
        if len(seen) < 3:
            torch.testing.assert_close(newton, official, rtol=1e-12, atol=1e-12)  # order <= 1 so far
            continue
        nabla2 = seen[-1] - 2 * seen[-2] + seen[-3]
        expected = x * nabla2 / (2 * d)
        torch.testing.assert_close(newton - official, expected, rtol=1e-10, atol=1e-12)
        assert float(expected.abs().max()) > 1e-3
        checked += 1
    assert checked == (len(UNIFORM_4) - 2) * (d - 1)


# --- factor dtype and storage -----------------------------------------------------------------------


@pytest.mark.parametrize(("factor_dtype", "bytes_per_element"), [(torch.float32, 4), (None, 2)])
def test_factor_dtype_sets_memory_and_predict_keeps_value_dtype(factor_dtype, bytes_per_element):
    fc = NewtonPredictor(2, factor_dtype=factor_dtype, storage_device="cpu")
    assert fc.storage_device == torch.device("cpu")
    value = torch.randn(5, 7).to(torch.bfloat16)
    for t in (1.0, 0.9, 0.75, 0.6, 0.5):
        fc.update(t, value * t)
        assert fc.bytes_held() == (fc.order + 1) * value.numel() * bytes_per_element
        out = fc.predict(0.4)
        assert (out.dtype, out.device, out.shape) == (torch.bfloat16, value.device, value.shape)


def test_float32_factors_round_bf16_values_less_than_bf16_factors():
    """bf16 values on a line: float32 factors forecast exactly up to output rounding, bf16 ones do worse."""
    t_values = [0.9, 0.7, 0.45]
    base = torch.linspace(-1, 1, 64, dtype=F64)

    def line(t: float) -> torch.Tensor:
        return (base + 2 * t).to(torch.bfloat16)

    errors = {}
    for factor_dtype in (torch.float32, None):
        fc = NewtonPredictor(1, factor_dtype=factor_dtype)
        for t in t_values:
            fc.update(t, line(t))
        # exact line through the two newest bf16 anchors, evaluated in float64
        a0, a1 = t_values[-1], t_values[-2]
        v0, v1 = line(a0).to(F64), line(a1).to(F64)
        exact = v0 + (v0 - v1) / (a0 - a1) * (0.2 - a0)
        errors[factor_dtype] = float((fc.predict(0.2).to(F64) - exact).abs().max())
    bf16_ulp_at_3 = 2.0 ** (1 - 7)  # |values| < 4: spacing 2^(1-7)
    assert errors[torch.float32] <= 0.5 * bf16_ulp_at_3  # only the final rounding to bf16
    assert errors[None] > errors[torch.float32]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_storage_predicts_on_the_value_device():
    fc = NewtonPredictor(1, storage_device="cpu")
    value = torch.randn(SHAPE, device="cuda", dtype=torch.float16)
    fc.update(1.0, value)
    fc.update(0.5, 2 * value)
    assert fc.bytes_held() == 2 * value.numel() * 4
    out = fc.predict(0.0)
    assert (out.device.type, out.dtype) == ("cuda", torch.float16)
    torch.testing.assert_close(out, 3 * value, rtol=1e-3, atol=1e-3)
