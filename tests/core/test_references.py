"""The benchmark's reference FoCa / HiCache / Spectrum (demo/ref_*.py): their papers' formulas, and where the
pack's own predictors must agree with them."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from taylor_core.predictors import FoCaPredictor, SpectralPredictor, scaled_hermite

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "demo"))
import ref_foca  # noqa: E402
import ref_hicache  # noqa: E402
import ref_spectrum  # noqa: E402

SHAPE = (2, 3)


def randn(gen: torch.Generator) -> torch.Tensor:
    return torch.randn(SHAPE, generator=gen, dtype=torch.float32)


# HiCache ------------------------------------------------------------------------------------------------------

def test_hicache_hermite_values_match_the_recurrence_and_closed_forms():
    for y in (-1.3, 0.0, 0.4, 2.2):
        assert [ref_hicache.hermite(n, y) for n in range(6)] == pytest.approx(scaled_hermite(5, 1.0, y), rel=1e-12)
        assert ref_hicache.hermite(3, y) == pytest.approx(8 * y**3 - 12 * y, rel=1e-12, abs=1e-12)


def test_hicache_forecast_is_the_hermite_sum_of_taylorseer_factors():
    gen = torch.Generator().manual_seed(1)
    values = [randn(gen) for _ in range(3)]
    ref = ref_hicache.HiCacheReference(max_order=2, scale=0.5)
    for t, v in zip((0.0, 1.0, 5.0), values):
        ref.update(t, v)
    d1_old = values[1] - values[0]  # gap 1
    d0, d1 = values[2], (values[2] - values[1]) / 4.0
    d2 = (d1 - d1_old) / 4.0
    s, k = 0.5, 3.0
    expected = d0 + d1 * (2 * s**2 * k) + d2 / 2 * (s**2 * (4 * s**2 * k**2 - 2))
    torch.testing.assert_close(ref.predict(5.0 + k), expected, rtol=1e-6, atol=1e-6)


def test_hicache_order_one_with_sqrt_half_is_taylorseer():
    gen = torch.Generator().manual_seed(2)
    a, b = randn(gen), randn(gen)
    ref = ref_hicache.HiCacheReference(max_order=1, scale=math.sqrt(0.5))
    ref.update(2.0, a)
    ref.update(6.0, b)
    torch.testing.assert_close(ref.predict(9.0), b + (b - a) / 4.0 * 3.0, rtol=1e-6, atol=1e-6)


# FoCa ---------------------------------------------------------------------------------------------------------

def test_foca_unit_steps_follow_the_stated_recursion_and_damping():
    gen = torch.Generator().manual_seed(3)
    f_p, f_a = randn(gen), randn(gen)
    ref = ref_foca.FoCaReference(damp_after=3.0)
    ref.update(0.0, f_p)
    ref.update(1.0, f_a)
    recent = [f_p, f_a]
    for e in range(1, 7):
        heun = recent[-1] + 0.5 * ((f_a - f_p) + (recent[-1] - recent[-2]))
        expected = heun if e <= 3 else (3 / e) * heun + (1 - 3 / e) * f_a
        torch.testing.assert_close(ref.predict(1.0 + e), expected, rtol=1e-6, atol=1e-6)
        recent.append(expected)


def test_pack_foca_equals_the_reference_on_unit_gaps():
    """Anchors one step apart (warm-up) and one forecast per step: the uneven-gap form is the published one."""
    gen = torch.Generator().manual_seed(4)
    ref = ref_foca.FoCaReference(damp_after=3.0)
    pack = FoCaPredictor(1, torch.float32, damp_after=3.0)
    for t in (0.0, 1.0, 2.0):
        v = randn(gen)
        ref.update(t, v)
        pack.update(t, v)
    for t in range(3, 10):
        torch.testing.assert_close(pack.predict(float(t)), ref.predict(float(t)), rtol=1e-5, atol=1e-5)


def test_foca_reference_is_exact_on_a_line_without_damping():
    line = lambda t: torch.full(SHAPE, 1.5 - 0.25 * t)  # noqa: E731
    ref = ref_foca.FoCaReference(damp_after=None)
    ref.update(0.0, line(0.0))
    ref.update(1.0, line(1.0))
    torch.testing.assert_close(ref.predict(8.0), line(8.0), rtol=1e-6, atol=1e-6)


# Spectrum -----------------------------------------------------------------------------------------------------

def test_spectrum_with_no_ridge_and_degree_plus_one_anchors_interpolates():
    gen = torch.Generator().manual_seed(5)
    times = [0.0, 3.0, 4.0, 7.0, 9.0]
    values = [randn(gen) for _ in times]
    ref = ref_spectrum.SpectrumReference(num_steps=30, degree=4, ridge=1e-12, weight=1.0)
    for t, v in zip(times, values):
        ref.update(t, v)
    for t, v in zip(times, values):
        torch.testing.assert_close(ref.predict(t), v, rtol=1e-4, atol=1e-4)


def test_spectrum_weight_zero_is_first_order_taylor():
    gen = torch.Generator().manual_seed(6)
    a, b = randn(gen), randn(gen)
    ref = ref_spectrum.SpectrumReference(num_steps=30, weight=0.0)
    ref.update(4.0, a)
    ref.update(6.0, b)
    torch.testing.assert_close(ref.predict(9.0), b + 1.5 * (b - a), rtol=1e-6, atol=1e-6)


def test_pack_spectral_equals_the_reference_least_squares_fit():
    """Without ridge the fit is plain least squares: the pack's centring and domain handling change nothing."""
    gen = torch.Generator().manual_seed(7)
    ref = ref_spectrum.SpectrumReference(num_steps=30, degree=3, ridge=0.0, weight=1.0, window=8)
    pack = SpectralPredictor(1, torch.float64, degree=3, ridge=0.0, weight=1.0, max_anchors=8, domain=(0.0, 30.0))
    for t in (0.0, 1.0, 2.0, 4.0, 6.0, 9.0, 13.0, 18.0, 23.0):
        v = randn(gen)
        ref.update(t, v)
        pack.update(t, v.double())
    for t in (19.0, 25.0):
        torch.testing.assert_close(pack.predict(t).float(), ref.predict(t), rtol=1e-4, atol=1e-4)


