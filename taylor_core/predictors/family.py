"""The single-method predictors, by the name the nodes' ``forecaster`` input uses."""

from __future__ import annotations

from ..forecaster import NewtonForecaster
from .foca import FoCaPredictor
from .hermite import HermitePredictor
from .spectral import SpectralPredictor

BASE_PREDICTORS: dict[str, type] = {
    "newton": NewtonForecaster,
    "hermite": HermitePredictor,
    "foca": FoCaPredictor,
    "spectral": SpectralPredictor,
}
