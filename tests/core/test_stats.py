"""RunStats bookkeeping and byte formatting."""

from __future__ import annotations

import json

import pytest

from taylor_core import FALLBACK_REASONS, RunStats, format_bytes


def test_format_bytes():
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1024) == "1.00 KiB"
    assert format_bytes(int(1.2 * 2**20)) == "1.20 MiB"
    assert format_bytes(3 * 2**30) == "3.00 GiB"
    with pytest.raises(ValueError):
        format_bytes(-1)


def test_counts_ratio_map_and_peak():
    stats = RunStats()
    plan = "FFTTFTTF"  # 8 steps, 4 full
    for step, c in enumerate(plan):
        stats.record(step, 1.0 - step / 8, c == "F", "schedule" if c == "F" else "")
    stats.record(3, 0.6, True, "non-finite")  # a second evaluation of step 3, forced full
    for n in (100, 2500, 700):
        stats.note_cache_bytes(n)
    assert (stats.evaluations, stats.full_computes, stats.forecasts) == (9, 5, 4)
    assert stats.compute_ratio == 9 / 5
    assert stats.fallbacks == 1
    assert stats.peak_cache_bytes == 2500
    assert stats.step_map(8) == "FFTFFTTF"  # step 3 had a full evaluation
    assert stats.step_map(10, forecast_char="R") == "FFRFFRRF--"
    assert (stats.full_steps(8), stats.step_ratio(8)) == (5, 8 / 5)  # steps 0, 1, 3, 4, 7: step 3 counted once
    assert stats.summary(8) == (
        "steps 8, evaluations 9, full 5, forecast 4, compute ratio 1.80x, computed steps 5/8 (1.60x), "
        "cache peak 2.44 KiB"
    )
    data = json.loads(json.dumps(stats.as_dict(8)))
    assert data["step_map"] == "FFTFFTTF"
    assert (data["full_computes"], data["forecasts"], data["fallbacks"]) == (5, 4, 1)
    assert data["records"][-1] == [3, 0.6, True, "non-finite", None]
    assert len(data["records"]) == 9


def test_empty_and_fallback_reasons():
    stats = RunStats()
    assert stats.compute_ratio == 1.0 and stats.step_ratio(3) == 1.0
    assert stats.step_map(3) == "---"
    assert FALLBACK_REASONS == {"no-history", "non-finite", "shape-change", "no-cheap-path"}
    for reason in ("no-history", "shape-change", "warmup", "schedule"):
        stats.record(0, 1.0, True, reason)
    assert stats.fallbacks == 2