def test_spectrum_schedule_grows_its_windows():
    full = ref_spectrum.spectrum_full_steps(30, warmup_steps=3)
    assert [i for i, f in enumerate(full) if f] == [0, 1, 2, 4, 6, 9, 13, 18, 23, 29]


# cache-dit's calibrators (demo/ref_cachedit.py; cache-dit lives in the benchmark's own environment) ------------

@pytest.fixture
def cachedit():
    import ref_cachedit

    why = ref_cachedit.available()
    if why:
        pytest.skip(f"cache-dit is not installed here ({why}): demo/requirements-bench.txt")
    return ref_cachedit


def test_cachedit_taylorseer_is_driven_one_step_at_a_time(cachedit):
    """Order 1 on values linear in the step is exact at any horizon, uneven gaps included: the calibrator sees
    one ``mark_step_begin`` per sampling step, as cache-dit's cache context calls it."""
    gen = torch.Generator().manual_seed(8)
    a, b = randn(gen), randn(gen)
    ref = cachedit.CacheDitReference("cachedit_taylorseer")
    for t in (0.0, 1.0, 2.0, 4.0):
        ref.update(t, a + t * b)
    for t in (5.0, 7.0):
        torch.testing.assert_close(ref.predict(t), a + t * b, rtol=1e-5, atol=1e-5)


def test_cachedit_references_are_cachedits_own_classes(cachedit):
    for name, class_name in cachedit.CALIBRATORS.items():
        calibrator = cachedit.CacheDitReference(name).calibrator
        assert type(calibrator).__name__ == class_name
        assert type(calibrator).__module__.startswith("cache_dit.caching.cache_contexts.calibrators.")
