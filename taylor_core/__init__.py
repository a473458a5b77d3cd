"""Pure-PyTorch TaylorSeer math: predictors, step/sigma clocks, schedules and speed-up budgets, the gate, the step
controller that decides every call, run stats.

Depends only on the standard library and torch (no ComfyUI imports). FP8 weight quantization is not here: it
is the FP8 node family's own (``nodes/fp8``).
"""

from .bank import ForecastBank
from .clock import CLOCKS, fractional_step, locate_step, time_coordinate
from .controller import Evidence, GatePolicy, PlannedSteps, StepController, StepPolicy
from .forecaster import NewtonForecaster
from .gate import ERROR_BUDGETS, ConfidenceGate, ErrorBudget, ForcedSteps, relative_l1
from .schedule import FixedIntervalSchedule, StepPlan, window_flags
from .stats import FALLBACK_REASONS, RunStats, format_bytes

__all__ = [
    "CLOCKS",
    "ConfidenceGate",
    "ERROR_BUDGETS",
    "FALLBACK_REASONS",
    "FixedIntervalSchedule",
    "ErrorBudget",
    "Evidence",
    "ForcedSteps",
    "GatePolicy",
    "PlannedSteps",
    "StepController",
    "StepPolicy",
    "ForecastBank",
    "NewtonForecaster",
    "RunStats",
    "StepPlan",
    "format_bytes",
    "fractional_step",
    "locate_step",
    "relative_l1",
    "time_coordinate",
    "window_flags",
]

from .decision import Decision, Mode, Reason  # noqa: E402
from .pacing import BudgetPacer, Pace  # noqa: E402
from .predictors import (  # noqa: E402
    DEFAULT_PREDICTOR,
    PREDICTORS,
    AutoPredictor,
    FoCaPredictor,
    HermitePredictor,
    Predictor,
    SpectralPredictor,
    make_predictor,
    run_options,
)
from .schedule import MAX_TARGET_SPEEDUP, BudgetSchedule, budget_full_steps, make_schedule  # noqa: E402

__all__ += [
    "AutoPredictor",
    "BudgetPacer",
    "BudgetSchedule",
    "DEFAULT_PREDICTOR",
    "Decision",
    "FoCaPredictor",
    "HermitePredictor",
    "MAX_TARGET_SPEEDUP",
    "Mode",
    "PREDICTORS",
    "Pace",
    "Predictor",
    "Reason",
    "SpectralPredictor",
    "budget_full_steps",
    "make_predictor",
    "make_schedule",
    "run_options",
]
