"""Predictors of one tensor-valued trajectory behind one interface (``Predictor``), by name."""

from __future__ import annotations

import torch

from .auto import CANDIDATES, AutoPredictor
from .foca import FoCaPredictor
from .hermite import HermitePredictor, scaled_hermite
from .newton import NewtonPredictor
from .protocol import Predictor
from .spectral import SpectralPredictor

PREDICTORS: dict[str, type] = {**CANDIDATES, AutoPredictor.name: AutoPredictor}
"""Every predictor by the name the nodes' ``forecaster`` input uses (its options, in this order)."""
DEFAULT_PREDICTOR = NewtonPredictor.name


def predictor_class(name: str) -> type:
    """The predictor class ``name`` (a key of ``PREDICTORS``); ``ValueError`` for an unknown name."""
    cls = PREDICTORS.get(name)
    if cls is None:
        raise ValueError(f"unknown forecaster '{name}': expected one of {', '.join(PREDICTORS)}")
    return cls


def make_predictor(name: str, max_order: int, factor_dtype: torch.dtype | None = torch.float32,
                   storage_device: torch.device | str | None = None, **options) -> Predictor:
    """A new predictor ``name`` (a key of ``PREDICTORS``); ``ValueError`` for an unknown name or a bad option."""
    cls = predictor_class(name)
    try:
        return cls(max_order, factor_dtype, storage_device, **options)
    except TypeError as exc:  # an option the predictor does not take
        raise ValueError(f"forecaster '{name}': {exc}") from exc


def run_options(name: str, span: tuple[float, float] | None, step: float | None) -> dict:
    """Keyword options that fit predictor ``name`` to one sampling run (its class's ``run_options``): forecast
    times in ``span`` (``(lo, hi)``, lo < hi) and a typical step of ``step`` (> 0; 1 on the step clock), both in
    the clock's units (sigma or step). Either argument None leaves the options it sets at their defaults."""
    return predictor_class(name).run_options(span, step)


__all__ = [
    "AutoPredictor",
    "DEFAULT_PREDICTOR",
    "FoCaPredictor",
    "HermitePredictor",
    "NewtonPredictor",
    "PREDICTORS",
    "Predictor",
    "SpectralPredictor",
    "make_predictor",
    "predictor_class",
    "run_options",
    "scaled_hermite",
]
