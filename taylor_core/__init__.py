"""Pure-PyTorch TaylorSeer math: predictors, step/sigma clocks, schedules and speed-up budgets, the gate, the step
controller that decides every call, run stats.

Depends only on the standard library and torch (no ComfyUI imports). FP8 weight quantization is not here: it
is the FP8 node group's own (``nodes/fp8``).
"""

from .bank import ForecastBank
from .clock import CLOCKS, fractional_step, locate_step, time_coordinate
from .controller import Evidence, GatePolicy, PlannedSteps, StepController, StepPolicy
from .decision import Decision, Mode, Reason
from .gate import ERROR_BUDGETS, ConfidenceGate, ErrorBudget, ForcedSteps, relative_l1
from .pacing import BudgetPacer, Pace
from .predictors import (
    DEFAULT_PREDICTOR,
    PREDICTORS,
    AutoPredictor,
    FoCaPredictor,
    HermitePredictor,
    NewtonPredictor,
    Predictor,
    SpectralPredictor,
    make_predictor,
    run_options,
)
from .schedule import (
    MAX_TARGET_SPEEDUP,
    FixedIntervalSchedule,
    FullStepList,
    SpeedupSchedule,
    StepPlan,
    make_schedule,
    speedup_full_steps,
    window_flags,
)
from .stats import FALLBACK_REASONS, RunStats, format_bytes

__all__ = [
    "AutoPredictor",
    "BudgetPacer",
    "CLOCKS",
    "ConfidenceGate",
    "DEFAULT_PREDICTOR",
    "Decision",
    "ERROR_BUDGETS",
    "ErrorBudget",
    "Evidence",
    "FALLBACK_REASONS",
    "FixedIntervalSchedule",
    "FoCaPredictor",
    "ForcedSteps",
    "ForecastBank",
    "FullStepList",
    "GatePolicy",
    "HermitePredictor",
    "MAX_TARGET_SPEEDUP",
    "Mode",
    "NewtonPredictor",
    "PREDICTORS",
    "Pace",
    "PlannedSteps",
    "Predictor",
    "Reason",
    "RunStats",
    "SpectralPredictor",
    "SpeedupSchedule",
    "StepController",
    "StepPlan",
    "StepPolicy",
    "format_bytes",
    "fractional_step",
    "locate_step",
    "make_predictor",
    "make_schedule",
    "relative_l1",
    "run_options",
    "speedup_full_steps",
    "time_coordinate",
    "window_flags",
]
