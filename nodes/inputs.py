"""Input definitions the nodes share (ComfyUI V1 ``INPUT_TYPES`` entries) and their validation."""

from __future__ import annotations

from .config import CACHE_DEVICES, CLOCKS, FACTOR_DTYPES, MAX_ORDER, ForecastConfig

DEFAULTS = ForecastConfig()


def order_input(default: int, tooltip: str) -> tuple:
    return ("INT", {"default": default, "min": 0, "max": MAX_ORDER, "tooltip": tooltip})


def window_inputs() -> dict:
    """warmup_steps, tail_steps, start_percent, end_percent."""
    d = DEFAULTS
    return {
        "warmup_steps": ("INT", {"default": d.warmup_steps, "min": 0, "max": 100, "tooltip":
                         "The first N steps are always computed (they fix the composition)."}),
        "tail_steps": ("INT", {"default": d.tail_steps, "min": 0, "max": 100, "tooltip":
                       "The last N steps are always computed (they fix fine detail)."}),
        "start_percent": ("FLOAT", {"default": d.start_percent, "min": 0.0, "max": 1.0, "step": 0.01,
                          "tooltip": "Forecast only from this point of the denoising (0 = start)."}),
        "end_percent": ("FLOAT", {"default": d.end_percent, "min": 0.0, "max": 1.0, "step": 0.01,
                        "tooltip": "Forecast only up to this point of the denoising (1 = end)."}),
    }


def storage_inputs() -> dict:
    """clock and cache_device."""
    d = DEFAULTS
    return {
        "clock": (list(CLOCKS), {"default": d.clock, "tooltip":
                  "Time axis of the Taylor series: step (the sampling step, fractional for the extra "
                  "evaluations of multi-step samplers; measured closer to the uncached image) or sigma "
                  "(the noise level itself)."}),
        "cache_device": (list(CACHE_DEVICES), {"default": d.cache_device, "tooltip":
                         "auto: keep the forecast factors on the model's device; cpu: offload them to system "
                         "memory (slower, saves GPU memory; the choice for level modules on large models)."}),
    }


def optional_inputs(**extra: tuple) -> dict:
    """The optional inputs both nodes share (factor_dtype), plus ``extra`` ones of a node's own."""
    return {"optional": {**extra,
        "factor_dtype": (list(FACTOR_DTYPES), {"default": DEFAULTS.factor_dtype, "tooltip":
                         "float32: keep forecast factors in float32 (accurate); model: in the model's dtype "
                         "(half the memory with bf16/fp16 models)."}),
    }}


def validation_message(config: ForecastConfig) -> bool | str:
    """ComfyUI's VALIDATE_INPUTS convention: True, or the message shown to the user."""
    try:
        config.validate()
    except ValueError as exc:
        return str(exc)
    return True
