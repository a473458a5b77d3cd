"""The frozen configuration a "TaylorSeer Apply" node attaches to a model clone."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..taylor_core import FixedIntervalSchedule

LEVELS = ("residual", "output")
CLOCKS = ("sigma", "step")
CACHE_DEVICES = ("auto", "cpu")
FACTOR_DTYPES = ("float32", "model")
MAX_ORDER = 4


@dataclass(frozen=True)
class ForecastConfig:
    """What to forecast, when, and where the Taylor factors live. Steps are sampler steps of one run."""

    interval: int = 4
    max_order: int = 2
    warmup_steps: int = 3
    tail_steps: int = 1
    start_percent: float = 0.0
    end_percent: float = 1.0
    level: str = "residual"
    clock: str = "sigma"
    cache_device: str = "auto"
    factor_dtype: str = "float32"

    @property
    def schedule(self) -> FixedIntervalSchedule:
        return FixedIntervalSchedule(self.interval, self.warmup_steps, self.tail_steps,
                                     self.start_percent, self.end_percent)

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
        if not 0 <= self.max_order <= MAX_ORDER:
            raise ValueError(f"max_order ({self.max_order}) must be between 0 and {MAX_ORDER}")
        for name, value, allowed in (("level", self.level, LEVELS), ("clock", self.clock, CLOCKS),
                                     ("cache_device", self.cache_device, CACHE_DEVICES),
                                     ("factor_dtype", self.factor_dtype, FACTOR_DTYPES)):
            if value not in allowed:
                raise ValueError(f"{name} '{value}' is not one of {', '.join(allowed)}")

    def describe(self) -> str:
        return (f"interval {self.interval}, max_order {self.max_order}, warmup {self.warmup_steps}, "
                f"tail {self.tail_steps}, window {self.start_percent:g}-{self.end_percent:g}, "
                f"clock {self.clock}, cache {self.cache_device}/{self.factor_dtype}")
