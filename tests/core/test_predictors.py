"""The predictors: one interface, newton / hermite / foca / spectral / auto exactness and limits, the registry."""

from __future__ import annotations

import math

import pytest
import torch

from taylor_core import PREDICTORS, ForecastBank, NewtonPredictor, Predictor, make_predictor
from taylor_core.predictors import AutoPredictor, FoCaPredictor, HermitePredictor, SpectralPredictor, scaled_hermite
from taylor_core.predictors.hermite import TAYLOR_SCALE, taylor_coefficients

F64 = torch.float64
SHAPE = (3, 5)
UNEVEN = [0.0, 1.0, 2.0, 2.5, 4.0, 4.25, 7.0]  # warm-up steps, a fractional evaluation, growing gaps


def tol(dtype: torch.dtype, scale: float, factor: float = 64.0) -> float:
    """Rounding allowance: ``factor`` ulps of ``dtype`` at magnitude ``scale``."""
    return factor * torch.finfo(dtype).eps * scale


def trajectory(gen: torch.Generator, degree: int):
    coeffs = [torch.randn(SHAPE, generator=gen, dtype=F64) for _ in range(degree + 1)]
    return lambda t: sum(c * t**p for p, c in enumerate(coeffs))


def feed(predictor, f, times) -> None:
    for t in times:
        predictor.update(t, f(t))


@pytest.mark.parametrize("name", list(PREDICTORS))
def test_every_predictor_has_the_interface(name):
    p = make_predictor(name, 2)
    assert isinstance(p, Predictor)
    assert (p.num_anchors, p.order, p.bytes_held()) == (0, 0, 0)
    with pytest.raises(RuntimeError, match="no anchor"):
        p.predict(1.0)
    value = torch.randn(SHAPE, dtype=torch.bfloat16)
    for t in (0.0, 1.0, 2.0, 3.0):
        p.update(t, value * (1 + t))
    value.fill_(100.0)  # the caller's tensor is not aliased
    out = p.predict(4.0)
    assert out.dtype == torch.bfloat16 and out.shape == SHAPE
    assert float(out.float().abs().max()) < 50.0
    out.fill_(-7.0)  # nor is the forecast
    assert not torch.equal(p.predict(4.0), out)
    assert p.num_anchors >= 1 and p.bytes_held() > 0
    with pytest.raises(ValueError, match="clear"):
        p.update(5.0, torch.zeros(2, 2))
    p.clear()
    assert (p.num_anchors, p.bytes_held()) == (0, 0)
    with pytest.raises(RuntimeError):
        p.predict(1.0)


@pytest.mark.parametrize("name", list(PREDICTORS))
def test_a_constant_is_forecast_exactly_and_one_anchor_is_reuse(name):
    p = make_predictor(name, 3, F64)
    c = torch.randn(SHAPE, dtype=F64)
    p.update(0.5, c)
    assert torch.equal(p.predict(9.0), c)
    for t in UNEVEN:
        p.update(t, c)
    for t in (7.5, 9.0, 12.0):
        torch.testing.assert_close(p.predict(t), c, rtol=0, atol=tol(F64, 10.0))


def test_registry_and_bank_reject_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown forecaster 'taylor'.*newton, hermite, foca, spectral, auto"):
        make_predictor("taylor", 1)
    with pytest.raises(ValueError, match="forecaster 'newton'"):
        make_predictor("newton", 1, scale=0.5)
    with pytest.raises(ValueError, match="unknown forecaster"):
        ForecastBank(1, predictor="nope")
    with pytest.raises(ValueError, match="weight"):
        ForecastBank(1, predictor="spectral", weight=2.0)


def test_bank_uses_the_named_predictor_with_its_options():
    bank = ForecastBank(1, F64, predictor="foca", damp_after=None)
    newton = ForecastBank(1, F64)
    line = lambda t: torch.full(SHAPE, 2.0 - 3.0 * t, dtype=F64)  # noqa: E731
    for t in (0.0, 1.0, 3.0):
        bank.update("k", t, line(t), "sig")
        newton.update("k", t, line(t), "sig")
    torch.testing.assert_close(bank.predict("k", 10.0), line(10.0), rtol=0, atol=tol(F64, 30.0))
    assert bank.order("k") == 1 and bank.bytes_held() == 3 * line(0).nbytes  # two anchors + the forecast
    assert newton.bytes_held() == 2 * line(0).nbytes


