"""The "CG-Taylor Gate" node: MODEL -> MODEL that forecasts a step only when the first block's own forecast
was accurate (CG-Taylor, arXiv 2508.02240), with the residual level's last-block forecast."""

from __future__ import annotations

from ..taylor_core import ERROR_BUDGETS
from .config import ForecastConfig
from .inputs import DEFAULTS, optional_inputs, order_input, storage_inputs, validation_message, window_inputs
from .patching import apply_forecasting

AUTO = -1.0
GATE_DEFAULTS = ForecastConfig(max_order=1, gate_threshold=AUTO, first_block_order=2, max_consecutive=4)


class CGTaylorGate:
    """ComfyUI V1 node; the tooltips say what each input does."""

    CATEGORY = "TaylorSeer"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "apply"
    DESCRIPTION = ("Confidence-gated TaylorSeer: runs the first block every step, compares it with its Taylor "
                   "forecast, and skips the other blocks (forecasting what they add) only when that error is "
                   "below the threshold. threshold 0 = no change.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        g = GATE_DEFAULTS
        return {
            "required": {
                "model": ("MODEL",),
                "threshold": ("FLOAT", {"default": AUTO, "min": AUTO, "max": 10.0, "step": 0.001, "tooltip":
                              "Largest relative L1 error of the first block's forecast that still allows a "
                              "forecast step. Higher = faster, lower = closer to the uncached image. 0 = never "
                              "forecast. Negative = auto: the model family's default."}),
                "max_order": order_input(g.max_order, "Taylor order of the forecast of what the blocks after "
                                         "the first add."),
                "first_block_order": order_input(g.first_block_order, "Taylor order of the first block's own "
                                                 "forecast, the gate's probe."),
                **window_inputs(),
                "max_consecutive": ("INT", {"default": g.max_consecutive, "min": 0, "max": 100, "tooltip":
                                    "At most this many forecast steps in a row (a safety rail). 0 = no cap."}),
                **storage_inputs(),
            },
            **optional_inputs(error_budget=(list(ERROR_BUDGETS), {"default": g.error_budget, "tooltip":
                "accumulated: the probe errors of consecutive forecast steps add up and their sum must stay "
                "below the threshold (errors compound along the trajectory; measured closer to the uncached "
                "image at equal speed). per_step: each step's error alone (the CG-Taylor paper's rule)."})),
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, max_order: int = GATE_DEFAULTS.max_order,
                        first_block_order: int = GATE_DEFAULTS.first_block_order,
                        max_consecutive: int = GATE_DEFAULTS.max_consecutive,
                        warmup_steps: int = DEFAULTS.warmup_steps, tail_steps: int = DEFAULTS.tail_steps,
                        start_percent: float = DEFAULTS.start_percent,
                        end_percent: float = DEFAULTS.end_percent) -> bool | str:
        return validation_message(ForecastConfig(
            max_order=max_order, warmup_steps=warmup_steps, tail_steps=tail_steps, start_percent=start_percent,
            end_percent=end_percent, gate_threshold=0.0, first_block_order=first_block_order,
            max_consecutive=max_consecutive))

    def apply(self, model, threshold: float, max_order: int, first_block_order: int, warmup_steps: int,
              tail_steps: int, start_percent: float, end_percent: float, max_consecutive: int, clock: str,
              cache_device: str, factor_dtype: str = DEFAULTS.factor_dtype,
              error_budget: str = GATE_DEFAULTS.error_budget, unique_id: str | None = None) -> tuple:
        config = ForecastConfig(max_order=max_order, warmup_steps=warmup_steps, tail_steps=tail_steps,
                                start_percent=start_percent, end_percent=end_percent, level="residual",
                                clock=clock, cache_device=cache_device, factor_dtype=factor_dtype,
                                gate_threshold=threshold, first_block_order=first_block_order,
                                max_consecutive=max_consecutive, error_budget=error_budget, node_id=unique_id)
        return (apply_forecasting(model, config),)
