"""Forecasters of one tensor-valued trajectory behind one interface (``Predictor``), by name."""

from __future__ import annotations

import torch

from .auto import AutoPredictor
from .family import BASE_PREDICTORS
from .foca import FoCaPredictor
from .hermite import HermitePredictor, scaled_hermite
from .protocol import Predictor
from .run_options import run_options
from .spectral import SpectralPredictor

PREDICTORS: dict[str, type] = {**BASE_PREDICTORS, "auto": AutoPredictor}
DEFAULT_PREDICTOR = "newton"


def make_predictor(name: str, max_order: int, factor_dtype: torch.dtype | None = torch.float32,
                   storage_device: torch.device | str | None = None, **options) -> Predictor:
    """A new predictor ``name`` (a key of ``PREDICTORS``); ``ValueError`` for an unknown name or a bad option."""
    cls = PREDICTORS.get(name)
    if cls is None:
        raise ValueError(f"unknown forecaster '{name}': expected one of {', '.join(PREDICTORS)}")
    try:
        return cls(max_order, factor_dtype, storage_device, **options)
    except TypeError as exc:  # an option the predictor does not take
        raise ValueError(f"forecaster '{name}': {exc}") from exc


__all__ = [
    "AutoPredictor",
    "DEFAULT_PREDICTOR",
    "FoCaPredictor",
    "HermitePredictor",
    "PREDICTORS",
    "Predictor",
    "SpectralPredictor",
    "make_predictor",
    "run_options",
    "scaled_hermite",
]
