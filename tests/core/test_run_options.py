"""``run_options``: the clock options each predictor class says it takes, accepted by that predictor and the bank."""

from __future__ import annotations

import pytest
import torch

from taylor_core import PREDICTORS, ForecastBank, run_options
from taylor_core.predictors import AutoPredictor, FoCaPredictor, HermitePredictor, SpectralPredictor


@pytest.mark.parametrize("name", list(PREDICTORS))
def test_every_predictor_takes_its_run_options(name):
    bank = ForecastBank(1, torch.float32, None, name, **run_options(name, (0.0, 10.0), 0.5))
    bank.update("k", 0.0, torch.ones(3), "s")
    assert torch.equal(bank.predict("k", 1.0), torch.ones(3))


def test_the_options_reach_the_predictors():
    assert FoCaPredictor(1, **run_options("foca", (0.0, 2.0), 0.1)).unit == 0.1
    assert SpectralPredictor(1, **run_options("spectral", (0.0, 2.0), 0.1)).domain == (0.0, 2.0)
    auto = AutoPredictor(1, **run_options("auto", (0.0, 2.0), 0.1))
    assert auto._members[auto.names.index("foca")].unit == 0.1
    assert HermitePredictor(1, **run_options("hermite", (0.0, 2.0), 0.1)).unit == 0.1
    assert run_options("newton", (0.0, 2.0), 0.1) == {}


def test_unknown_span_and_step_keep_the_predictors_defaults():
    assert run_options("foca", None, None) == {} == run_options("spectral", None, None)
    assert FoCaPredictor(1, **run_options("foca", None, None)).unit == FoCaPredictor(1).unit


@pytest.mark.parametrize("name", list(PREDICTORS))
def test_each_predictor_class_says_its_own_run_options(name):
    cls = PREDICTORS[name]
    assert cls.name == name
    assert run_options(name, (0.0, 2.0), 0.1) == cls.run_options((0.0, 2.0), 0.1)
    assert run_options(name, None, None) == cls.run_options(None, None)


def test_an_unknown_predictor_has_no_run_options():
    with pytest.raises(ValueError, match="unknown forecaster 'taylor'"):
        run_options("taylor", (0.0, 2.0), 0.1)
