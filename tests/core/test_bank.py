"""ForecastBank: per-key history, signature resets, memory accounting."""

from __future__ import annotations

import pytest
import torch

from taylor_core import ForecastBank


def sig(value: torch.Tensor) -> tuple:
    return (tuple(value.shape), value.dtype, value.device)


def test_keys_are_independent_and_forecast_their_own_line():
    bank = ForecastBank(max_order=1, factor_dtype=torch.float64)
    a, b = torch.ones(2, 3), torch.ones(4)
    for t in (1.0, 0.5):
        bank.update(("u", "img"), t, a * t, sig(a))  # F = t * a
        bank.update(("u", "txt"), t, b * (1 - t), sig(b))  # F = (1 - t) * b
    torch.testing.assert_close(bank.predict(("u", "img"), 0.25), a * 0.25)
    torch.testing.assert_close(bank.predict(("u", "txt"), 0.25), b * 0.75)
    assert bank.order(("u", "img")) == bank.order(("u", "txt")) == 1
    assert bank.order("unknown") == 0
    assert bank.bytes_held() == 2 * (a.numel() + b.numel()) * 8
    assert bank.resets == 0


def test_signature_change_clears_history_and_counts_a_reset():
    bank = ForecastBank(max_order=2)
    small, large = torch.zeros(2, 2), torch.zeros(3, 3)
    assert not bank.ready("k", sig(small))
    for t in (1.0, 0.8, 0.6):
        bank.update("k", t, small, sig(small))
    assert bank.ready("k", sig(small)) and not bank.ready("k", sig(large))
    assert bank.order("k") == 2
    bank.update("k", 0.4, large, sig(large))
    assert bank.resets == 1
    assert bank.order("k") == 0
    assert bank.ready("k", sig(large)) and not bank.ready("k", sig(small))
    assert bank.bytes_held() == large.numel() * 4


def test_drop_release_and_unknown_key():
    bank = ForecastBank(max_order=1)
    value = torch.zeros(8)
    for key in ("a", "b"):
        bank.update(key, 1.0, value, sig(value))
    bank.drop("a")
    bank.drop("never-seen")
    assert not bank.ready("a", sig(value)) and bank.ready("b", sig(value))
    with pytest.raises(KeyError, match="'a'"):
        bank.predict("a", 0.5)
    bank.release()
    assert bank.bytes_held() == 0 and not bank.ready("b", sig(value))
    bank.update("b", 0.5, value, sig(value))  # still usable
    assert bank.ready("b", sig(value))


def test_invalid_config_fails_at_construction():
    with pytest.raises(ValueError, match="max_order"):
        ForecastBank(max_order=-1)
