"""The "TaylorSeer Apply" node: MODEL -> MODEL with TaylorSeer forecasting attached to a clone."""

from __future__ import annotations

import logging

from .config import CACHE_DEVICES, CLOCKS, FACTOR_DTYPES, LEVELS, MAX_ORDER, ForecastConfig
from .families import family_of
from .residual import install_block_replacements
from .run_state import LOG_PREFIX
from .wrappers import install_wrappers

logger = logging.getLogger("taylor_forecast")
DEFAULTS = ForecastConfig()


def apply_taylorseer(model, config: ForecastConfig):
    """Return a clone of ``model`` (a ComfyUI ModelPatcher) that forecasts as ``config`` says.

    Raises ValueError on an invalid config. A family without a residual adapter gets level "output"
    (logged), never an error: every model ComfyUI loads supports the output level.
    """
    config.validate()
    patched = model.clone()
    level = config.level
    if level == "residual":
        diffusion_model = patched.get_model_object("diffusion_model")
        family = family_of(diffusion_model)
        if family is None:
            logger.warning("%s %s has no residual adapter yet: using level=output", LOG_PREFIX,
                           type(diffusion_model).__name__)
            level = "output"
        else:
            hooked = install_block_replacements(patched, family, diffusion_model)
            logger.info("%s residual level on %s (%d blocks hooked)", LOG_PREFIX, family.name, hooked)
    install_wrappers(patched, config, level)
    return patched


class TaylorSeerApply:
    """ComfyUI V1 node; see the tooltips for what each input does."""

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
                "max_order": ("INT", {"default": d.max_order, "min": 0, "max": MAX_ORDER, "tooltip":
                              "Taylor order of the forecast. 0 = plain reuse of the last full step (for "
                              "comparison); 1-2 recommended; each order keeps one more feature copy."}),
                "warmup_steps": ("INT", {"default": d.warmup_steps, "min": 0, "max": 100, "tooltip":
                                 "The first N steps are always computed (they fix the composition)."}),
                "tail_steps": ("INT", {"default": d.tail_steps, "min": 0, "max": 100, "tooltip":
                               "The last N steps are always computed (they fix fine detail)."}),
                "start_percent": ("FLOAT", {"default": d.start_percent, "min": 0.0, "max": 1.0, "step": 0.01,
                                  "tooltip": "Forecast only from this point of the denoising (0 = start)."}),
                "end_percent": ("FLOAT", {"default": d.end_percent, "min": 0.0, "max": 1.0, "step": 0.01,
                                "tooltip": "Forecast only up to this point of the denoising (1 = end)."}),
                "level": (list(LEVELS), {"default": d.level, "tooltip":
                          "residual: run the first block every step and forecast what the other blocks add "
                          "(Flux, Flux 2, Chroma, Wan; other models use output). output: forecast the "
                          "model's output; works for every model, UNets included."}),
                "clock": (list(CLOCKS), {"default": d.clock, "tooltip":
                          "Time axis of the Taylor series: sigma (the noise level; right for uneven "
                          "schedules and multi-step samplers) or the step index (the paper's choice)."}),
                "cache_device": (list(CACHE_DEVICES), {"default": d.cache_device, "tooltip":
                                 "auto: keep the forecast factors on the model's device; cpu: offload them "
                                 "to system memory (slower, saves GPU memory)."}),
            },
            "optional": {
                "factor_dtype": (list(FACTOR_DTYPES), {"default": d.factor_dtype, "tooltip":
                                 "float32: keep forecast factors in float32 (accurate); model: in the "
                                 "model's dtype (half the memory with bf16/fp16 models)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, interval: int = DEFAULTS.interval,
                        max_order: int = DEFAULTS.max_order, warmup_steps: int = DEFAULTS.warmup_steps,
                        tail_steps: int = DEFAULTS.tail_steps, start_percent: float = DEFAULTS.start_percent,
                        end_percent: float = DEFAULTS.end_percent) -> bool | str:
        config = ForecastConfig(interval=interval, max_order=max_order, warmup_steps=warmup_steps,
                                tail_steps=tail_steps, start_percent=start_percent, end_percent=end_percent)
        try:
            config.validate()
        except ValueError as exc:
            return str(exc)
        return True

    def apply(self, model, interval: int, max_order: int, warmup_steps: int, tail_steps: int,
              start_percent: float, end_percent: float, level: str, clock: str, cache_device: str,
              factor_dtype: str = DEFAULTS.factor_dtype) -> tuple:
        config = ForecastConfig(interval, max_order, warmup_steps, tail_steps, start_percent, end_percent,
                                level, clock, cache_device, factor_dtype)
        return (apply_taylorseer(model, config),)