# hermite ------------------------------------------------------------------------------------------------------

def test_scaled_hermite_values():
    s, x = 0.37, 1.9
    h = scaled_hermite(4, s, x)
    y = s * x
    closed = [1.0, 2 * y, 4 * y**2 - 2, 8 * y**3 - 12 * y, 16 * y**4 - 48 * y**2 + 12]
    assert h == pytest.approx([s**n * v for n, v in enumerate(closed)], rel=1e-12)
    he = scaled_hermite(4, math.sqrt(0.5), x)  # = the probabilists' He_n
    assert he == pytest.approx([1.0, x, x**2 - 1, x**3 - 3 * x, x**4 - 6 * x**2 + 3], rel=1e-12)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_hermite_order_one_with_sqrt_half_is_newton(dtype):
    gen = torch.Generator().manual_seed(3)
    f = trajectory(gen, 3)
    hermite, newton = HermitePredictor(1, dtype, scale=TAYLOR_SCALE), NewtonPredictor(1, dtype)
    for t in UNEVEN:
        hermite.update(t, f(t))
        newton.update(t, f(t))
        for s in (t + 0.5, t + 3.0, t - 1.0):
            expected = newton.predict(s)
            scale = float(expected.abs().max()) + float(f(t).abs().max())
            torch.testing.assert_close(hermite.predict(s), expected, rtol=0, atol=tol(dtype, scale))


def test_hermite_order_two_with_sqrt_half_damps_by_minus_a2_u2():
    """``He_2(x) = x^2 - 1``: hermite = newton - a_2 u^2 at every t, u the newest anchor gap."""
    gen = torch.Generator().manual_seed(4)
    f = trajectory(gen, 3)
    hermite, newton = HermitePredictor(2, F64, scale=TAYLOR_SCALE), NewtonPredictor(2, F64)
    feed(hermite, f, UNEVEN)
    feed(newton, f, UNEVEN)
    u = UNEVEN[-1] - UNEVEN[-2]
    a2 = newton.factors[2]  # the leading Newton coefficient is the leading Taylor coefficient
    for s in (7.5, 9.0, 11.0):
        torch.testing.assert_close(hermite.predict(s), newton.predict(s) - a2 * u**2, rtol=0, atol=1e-9)


def test_the_default_is_hicache_as_published_on_the_step_clock():
    """Scale 0.5, argument in steps (unit 1): on uniform steps the forecast is the demo reference's
    (``demo/ref_hicache.py``, TaylorSeer's factors) at order 1 exactly: ``F + 2 s^2 k dF = F + k dF / 2``."""
    f = [torch.tensor([1.0, -2.0], dtype=F64), torch.tensor([1.5, -1.0], dtype=F64)]
    hermite = HermitePredictor(1, F64, unit=1.0)
    hermite.update(0.0, f[0])
    hermite.update(2.0, f[1])  # one anchor gap of 2 steps
    for k in (1.0, 3.0, 4.0):
        torch.testing.assert_close(hermite.predict(2.0 + k), f[1] + 0.5 * k * (f[1] - f[0]) / 2.0, rtol=0,
                                   atol=1e-12)


def test_taylor_coefficients_reproduce_the_newton_polynomial():
    gen = torch.Generator().manual_seed(5)
    f = trajectory(gen, 4)
    newton = NewtonPredictor(4, F64)
    feed(newton, f, UNEVEN)
    a = taylor_coefficients(newton.factors, newton.anchor_times)
    t0 = newton.anchor_times[0]
    for s in (3.0, 8.0):
        torch.testing.assert_close(sum(c * (s - t0) ** j for j, c in enumerate(a)), f(s), rtol=1e-9, atol=1e-9)


