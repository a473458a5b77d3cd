"""Pure-PyTorch TaylorSeer math: Newton forecasters, step/sigma clocks, schedules, run stats.

Depends only on the standard library and torch (no ComfyUI imports).
"""

from .bank import ForecastBank
from .clock import CLOCKS, fractional_step, locate_step, time_coordinate
from .forecaster import NewtonForecaster
from .gate import ConfidenceGate, forced_full_schedule, relative_l1
from .schedule import FixedIntervalSchedule, StepPlan, window_flags
from .stats import FALLBACK_REASONS, RunStats, format_bytes

__all__ = [
    "CLOCKS",
    "ConfidenceGate",
    "FALLBACK_REASONS",
    "FixedIntervalSchedule",
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
