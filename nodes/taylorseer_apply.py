"""The "TaylorSeer Apply" node: MODEL -> MODEL with TaylorSeer forecasting attached to a clone."""

from __future__ import annotations

from .config import LEVELS, ForecastConfig
from .inputs import DEFAULTS, optional_inputs, order_input, storage_inputs, validation_message, window_inputs
from .patching import apply_forecasting


class TaylorSeerApply:
    """ComfyUI V1 node; the tooltips say what each input does."""

    CATEGORY = "TaylorSeer"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "apply"
    DESCRIPTION = ("Speeds up sampling by computing the model only on some steps and forecasting the others "
                   "with a Taylor series over the stored full steps (TaylorSeer). interval 1 = no change.")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        d = DEFAULTS
        return {
            "required": {
                "model": ("MODEL",),
                "interval": ("INT", {"default": d.interval, "min": 1, "max": 50, "tooltip":
                             "Compute the full model every N steps and forecast the steps between. "
                             "1 = every step computed (output identical to the unpatched model)."}),
                "max_order": order_input(d.max_order, "Taylor order of the forecast. 0 = plain reuse of the "
                                         "last full step (for comparison); 1-2 recommended; each order keeps "
                                         "one more copy of the forecast features."),
                **window_inputs(),
                "level": (list(LEVELS), {"default": d.level, "tooltip":
                          "residual: run the first block every step and forecast what the other blocks add "
                          "(Flux, Chroma, Wan, HunyuanVideo, Qwen-Image, SD3, LTXV, Mochi, AuraFlow, HunyuanDiT, "
                          "Lumina 2 / Z-Image, PixArt; other models use output, logged). output: forecast the "
                          "model's output; works for every model, UNets included. modules: the original "
                          "TaylorSeer: forecast every block's attention and MLP outputs while modulation, gates "
                          "and residual adds still run (Flux, Chroma, Wan; other models fall back to residual). "
                          "The expensive mode: it caches blocks x branches x tokens x hidden x (max_order + 1) "
                          "values, e.g. 38x the residual level on Flux, about 4.3 GB per order at 1024x1024 in "
                          "float32 (half with factor_dtype model on bf16); cache_device cpu works with it."}),
                **storage_inputs(),
            },
            **optional_inputs(),
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, interval: int = DEFAULTS.interval, max_order: int = DEFAULTS.max_order,
                        warmup_steps: int = DEFAULTS.warmup_steps, tail_steps: int = DEFAULTS.tail_steps,
                        start_percent: float = DEFAULTS.start_percent,
                        end_percent: float = DEFAULTS.end_percent) -> bool | str:
        return validation_message(ForecastConfig(interval=interval, max_order=max_order, warmup_steps=warmup_steps,
                                                 tail_steps=tail_steps, start_percent=start_percent,
                                                 end_percent=end_percent))

    def apply(self, model, interval: int, max_order: int, warmup_steps: int, tail_steps: int,
              start_percent: float, end_percent: float, level: str, clock: str, cache_device: str,
              factor_dtype: str = DEFAULTS.factor_dtype, unique_id: str | None = None) -> tuple:
        config = ForecastConfig(interval, max_order, warmup_steps, tail_steps, start_percent, end_percent,
                                level, clock, cache_device, factor_dtype, node_id=unique_id)
        return (apply_forecasting(model, config),)