def test_hermite_scale_to_zero_is_reuse_and_bad_options_raise():
    gen = torch.Generator().manual_seed(6)
    f = trajectory(gen, 2)
    p = HermitePredictor(2, F64, scale=1e-9)
    feed(p, f, UNEVEN)
    torch.testing.assert_close(p.predict(9.0), f(UNEVEN[-1]), rtol=0, atol=1e-6)
    for bad in ({"scale": 0.0}, {"unit": -1.0}):
        with pytest.raises(ValueError):
            HermitePredictor(1, **bad)


# foca ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_foca_is_exact_on_lines_with_uneven_gaps(dtype):
    gen = torch.Generator().manual_seed(7)
    f = trajectory(gen, 1)
    p = FoCaPredictor(1, dtype, damp_after=None)
    full = {0.0, 1.0, 2.0, 4.5, 9.0}
    for t in [0.0, 1.0, 2.0, 2.7, 3.0, 4.5, 5.0, 6.25, 6.5, 9.0, 10.0, 13.0]:  # full and forecast, any gaps
        if t in full:
            p.update(t, f(t))
        else:
            torch.testing.assert_close(p.predict(t), f(t), rtol=0, atol=tol(dtype, 20.0))


def test_foca_unit_steps_follow_the_stated_recursion():
    """``F_{k+1} = F_k + 1/2 [(F_a - F_p) + (F_k - F_{k-1})]`` for anchors and forecasts one step apart."""
    gen = torch.Generator().manual_seed(8)
    values = [torch.randn(SHAPE, generator=gen, dtype=F64) for _ in range(3)]
    p = FoCaPredictor(1, F64, damp_after=None)
    for t, v in enumerate(values):
        p.update(float(t), v)
    f_a, f_p = values[2], values[1]
    rolling = [values[1], values[2]]
    for t in range(3, 9):
        expected = rolling[-1] + 0.5 * ((f_a - f_p) + (rolling[-1] - rolling[-2]))
        torch.testing.assert_close(p.predict(float(t)), expected, rtol=0, atol=1e-12)
        rolling.append(expected)


def test_foca_damping_limit_and_form():
    gen = torch.Generator().manual_seed(9)
    f = trajectory(gen, 3)
    undamped = FoCaPredictor(1, F64, damp_after=None)
    far = FoCaPredictor(1, F64, damp_after=1e9)
    damped = FoCaPredictor(1, F64, damp_after=1.5, unit=None)
    for p in (undamped, far, damped):
        feed(p, f, [0.0, 2.0])  # unit None: the anchor gap 2, so 1.5 units are 3 steps
    for t in (3.0, 5.0, 6.0, 10.0):
        assert torch.equal(far.predict(t), undamped.predict(t))  # damping -> 1: the undamped form
    fresh = FoCaPredictor(1, F64, damp_after=None)
    feed(fresh, f, [0.0, 2.0])
    torch.testing.assert_close(damped.predict(3.0), fresh.predict(3.0), rtol=0, atol=0)  # 0.5 units: no damping
    fresh2 = FoCaPredictor(1, F64, damp_after=None)
    feed(fresh2, f, [0.0, 2.0])
    undamped_10 = fresh2.predict(10.0)
    for unit, e in ((None, (10.0 - 2.0) / 2.0), (1.0, 10.0 - 2.0)):  # the default unit is 1 (a step)
        damped2 = FoCaPredictor(1, F64, damp_after=1.5, **({} if unit == 1.0 else {"unit": unit}))
        feed(damped2, f, [0.0, 2.0])
        torch.testing.assert_close(damped2.predict(10.0), torch.lerp(f(2.0), undamped_10, 1.5 / e), rtol=0, atol=1e-12)


