"""The frozen configuration a "TaylorSeer Apply" node attaches to a model clone."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..taylor_core import (
    PREDICTORS,
    ConfidenceGate,
    FixedIntervalSchedule,
    ForcedSteps,
    FullStepList,
    SpeedupSchedule,
    make_schedule,
)
from ..taylor_core.calibration import CALIBRATION_MODES

LEVELS = ("residual", "output", "modules")
CLOCKS = ("sigma", "step")
CACHE_DEVICES = ("auto", "cpu")
FACTOR_DTYPES = ("float32", "model")
MAX_ORDER = 4
AUTO_WARMUP = -1
INTERVAL_WARMUP, BUDGET_WARMUP = 3, 1
"""``warmup_steps`` auto: TaylorSeer's 3 with an interval (or the gate alone); 1 with a speed-up budget
(docs/benchmarks.md compares warm-up 1, 2 and 3 at every budget)."""


@dataclass(frozen=True)
class ForecastConfig:
    """What to forecast, when, and where the Taylor factors live. Steps are sampler steps of one run.

    ``gate_threshold`` None: TaylorSeer's fixed interval decides; a number: the CG-Taylor confidence gate
    decides every step that is not forced full (``interval`` is then unused), probing with the first block's
    forecast of order ``first_block_order``, forecasting at most ``max_consecutive`` steps in a row, the
    probe errors counted per step or accumulated over a run of forecasts (``error_budget``).
    ``target_speedup`` 0: one full step every ``interval``; >= 1: a speed-up budget (``SpeedupSchedule``,
    ``interval`` unused; with the gate, the gate places the budget's full steps: ``speedup_schedule``).
    ``warmup_steps`` -1 (auto) becomes 3 with an interval, 1 with a budget (``AUTO_WARMUP``).
    ``forecaster`` names the predictor of every cached feature (a key
    of ``taylor_core.PREDICTORS``). ``calibration`` (needs a ``target_speedup``): ``auto`` uses this run's
    profile, measuring one first when there is none; ``recalibrate`` measures one anew (``nodes/calibration.py``).
    """

    interval: int = 4
    max_order: int = 1
    warmup_steps: int = AUTO_WARMUP  # resolved at construction: see AUTO_WARMUP
    tail_steps: int = 1
    start_percent: float = 0.0
    end_percent: float = 1.0
    level: str = "output"  # docs/benchmarks.md compares the levels
    clock: str = "step"
    cache_device: str = "auto"
    factor_dtype: str = "float32"
    gate_threshold: float | None = None
    first_block_order: int = 1
    max_consecutive: int = 0
    error_budget: str = "accumulated"
    forecaster: str = "newton"  # the one default of both nodes' forecaster input
    target_speedup: float = 0.0
    calibration: str = "off"
    full_steps: tuple[int, ...] = ()
    """Non-empty: a calibrated plan (``FullStepList``) replaces the speed-up budget's (``nodes/calibration.py``)."""
    node_id: str | None = field(default=None, compare=False)
    """The id of the graph node that made this config (reports are keyed by it); no effect on forecasting."""

    def __post_init__(self) -> None:
        if self.warmup_steps == AUTO_WARMUP:
            object.__setattr__(self, "warmup_steps", BUDGET_WARMUP if self.target_speedup else INTERVAL_WARMUP)

    @property
    def schedule(self) -> FixedIntervalSchedule | SpeedupSchedule | ForcedSteps:
        """The steps computed by schedule: every step of the plan when not gated, the forced ones when gated."""
        if self.gate is not None:
            return ForcedSteps(self.warmup_steps, self.tail_steps, self.start_percent, self.end_percent)
        return self._inputs_schedule()

    @property
    def speedup_schedule(self) -> SpeedupSchedule | None:
        """The gate's speed-up budget (``taylor_core.pacing``), None without one or without the gate."""
        if self.gate is None or not self.target_speedup:
            return None
        return self._inputs_schedule()

    def _inputs_schedule(self) -> FixedIntervalSchedule | SpeedupSchedule | FullStepList:
        """The calibrated plan, else the schedule ``interval`` / ``target_speedup`` describe (``make_schedule``)."""
        if self.full_steps:
            return FullStepList(self.full_steps)
        return make_schedule(self.interval, self.target_speedup, self.warmup_steps, self.tail_steps,
                             self.start_percent, self.end_percent)

    @property
    def gate(self) -> ConfidenceGate | None:
        if self.gate_threshold is None:
            return None
        return ConfidenceGate(self.gate_threshold, self.max_consecutive, self.error_budget)

    @property
    def torch_factor_dtype(self) -> torch.dtype | None:
        """float32, or None: keep the dtype of the features (the model's)."""
        return torch.float32 if self.factor_dtype == "float32" else None

    @property
    def storage_device(self) -> str | None:
        """None: keep factors on the features' device; "cpu": offload them."""
        return "cpu" if self.cache_device == "cpu" else None

    def validate(self) -> None:
        """Raise ValueError with an actionable message on any out-of-range or unknown setting."""
        self.schedule.validate()
        if self.speedup_schedule is not None:
            self.speedup_schedule.validate()
        for name, order in (("max_order", self.max_order), ("first_block_order", self.first_block_order)):
            if not 0 <= order <= MAX_ORDER:
                raise ValueError(f"{name} ({order}) must be between 0 and {MAX_ORDER}")
        if self.gate is not None:
            self.gate.validate()
        if self.calibration != "off" and not self.target_speedup:
            raise ValueError(calibration_problem(self.calibration, self.target_speedup))
        for name, value, allowed in (("level", self.level, LEVELS), ("clock", self.clock, CLOCKS),
                                     ("cache_device", self.cache_device, CACHE_DEVICES),
                                     ("factor_dtype", self.factor_dtype, FACTOR_DTYPES),
                                     ("forecaster", self.forecaster, tuple(PREDICTORS)),
                                     ("calibration", self.calibration, CALIBRATION_MODES)):
            if value not in allowed:
                raise ValueError(f"{name} '{value}' is not one of {', '.join(allowed)}")

    def describe(self) -> str:
        decider = (f"target_speedup {self.target_speedup:g}, calibrated plan" if self.full_steps else
                   f"interval {self.interval}" if self.gate is None and not self.target_speedup else
                   f"target_speedup {self.target_speedup:g}" if self.gate is None else
                   f"gate threshold {self.gate_threshold:g}, first_block_order {self.first_block_order}, "
                   f"max_consecutive {self.max_consecutive}, error_budget {self.error_budget}"
                   + (f", target_speedup {self.target_speedup:g}" if self.target_speedup else ""))
        return (f"{decider}, max_order {self.max_order}, warmup {self.warmup_steps}, "
                f"tail {self.tail_steps}, window {self.start_percent:g}-{self.end_percent:g}, "
                f"clock {self.clock}, forecaster {self.forecaster}, cache {self.cache_device}/{self.factor_dtype}")


def calibration_problem(calibration: str, target_speedup: float) -> str:
    """The message for a ``calibration`` other than off without a speed-up budget."""
    return (f"calibration '{calibration}' needs a target_speedup above 0 (it measures plans of that budget): set "
            "target_speedup, or calibration off")
