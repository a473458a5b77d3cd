"""Pure-PyTorch TaylorSeer math: Newton forecasters, step/sigma clocks, schedules, run stats.

Depends only on the standard library and torch (no ComfyUI imports).
"""

from .bank import ForecastBank
from .clock import CLOCKS, fractional_step, locate_step, time_coordinate
from .forecaster import NewtonForecaster
from .schedule import FixedIntervalSchedule, StepPlan, window_flags
from .stats import FALLBACK_REASONS, RunStats, format_bytes

__all__ = [
    "CLOCKS",
    "FALLBACK_REASONS",
    "FixedIntervalSchedule",
    "ForecastBank",
    "NewtonForecaster",
    "RunStats",
    "StepPlan",
    "format_bytes",
    "fractional_step",
    "locate_step",
    "time_coordinate",
    "window_flags",
]