def test_foca_repeats_replacements_memory_and_order():
    gen = torch.Generator().manual_seed(10)
    f = trajectory(gen, 2)
    p = FoCaPredictor(2, F64)
    p.update(0.0, f(0.0))
    assert p.order == 0 and torch.equal(p.predict(3.0), f(0.0))
    p.update(1.0, f(1.0))
    assert p.order == 1 and p.num_anchors == 2
    first = p.predict(2.0)
    assert torch.equal(p.predict(2.0), first)  # same t, same answer
    assert p.bytes_held() == 3 * f(0.0).nbytes  # 2 anchors + 1 forecast in the rolling pair
    p.update(2.0, f(2.0))  # the full value at the forecast time replaces the forecast
    assert torch.equal(p.predict(2.0), f(2.0)) and p.bytes_held() == 2 * f(0.0).nbytes
    reuse = FoCaPredictor(0, F64)
    feed(reuse, f, [0.0, 1.0, 2.0])
    assert reuse.order == 0 and torch.equal(reuse.predict(5.0), f(2.0))
    with pytest.raises(ValueError):
        FoCaPredictor(1, damp_after=0.0)


# spectral -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("degree", [1, 2, 4])
def test_spectral_with_no_ridge_and_degree_plus_one_anchors_interpolates(degree):
    gen = torch.Generator().manual_seed(11 + degree)
    values = {t: torch.randn(SHAPE, generator=gen, dtype=F64) for t in UNEVEN[: degree + 1]}
    p = SpectralPredictor(1, F64, degree=degree, ridge=1e-13, weight=1.0)
    newton = NewtonPredictor(degree, F64)  # the unique interpolant of degree + 1 points
    for t, v in values.items():
        p.update(t, v)
        newton.update(t, v)
    for t, v in values.items():
        torch.testing.assert_close(p.predict(t), v, rtol=0, atol=1e-8)
    for t in (0.3, 3.0, 5.0):
        torch.testing.assert_close(p.predict(t), newton.predict(t), rtol=0, atol=1e-7)


def test_spectral_fit_does_not_depend_on_the_domain_without_ridge():
    gen = torch.Generator().manual_seed(12)
    f = trajectory(gen, 5)
    a = SpectralPredictor(1, F64, degree=3, ridge=0.0, weight=1.0)
    b = SpectralPredictor(1, F64, degree=3, ridge=0.0, weight=1.0, domain=(-2.0, 30.0))
    feed(a, f, UNEVEN)
    feed(b, f, UNEVEN)
    torch.testing.assert_close(a.predict(8.0), b.predict(8.0), rtol=1e-8, atol=1e-8)


def test_spectral_weight_zero_and_few_anchors_are_newton_and_memory_is_bounded():
    gen = torch.Generator().manual_seed(13)
    f = trajectory(gen, 3)
    newton = NewtonPredictor(2, F64)
    blend = SpectralPredictor(2, F64, degree=4, weight=0.5, max_anchors=6)
    zero = SpectralPredictor(2, F64, weight=0.0)
    for n, t in enumerate(UNEVEN, start=1):
        for p in (newton, blend, zero):
            p.update(t, f(t))
        assert torch.equal(zero.predict(t + 1.0), newton.predict(t + 1.0))
        if n < 5:  # fewer than degree + 1 anchors: Newton alone
            assert torch.equal(blend.predict(t + 1.0), newton.predict(t + 1.0))
    for t in range(20):
        blend.update(10.0 + t, f(10.0 + t))
    assert blend.num_anchors == 6 and blend.bytes_held() == 6 * f(0.0).nbytes


def test_spectral_rejects_bad_options():
    for bad in ({"degree": -1}, {"ridge": -0.1}, {"weight": 1.5}, {"max_anchors": 3}, {"domain": (1.0, 1.0)}):
        with pytest.raises(ValueError):
            SpectralPredictor(1, **bad)


# auto ---------------------------------------------------------------------------------------------------------

def test_auto_picks_the_predictor_that_reproduces_the_trajectory():
    """A quadratic: Newton of order 2 is exact, reuse / FoCa (order 1) / hermite (damped) are not."""
    gen = torch.Generator().manual_seed(14)
    f = trajectory(gen, 2)
    auto = AutoPredictor(2, F64, candidates=("reuse", "foca", "hermite", "newton"))
    newton = NewtonPredictor(2, F64)
    for t in UNEVEN:
        auto.update(t, f(t))
        newton.update(t, f(t))
    assert auto.choice == "newton" and auto.last_errors["newton"] < 1e-9
    assert min(auto.last_errors[name] for name in ("reuse", "foca", "hermite")) > 1e-3
    assert torch.equal(auto.predict(9.0), newton.predict(9.0))


