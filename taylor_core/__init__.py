"""Pure-PyTorch TaylorSeer math: Newton forecasters, step/sigma clocks, schedules, run stats; scaled FP8 weights.

Depends only on the standard library and torch (no ComfyUI imports).
"""

from .bank import ForecastBank
from .clock import CLOCKS, fractional_step, locate_step, time_coordinate
from .forecaster import NewtonForecaster
from .gate import ERROR_BUDGETS, ConfidenceGate, GateBudget, forced_full_schedule, relative_l1
from .quantize import FP8_FORMATS, ErrorSummary, QuantizedWeight, fp8_max, quantize_fp8, relative_error
from .schedule import FixedIntervalSchedule, StepPlan, window_flags
from .stats import FALLBACK_REASONS, RunStats, format_bytes

__all__ = [
    "CLOCKS",
    "ConfidenceGate",
    "ERROR_BUDGETS",
    "ErrorSummary",
    "FALLBACK_REASONS",
    "FP8_FORMATS",
    "FixedIntervalSchedule",
    "GateBudget",
    "ForecastBank",
    "NewtonForecaster",
    "QuantizedWeight",
    "RunStats",
    "StepPlan",
    "format_bytes",
    "fp8_max",
    "forced_full_schedule",
    "fractional_step",
    "locate_step",
    "quantize_fp8",
    "relative_error",
    "relative_l1",
    "time_coordinate",
    "window_flags",
]

# Issue 12: one decision point, a predictor family, speed-up budgets.
from .decision import Decision, Mode, Reason, decide  # noqa: E402
from .predictors import (  # noqa: E402
    DEFAULT_PREDICTOR,
    PREDICTORS,
    AutoPredictor,
    FoCaPredictor,
    HermitePredictor,
    Predictor,
    SpectralPredictor,
    make_predictor,
)
from .schedule import MAX_TARGET_SPEEDUP, BudgetSchedule, budget_full_steps, make_schedule  # noqa: E402

__all__ += [
    "AutoPredictor",
    "BudgetSchedule",
    "DEFAULT_PREDICTOR",
    "Decision",
    "FoCaPredictor",
    "HermitePredictor",
    "MAX_TARGET_SPEEDUP",
    "Mode",
    "PREDICTORS",
    "Predictor",
    "Reason",
    "SpectralPredictor",
    "budget_full_steps",
    "decide",
    "make_predictor",
    "make_schedule",
]
