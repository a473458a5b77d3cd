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