def test_auto_scores_each_candidate_on_the_new_full_step_and_ties_go_first():
    flat = [torch.zeros(SHAPE, dtype=F64), torch.ones(SHAPE, dtype=F64), torch.ones(SHAPE, dtype=F64)]
    auto = AutoPredictor(2, F64, candidates=("newton", "reuse", "foca", "hermite"), smoothing=0.0)
    alone = {name: (NewtonPredictor(0, F64) if name == "reuse" else make_predictor(name, 2, F64))
             for name in auto.names}
    for t, v in enumerate(flat):
        auto.update(float(t), v)
        for p in alone.values():
            p.update(float(t), v)
    truth = torch.ones(SHAPE, dtype=F64)
    expected = {name: float((p.predict(3.0) - truth).abs().mean()) for name, p in alone.items()}
    auto.update(3.0, truth)
    assert auto.last_errors == pytest.approx(expected)
    assert expected["reuse"] == expected["foca"] == 0.0 < expected["newton"]
    assert auto.choice == "reuse"  # tie with foca: the earlier candidate
    before = dict(auto.last_errors)
    auto.update(3.0, truth * 2)  # a replacement at the same time is no new evidence
    assert auto.last_errors == before and auto.choice == "reuse"
    assert torch.equal(auto.predict(5.0), truth * 2)


def test_auto_smooths_the_scores_over_full_steps():
    gen = torch.Generator().manual_seed(16)
    values = [torch.randn(SHAPE, generator=gen, dtype=F64) for _ in range(6)]
    auto = AutoPredictor(1, F64, smoothing=0.25)
    assert auto.names == ("foca", "newton") and auto.choice == "foca"
    scores: dict[str, float] = {}
    for t, v in enumerate(values):
        auto.update(float(t), v)
        if auto.last_errors:
            scores = {n: 0.25 * scores[n] + 0.75 * e if n in scores else e for n, e in auto.last_errors.items()}
            assert auto.scores == pytest.approx(scores)
            assert auto.choice == min(auto.names, key=lambda n: (scores[n], auto.names.index(n)))
    with pytest.raises(ValueError, match="smoothing"):
        AutoPredictor(1, smoothing=1.0)


def test_auto_memory_options_and_bad_candidates():
    auto = AutoPredictor(1, F64, candidates=("foca", "spectral"), options={"spectral": {"max_anchors": 5}})
    v = torch.zeros(SHAPE, dtype=F64)
    for t in range(8):
        auto.update(float(t), v)
    assert auto.bytes_held() == (2 + 5) * v.nbytes and auto.choice == "foca"
    auto.clear()
    assert auto.bytes_held() == 0 and auto.choice == "foca"
    for bad in ((), ("newton", "newton"), ("newton", "taylor")):
        with pytest.raises(ValueError):
            AutoPredictor(1, candidates=bad)


def test_auto_lets_a_recursive_candidate_walk_every_forecast_time():
    """FoCa not chosen still recurses through each forecast, so its score is that of the path it would take."""
    gen = torch.Generator().manual_seed(15)
    f = trajectory(gen, 3)
    auto = AutoPredictor(1, F64, candidates=("newton", "foca"))
    alone = FoCaPredictor(1, F64)
    for t in (0.0, 1.0, 2.0):
        auto.update(t, f(t))
        alone.update(t, f(t))
    for t in (3.0, 4.0, 5.0):
        auto.predict(t)
        alone.predict(t)
    expected = float((alone.predict(6.0) - f(6.0)).abs().mean() / f(6.0).abs().mean())
    auto.update(6.0, f(6.0))
    assert auto.last_errors["foca"] == pytest.approx(expected, rel=1e-6)
