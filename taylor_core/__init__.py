"""Pure-PyTorch TaylorSeer math: Newton forecasters, step/sigma clocks, schedules, run stats.

Depends only on the standard library and torch (no ComfyUI imports). Scaled FP8 weights live in
``taylor_core.quantize``, imported only by what needs it (the FP8 Loader): a torch without float8 types must
not take the forecasting math down with it.
"""

from .bank import ForecastBank
from .clock import CLOCKS, fractional_step, locate_step, time_coordinate
from .forecaster import NewtonForecaster
from .gate import ERROR_BUDGETS, ConfidenceGate, GateBudget, forced_full_schedule, relative_l1
from .schedule import FixedIntervalSchedule, StepPlan, window_flags
from .stats import FALLBACK_REASONS, RunStats, format_bytes

__all__ = [
    "CLOCKS",
    "ConfidenceGate",
    "ERROR_BUDGETS",
    "FALLBACK_REASONS",
    "FixedIntervalSchedule",
    "GateBudget",
    "ForecastBank",
    "NewtonForecaster",
    "RunStats",
    "StepPlan",
    "format_bytes",
    "forced_full_schedule",
    "fractional_step",
    "locate_step",
    "relative_l1",
    "time_coordinate",
    "window_flags",
]
